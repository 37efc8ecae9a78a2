"""A hostile or careless host: links planted in the journal, files the user cannot read, a
journal directory open to others. Each is refused with one `Error:` line naming the file, or
repaired with a warning, and nothing outside the journal is touched.

Checks that only mean something for an ordinary user run the CLI as `nobody` (setpriv): the
suite runs as root, which reads and writes through any permission.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import run_helpers
from broker import Broker
from hostile_report import report
from polling import wait_until
from run_helpers import (
    RECORDER,
    Recorders,
    clean_env,
    markers_of,
    messages_of,
    numbered,
    publish,
    read_records,
)

from recorder.errors import PathAccessError
from recorder.fsutil import atomic_file
from recorder.journal.maintenance import verify_journal
from recorder.journal.options import WriterOptions
from recorder.journal.record import Incoming, MarkerType
from recorder.journal.segment import list_segments
from recorder.journal.writer import JournalWriter
from recorder.meshsync import CORE_SUBJECT

NOBODY = 65534
SETPRIV = shutil.which("setpriv")
VICTIM_TEXT = b"an unrelated file the recorder must never read or write\n"
EVENT = b'{"ObjectType":"meshsync-data","EventType":"ADDED","Object":{"metadata":{"uid":"u%d"}}}'


def _journal(directory: Path, segments: int = 3) -> list[Path]:
    """A closed journal of a few sealed segments, written by the real writer."""
    writer = JournalWriter(directory, WriterOptions(segment_max_bytes=4096))
    writer.open()
    n = 0
    while len(list_segments(directory)) < segments:
        writer.append_messages(
            [Incoming(1_700_000_000 * 10**9 + n, CORE_SUBJECT, "", None, EVENT % n, None)]
        )
        n += 1
    writer.close()
    return [segment.path for segment in list_segments(directory)]


def _as_user(user: int) -> list[str]:
    """argv prefix dropping to `user` (setpriv execs before the drop takes the path lookup away)."""
    assert SETPRIV is not None
    return [SETPRIV, f"--reuid={user}", f"--regid={user}", "--clear-groups", "--"]


def _cli(*args: str, user: int | None = None) -> subprocess.CompletedProcess[str]:
    prefix = _as_user(user) if user is not None else []
    return subprocess.run(
        [*prefix, *RECORDER, *args],
        capture_output=True,
        text=True,
        env=clean_env({"PYTHONDONTWRITEBYTECODE": "1"}),
        timeout=60,
        check=False,
    )


def _one_error_line(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """The single `Error:` line of a failed command, with no traceback beside it."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim"
    path.write_bytes(VICTIM_TEXT)
    path.chmod(0o644)
    return path


def _untouched(victim: Path) -> None:
    assert victim.read_bytes() == VICTIM_TEXT
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644


# -- links planted in the journal directory -------------------------------------------------------


@pytest.mark.parametrize("command", ["inspect", "verify", "dump", "compact", "repair"])
def test_a_link_planted_as_a_segment_is_refused_by_every_reader(
    command: str, tmp_path: Path, victim: Path
) -> None:
    """A symlink named like a segment is refused with an Error line naming it; its target is neither read nor changed."""
    journal = tmp_path / "journal"
    paths = _journal(journal)
    planted = paths[1]
    planted.unlink()
    planted.symlink_to(victim)
    args = [command, str(journal)]
    if command == "compact":
        args += ["--out", str(tmp_path / "snapshot.yaml")]
    line = _one_error_line(_cli(*args), str(planted), "symbolic link")
    _untouched(victim)
    report(f"link planted as a segment: {command}", error_line=line.replace(str(tmp_path), "…"))


def test_a_link_planted_as_a_segment_is_refused_by_the_daemon(tmp_path: Path, victim: Path) -> None:
    """`recorder run` on a journal holding a linked segment stops at start with one Error line and never writes through it."""
    journal = tmp_path / "journal"
    paths = _journal(journal)
    paths[-1].unlink()
    paths[-1].symlink_to(victim)
    result = _cli("run", "--journal-dir", str(journal), "--http-listen", "off")
    _one_error_line(result, str(paths[-1]), "symbolic link")
    _untouched(victim)


