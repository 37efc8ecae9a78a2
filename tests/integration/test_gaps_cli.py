"""Gaps and wrong directories are never silent: compact, replay, verify and dump as processes."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import msgpack
import pytest
from broker import Broker
from cli_streams import log_records
from run_helpers import run_cli
from test_replay_support import Collector, build_journal, replay_cli, sent_count

from recorder.journal.segment import list_segments, segment_name, summarize
from recorder.meshsync import CORE_SUBJECT

SAMPLE = Path(__file__).parent.parent / "data" / "meshsync-samples" / "core-added-pod.json"
T0 = 1_767_225_600 * 10**9
PER_SEGMENT = 10
SEGMENTS = 6


def _pod(index: int) -> bytes:
    """The sample pod ADDED event under its own uid, so every message is its own object."""
    return SAMPLE.read_bytes().replace(b'"uid":"', f'"uid":"{index:04d}-'.encode(), 1)


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    """A closed journal of SEGMENTS sealed segments of PER_SEGMENT pod events each."""
    directory = tmp_path / "journal"
    traffic = [(T0 + i * 10**6, CORE_SUBJECT, _pod(i)) for i in range(PER_SEGMENT * SEGMENTS)]
    build_journal(directory, traffic, rotate_every=PER_SEGMENT)
    return directory


def _seq_range(directory: Path, number: int) -> tuple[int, int]:
    segment = next(s for s in list_segments(directory) if s.number == number)
    footer = summarize(segment).footer
    assert footer is not None
    return footer.first_seq, footer.last_seq


def _cli(*args: str | Path) -> tuple[int, str, str]:
    result = run_cli(*(str(arg) for arg in args))
    return result.returncode, result.stdout.decode(), result.stderr.decode()


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Error:")]


def _header(snapshot: Path) -> dict[str, str]:
    lines = snapshot.read_text().splitlines()
    pairs = (line[2:].split(": ", 1) for line in lines if line.startswith("# ") and ": " in line)
    return dict(pairs)


def test_compact_with_a_missing_segment_fails_but_records_the_gap(
    journal: Path, tmp_path: Path
) -> None:
    """A hole in the numbering: the missing range on stderr, exit 1, and in the snapshot's header."""
    first, last = _seq_range(journal, 3)
    (journal / segment_name(3)).unlink()
    described = f"segment 3 seq {first}..{last} missing"
    out = tmp_path / "snapshot.yaml"
    code, _, err = _cli("compact", journal, "--out", out)
    assert code == 1, err
    assert _error_lines(err) == [f"Error: {journal}: records missing: {described}"]
    assert "Traceback" not in err
    assert _header(out)["gaps"] == described
    code, _, err = _cli("compact", journal, "--out", out, "--allow-gaps")
    assert code == 0, err
    warnings = [r for r in log_records(err) if r["event"] == "journal_gap"]
    assert [(w["journal"], w["gap"]) for w in warnings] == [(str(journal), described)]
    assert _header(out)["gaps"] == described
    listing = tmp_path / "snapshot.json"
    code, _, err = _cli("compact", journal, "--format", "json", "--out", listing, "--allow-gaps")
    assert code == 0, err
    annotations = json.loads(listing.read_text())["metadata"]["annotations"]
    assert annotations["meshery.io/snapshot-gaps"] == described
    assert len(json.loads(listing.read_text())["items"]) == PER_SEGMENT * (SEGMENTS - 1)


def _checkpoint_last_seq(journal: Path) -> int:
    state = msgpack.unpackb((journal / "checkpoint.compact").read_bytes(), raw=False)
    return int(state["range"][1])


