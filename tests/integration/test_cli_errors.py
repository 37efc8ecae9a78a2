"""No traceback, ever: each input the CLI cannot use ends in one `Error:` line and an exit code.

Every case runs the real `recorder` in its own process. Permission cases drop root's power to
bypass file permissions in that child (setpriv removes CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH
from its bounding set), so a file with mode 000 is as unreadable to it as to any other user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from run_helpers import RECORDER, clean_env, free_port
from test_replay_support import build_journal, sent_count

from recorder.compact.run import CompactRequest, run_compaction
from recorder.demo.simulator import Simulator
from recorder.journal.segment import list_segments

T0 = 1_795_000_000 * 10**9
SETPRIV = shutil.which("setpriv")
# What a user without root's override sees: mode bits apply to this child again.
UNPRIVILEGED = [SETPRIV or "setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner"]
needs_setpriv = pytest.mark.skipif(SETPRIV is None, reason="setpriv (util-linux) not installed")


def recorder(
    *args: str | Path,
    unprivileged: bool = False,
    preexec: Callable[[], None] | None = None,
    timeout: float = 60.0,
) -> subprocess.CompletedProcess[str]:
    """Run `recorder ARGS` in its own process and wait for it; output decoded."""
    argv = [*RECORDER, *map(str, args)]
    return subprocess.run(
        [*UNPRIVILEGED, *argv] if unprivileged else argv,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_env(),
        preexec_fn=preexec,  # only ever closes a descriptor before exec
        check=False,
    )


def human_lines(stderr: str) -> list[str]:
    """stderr without the JSON log lines."""
    return [line for line in stderr.splitlines() if line and not line.startswith("{")]


def journal(directory: Path, messages: int = 9, *, rotate_every: int = 3) -> Path:
    """A closed journal of `messages` small messages, a segment per `rotate_every`."""
    build_journal(
        directory,
        [(T0 + i * 10**9, f"meshery.meshsync.s{i % 2}", b"x" * 100) for i in range(messages)],
        rotate_every=rotate_every,
    )
    return directory


def assert_one_error(result: subprocess.CompletedProcess[str], first_line: str, code: int) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == code, result.stderr
    lines = human_lines(result.stderr)
    assert lines[0] == first_line, result.stderr
    assert all(line.startswith("Hint: ") for line in lines[1:]), result.stderr


# -- permissions ---------------------------------------------------------------------------------

READERS = [
    ("inspect",),
    ("verify",),
    ("dump",),
    ("repair",),
    ("compact", "--out", "-"),
    ("replay", "--dry-run"),
]


@needs_setpriv
@pytest.mark.parametrize("command", READERS, ids=lambda command: command[0])
def test_an_unreadable_segment_is_one_error_line(tmp_path: Path, command: tuple[str, ...]) -> None:
    """Every command that reads segments names the one it may not read, and exits 1."""
    directory = journal(tmp_path / "journal")
    segment = list_segments(directory)[0].path
    segment.chmod(0)
    result = recorder(command[0], directory, *command[1:], unprivileged=True)
    assert_one_error(result, f"Error: {segment}: permission denied for reading", 1)
    assert "Hint: run as a user allowed to use that file" in result.stderr


def run_unprivileged(directory: Path) -> subprocess.CompletedProcess[str]:
    """`recorder run` on `directory` without root's override; no broker listens on its URL."""
    url = f"nats://127.0.0.1:{free_port()}"
    args = ("run", "--journal-dir", directory, "--nats-url", url, "--http-listen", "off")
    return recorder(*args, unprivileged=True)


@needs_setpriv
def test_an_unreadable_lock_is_named_not_called_an_unwritable_directory(tmp_path: Path) -> None:
    """`run` on a journal whose LOCK it may not open names the LOCK, not the directory."""
    directory = journal(tmp_path / "journal")
    (directory / "LOCK").chmod(0)
    result = run_unprivileged(directory)
    assert_one_error(result, f"Error: {directory / 'LOCK'}: permission denied for writing", 1)


@needs_setpriv
def test_a_read_only_journal_directory_is_called_not_writable(tmp_path: Path) -> None:
    """`run` into a directory it may not create files in says the directory is not writable."""
    directory = tmp_path / "journal"
    directory.mkdir(mode=0o555)
    result = run_unprivileged(directory)
    assert_one_error(
        result, f"Error: {directory}: journal directory not writable (Permission denied)", 1
    )


# -- what the path is instead ----------------------------------------------------------------------


def test_run_with_a_file_as_journal_dir_says_it_is_a_file(tmp_path: Path) -> None:
    """`run --journal-dir FILE` says FILE is a file, not that it 'exists'."""
    target = tmp_path / "notes.txt"
    target.write_text("mine\n")
    result = recorder(
        "run", "--journal-dir", target, "--nats-url", f"nats://127.0.0.1:{free_port()}"
    )
    assert_one_error(
        result, f"Error: {target}: not a journal directory (a file, not a directory)", 1
    )
    assert target.read_text() == "mine\n"