def test_a_link_planted_as_the_lock_file_is_refused(tmp_path: Path, victim: Path) -> None:
    """A symlink at DIR/LOCK stops `recorder run` with one Error line naming LOCK; the target is not truncated."""
    journal = tmp_path / "journal"
    _journal(journal)
    (journal / "LOCK").unlink(missing_ok=True)
    (journal / "LOCK").symlink_to(victim)
    result = _cli("run", "--journal-dir", str(journal), "--http-listen", "off")
    _one_error_line(result, str(journal / "LOCK"), "symbolic link")
    _untouched(victim)


def test_a_link_planted_as_the_checkpoint_is_refused(tmp_path: Path, victim: Path) -> None:
    """`compact --checkpoint` refuses a checkpoint that is a symlink, and leaves its target alone."""
    journal = tmp_path / "journal"
    _journal(journal)
    (journal / "checkpoint.compact").symlink_to(victim)
    result = _cli("compact", str(journal), "--checkpoint", "--out", str(tmp_path / "s.yaml"))
    _one_error_line(result, "checkpoint.compact", "symbolic link")
    _untouched(victim)


def test_temporary_files_get_unpredictable_names(tmp_path: Path) -> None:
    """Two atomic writes of one file use different temporary names, so none can be guessed ahead."""
    target = tmp_path / "snapshot.yaml"
    temporaries: list[str] = []
    for _ in range(2):
        with atomic_file(target):
            temporaries += [path.name for path in tmp_path.iterdir() if path.suffix == ".tmp"]
    assert len(set(temporaries)) == 2, temporaries
    assert all(name.startswith(".snapshot.yaml.") for name in temporaries)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["snapshot.yaml"]