def test_a_checkpoint_resume_past_missing_records_fails_until_allowed(
    journal: Path, tmp_path: Path
) -> None:
    """Segments after the checkpoint gone: refused, checkpoint kept; allowed once, remembered."""
    _, covered = _seq_range(journal, 2)
    out = tmp_path / "snapshot.yaml"
    code, _, err = _cli("compact", journal, "--checkpoint", "--until", str(covered), "--out", out)
    assert code == 0, err
    for number in (1, 2, 3, 4):  # as retention would: oldest first, past the checkpoint
        (journal / segment_name(number)).unlink()
    first, _ = _seq_range(journal, 5)
    described = f"seq {covered + 1}..{first - 1} missing after the checkpoint"
    code, _, err = _cli("compact", journal, "--checkpoint", "--out", out)
    assert code == 1, err
    assert _error_lines(err) == [f"Error: {journal}: records missing: {described}"]
    assert _checkpoint_last_seq(journal) == covered  # not moved past the hole
    assert _header(out)["gaps"] == described
    code, _, err = _cli("compact", journal, "--checkpoint", "--out", out, "--allow-gaps")
    assert code == 0, err
    assert _checkpoint_last_seq(journal) > first
    code, _, err = _cli("compact", journal, "--checkpoint", "--out", out)
    assert code == 0, err  # accepted once; every later snapshot still says so
    assert _header(out)["gaps"] == described


def test_replay_refuses_a_journal_with_a_hole_before_sending(
    nats_server: Broker, journal: Path
) -> None:
    """replay: the missing range and exit 1 before anything is sent; --allow-gaps sends the rest."""
    first, last = _seq_range(journal, 4)
    (journal / segment_name(4)).unlink()
    with Collector(nats_server.url, "g.>") as collector:
        args = ["--nats-url", nats_server.url, "--subject-prefix", "g", "--speed", "max"]
        result = replay_cli(journal, *args)
        assert result.returncode == 1, result.stderr
        assert _error_lines(result.stderr) == [
            f"Error: {journal}: records missing: segment 4 seq {first}..{last} missing"
        ]
        assert not re.search(r"^sent \d+", result.stderr, re.MULTILINE)
        assert collector.sync() == []
        result = replay_cli(journal, *args, "--allow-gaps")
        assert result.returncode == 0, result.stderr
        assert len(collector.sync()) == sent_count(result.stderr) == PER_SEGMENT * (SEGMENTS - 1)
    # A range that does not reach the hole replays without complaint.
    result = replay_cli(journal, "--dry-run", "--to-seq", str(first - 1))
    assert result.returncode == 0, result.stderr


def test_a_directory_that_is_no_journal_is_refused_by_every_reader(tmp_path: Path) -> None:
    """`verify /etc` and friends: one Error line naming the directory, exit 2, no '0 segments'."""
    other = tmp_path / "etc"
    other.mkdir()
    for name in ("passwd", "hosts", "fstab", "group"):
        (other / name).write_text("x\n")
    for command in (
        ("verify",),
        ("inspect",),
        ("dump",),
        ("compact", "--out", str(tmp_path / "s.yaml")),
        ("replay", "--dry-run"),
    ):
        code, out, err = _cli(command[0], other, *command[1:])
        assert code == 2, (command, err)
        assert _error_lines(err) == [
            f"Error: {other}: not a journal directory (no segment and no LOCK file; "
            "4 other entries: fstab, group, hosts, ...)"
        ], command
        assert "segments" not in out and "Traceback" not in err
    assert not (tmp_path / "s.yaml").exists()


def test_compact_of_an_empty_journal_keeps_the_existing_snapshot(
    journal: Path, tmp_path: Path
) -> None:
    """An empty journal never replaces a snapshot with an empty one; with no snapshot it writes one."""
    out = tmp_path / "snapshot.yaml"
    code, _, err = _cli("compact", journal, "--out", out)
    assert code == 0, err
    before = out.read_bytes()
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = _cli("compact", empty, "--out", out)
    assert code == 1, err
    assert _error_lines(err) == [
        f"Error: {empty}: the journal holds no messages; {out} left as it was, "
        "not replaced by an empty snapshot"
    ]
    assert out.read_bytes() == before
    fresh = tmp_path / "fresh.yaml"
    code, _, err = _cli("compact", empty, "--out", fresh)
    assert code == 0, err
    assert _header(fresh)["objects"] == "0"
    shutil.rmtree(empty)