@pytest.mark.parametrize(
    ("command", "code"), [(("inspect",), 1), (("compact",), 2), (("replay", "--dry-run"), 2)]
)
def test_a_file_given_as_the_journal_says_it_is_a_file(
    tmp_path: Path, command: tuple[str, ...], code: int
) -> None:
    """A file where DIR should be is called a file, not a missing directory."""
    target = tmp_path / "notes.txt"
    target.write_text("mine\n")
    result = recorder(command[0], target, *command[1:])
    assert_one_error(
        result, f"Error: {target}: not a journal directory (a file, not a directory)", code
    )


# -- stdout going away -------------------------------------------------------------------------------


def test_a_reader_that_stops_early_ends_dump_quietly_with_0(tmp_path: Path) -> None:
    """`recorder dump DIR | head -1` (with pipefail) exits 0 and prints nothing on stderr."""
    directory = journal(tmp_path / "journal", messages=3000, rotate_every=1000)
    command = " ".join([*RECORDER, "dump", str(directory)])
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"{command} | head -1"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('{"seq":')
    assert result.stdout.count("\n") == 1
    assert result.stderr == ""


def _close_stdout() -> None:
    os.close(1)


@pytest.mark.parametrize(
    "command", [("inspect",), ("dump",), ("verify",), ("replay", "--dry-run", "-o", "json")]
)
def test_a_closed_stdout_loses_the_output_not_the_exit_code(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    """A command started with stdout closed (`>&-`) runs as usual and exits 0."""
    directory = journal(tmp_path / "journal")
    result = recorder(command[0], directory, *command[1:], preexec=_close_stdout)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


def test_a_closed_stdout_never_lands_in_a_file_the_command_writes(tmp_path: Path) -> None:
    """With stdout closed, compact's snapshot is still only the snapshot: nothing printed into it."""
    directory = journal(tmp_path / "journal")
    out = tmp_path / "snapshot.json"
    result = recorder("compact", directory, "--format", "json", "--out", out, preexec=_close_stdout)
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(out.read_text())["kind"] == "List"


# -- replay's values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (("--speed", "nan"), "--speed"),
        (("--speed", "inf"), "--speed"),
        (("--speed", "0"), "--speed"),
        (("--rate", "-1"), "--rate"),
        (("--rate", "nan"), "--rate"),
        (("--subject-prefix", "..x"), "--subject-prefix"),
        (("--subject-prefix", "a.*"), "--subject-prefix"),
        (("--subject-map", "meshery.*=..x.*"), "--subject-map"),
    ],
)
def test_replay_refuses_values_it_cannot_honour(
    tmp_path: Path, args: tuple[str, ...], flag: str
) -> None:
    """Paces that are not positive finite numbers, and subjects NATS would reject, exit 2."""
    directory = journal(tmp_path / "journal")
    result = recorder("replay", directory, "--dry-run", *args)
    assert result.returncode == 2, result.stderr
    lines = human_lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith(f"Error: {flag}: "), result.stderr
    assert result.stdout == ""


# -- MeshSync-format snapshots --------------------------------------------------------------------


def test_replay_reads_the_meshsync_snapshot_and_its_extended_file(tmp_path: Path) -> None:
    """Both files of `compact --format meshsync` replay: one ADDED message per document."""
    source = tmp_path / "journal"
    build_journal(source, [(m.time_ns, m.subject, m.payload) for m in Simulator(4).events(400)])
    result = run_compaction(CompactRequest(source, format="meshsync", out=tmp_path / "snaps"))
    main, extended = result.outputs
    for path in (main, extended):
        documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
        assert documents
        replayed = recorder("replay", "--snapshot", path, "--dry-run")
        assert replayed.returncode == 0, replayed.stderr
        assert sent_count(replayed.stderr) == len(documents)
    assert sent_count(recorder("replay", "--snapshot", main, "--dry-run").stderr) == (
        result.objects_written
    )


# -- after repair ---------------------------------------------------------------------------------


def test_verify_explains_a_numbering_gap_repair_cannot_fill(tmp_path: Path) -> None:
    """A missing segment keeps verify failing after repair, with a hint how to go on."""
    directory = journal(tmp_path / "journal")
    list_segments(directory)[1].path.unlink()
    repaired = recorder("repair", directory)
    assert repaired.returncode == 0, repaired.stderr
    result = recorder("verify", directory)
    assert result.returncode == 1
    assert "00000002.seg: segments 2..2 are missing" in result.stdout
    hints = [line for line in human_lines(result.stderr) if line.startswith("Hint: ")]
    assert len(hints) == 1
    assert "segments 2..2 are gone" in hints[0]
    assert "move the segments before 2 into a directory of their own" in hints[0]
    # The hint's way out works: the segments after the gap verify clean on their own.
    aside = tmp_path / "before-the-gap"
    aside.mkdir()
    for segment in list_segments(directory):
        if segment.number < 2:
            segment.path.rename(aside / segment.path.name)
    assert recorder("verify", directory).returncode == 0
    assert recorder("verify", aside).returncode == 0