def test_a_link_at_the_temporary_name_is_refused(
    tmp_path: Path, victim: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Had a link been planted at the temporary name, O_EXCL and O_NOFOLLOW refuse it; its target is untouched."""
    monkeypatch.setattr("recorder.fsutil.os.urandom", bytes)  # eight zero bytes: "0000..."
    planted = tmp_path / f".snapshot.yaml.{'00' * 8}.tmp"
    planted.symlink_to(victim)
    with pytest.raises(PathAccessError) as caught, atomic_file(tmp_path / "snapshot.yaml") as out:
        out.write(b"never written")
    assert caught.value.path == str(planted)
    _untouched(victim)
    assert not (tmp_path / "snapshot.yaml").exists()


# -- the journal directory open to others ---------------------------------------------------------


def test_a_journal_directory_open_to_others_is_tightened_with_a_warning(
    nats_server: Broker, recorders: Recorders, tmp_path: Path
) -> None:
    """An existing journal directory with group/world access becomes 0700 at start, with a warning event naming the old mode."""
    journal = tmp_path / "journal"
    journal.mkdir()
    journal.chmod(0o777)  # as a Kubernetes emptyDir comes
    recorder = recorders.start(journal, nats_server.url)
    recorder.wait_ready()
    publish(nats_server.url, numbered(CORE_SUBJECT, 3))
    recorder.wait_written(3)
    assert recorder.stop() == 0
    assert stat.S_IMODE(journal.stat().st_mode) == 0o700
    event = recorder.wait_event("journal_dir_permissions_tightened")
    assert event["mode"] == "0o777" and event["now"] == "0o700", event
    assert event["level"] == "warning"


# -- a segment the user cannot read ---------------------------------------------------------------


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory `nobody` can reach (pytest's tmp_path sits under a root-only 0700 directory)."""
    path = Path(tempfile.mkdtemp(prefix="recorder-hostile-"))
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


READERS = {
    "inspect": [],
    "verify": [],
    "dump": [],
    "compact": ["--out", "-"],
    "replay": ["--dry-run"],
    "repair": [],
}


@pytest.mark.skipif(SETPRIV is None or os.geteuid() != 0, reason="needs root and setpriv")
@pytest.mark.parametrize("command", list(READERS))
def test_a_segment_the_user_cannot_read_is_one_error_line(command: str, shared_dir: Path) -> None:
    """Run as an ordinary user, every command that reads the journal names the unreadable segment in one Error line."""
    journal = shared_dir / "journal"
    paths = _journal(journal)
    os.chown(journal, NOBODY, NOBODY)
    for path in journal.iterdir():
        os.chown(path, NOBODY, NOBODY)
    os.chown(paths[1], 0, 0)  # still 0600: root's alone now
    result = _cli(command, str(journal), *READERS[command], user=NOBODY)
    line = _one_error_line(result, str(paths[1]), "permission denied")
    report(f"unreadable segment: {command}", error_line=line.replace(str(shared_dir), "…"))


# -- permissions lost mid-run ---------------------------------------------------------------------


def _dropped(samples: dict[str, float]) -> int:
    name = "meshsync_recorder_messages_dropped_total{"
    return int(sum(value for key, value in samples.items() if key.startswith(name)))


def _accounted(samples: dict[str, float]) -> int:
    written_name = "meshsync_recorder_messages_written_total{"
    written = sum(value for key, value in samples.items() if key.startswith(written_name))
    return int(written) + _dropped(samples) + int(samples["meshsync_recorder_queue_depth"])


@pytest.mark.skipif(SETPRIV is None or os.geteuid() != 0, reason="needs root and setpriv")
def test_write_permission_lost_mid_run_is_a_marked_gap_and_recording_resumes(
    nats_server: Broker, recorders: Recorders, shared_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A daemon running as an ordinary user whose journal directory loses its write bit stays up, answers 503 on /readyz, counts the lost messages, and once the bit is back is ready again by itself, with a DROPPED marker holding the exact count."""
    journal = shared_dir / "journal"
    journal.mkdir(mode=0o700)
    os.chown(journal, NOBODY, NOBODY)
    monkeypatch.setattr(run_helpers, "RECORDER", [*_as_user(NOBODY), *RECORDER])
    recorder = recorders.start(
        journal,
        nats_server.url,
        env={"RECORDER_JOURNAL_SEGMENT_MAX_BYTES": "4KiB"},  # rotations keep creating files
    )
    recorder.wait_ready()
    sent = 0
    publish(nats_server.url, numbered(CORE_SUBJECT, 20, prefix="x" * 100))
    sent += 20
    recorder.wait_written(sent)

    journal.chmod(0o500)  # the write bit taken away: the next segment cannot be created
    batch = 0

    def not_ready() -> bool:
        nonlocal sent, batch
        batch += 1
        publish(nats_server.url, numbered(CORE_SUBJECT, 20, start=sent, prefix="y" * 100))
        sent += 20
        response = recorder.get("/readyz")
        return response is not None and response[0] == 503

    wait_until(not_ready, 20, "/readyz to answer 503")
    response = recorder.get("/readyz")
    assert response is not None and "journal not writable" in response[1], response
    assert recorder.alive()
    # Written, counted as dropped, or queued behind the DROPPED marker that cannot be written.
    wait_until(lambda: _accounted(recorder.metrics()) == sent, 15, "every message accounted for")
    assert _dropped(recorder.metrics()) > 0
    assert recorder.metrics()["meshsync_recorder_write_errors_total"] > 0

    journal.chmod(0o700)
    recorder.wait_ready(timeout=20)  # by itself: the DROPPED marker is the first write
    publish(nats_server.url, numbered(CORE_SUBJECT, 10, start=sent, prefix="z" * 100))
    sent += 10
    wait_until(
        lambda: recorder.written() + _dropped(recorder.metrics()) == sent, 15, "all accounted"
    )
    lost = _dropped(recorder.metrics())
    assert recorder.stop() == 0

    records = read_records(journal)
    drops = markers_of(records, MarkerType.DROPPED)
    assert sum(marker.fields["count"] for marker in drops) == lost
    assert len(messages_of(records)) == sent - lost
    assert verify_journal(journal).clean
    events = recorder.event_names()
    assert "journal_write_failed" in events and "journal_writable_again" in events
    report(
        "write permission lost mid-run",
        published=sent,
        journaled=len(messages_of(records)),
        dropped=lost,
        dropped_in_markers=sum(marker.fields["count"] for marker in drops),
        drop_markers=len(drops),
        verify_clean=True,
    )
