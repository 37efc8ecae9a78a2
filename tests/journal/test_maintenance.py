"""inspect, verify and repair of journal directories, and the lock probe."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from recorder.errors import JournalError, LockedError
from recorder.journal.lock import LOCK_NAME, holder_pid, is_locked
from recorder.journal.maintenance import inspect_journal, verify_journal
from recorder.journal.record import (
    Footer,
    Message,
    SegmentHeader,
    encode_footer,
    encode_header,
    encode_message,
    encode_messages,
)
from recorder.journal.repair import repair_journal
from recorder.journal.segment import list_segments, segment_name

from ._helpers import (
    INSTANCE,
    T0,
    FakeClock,
    digest,
    items,
    open_writer,
    quarantine_files,
    read_all,
    records_of,
)

SECOND = 10**9


def _journal(directory: Path, segments: int = 3, per_segment: int = 4) -> None:
    clock = FakeClock()
    writer = open_writer(directory, clock)
    for n in range(segments):
        writer.append_messages(items(per_segment, start_ns=clock.now, step_ns=SECOND))
        clock.advance(per_segment * SECOND)
        if n < segments - 1:
            writer.rotate()
    writer.close()


def _handmade_segment(path: Path, number: int, seqs: list[int], footer: Footer | None) -> None:
    """A segment built from the framing functions alone, with whatever seqs and footer we like."""
    records = b"".join(
        encode_message(Message(seq, T0 + seq, "s", "", None, b"p", None)) for seq in seqs
    )
    tail = encode_footer(footer) if footer is not None else b""
    path.write_bytes(encode_header(SegmentHeader(number, T0, INSTANCE)) + records + tail)


# -- inspect ----------------------------------------------------------------------------------


def test_inspect_describes_sealed_segments_with_counts_and_ranges(tmp_path: Path) -> None:
    """Every sealed segment is listed with its records, messages, bytes and seq/time ranges."""
    directory = tmp_path / "j"
    _journal(directory)
    rows = inspect_journal(directory)
    assert [(r.name, r.number, r.state, r.compressed) for r in rows] == [
        (segment_name(n), n, "sealed", False) for n in (1, 2, 3)
    ]
    records = read_all(directory)[0]
    for row in rows:
        mine = [r for p, r in records if p.segment == row.number]
        assert row.records == len(mine)
        assert row.messages == sum(isinstance(r, Message) for r in mine)
        assert (row.first_seq, row.last_seq) == (mine[0].seq, mine[-1].seq)
        assert (row.first_time_ns, row.last_time_ns) == (mine[0].time_ns, mine[-1].time_ns)
        assert row.bytes == (directory / row.name).stat().st_size
    assert [r.records for r in rows] == [5, 4, 5]  # STARTED + 4, 4, 4 + STOPPED
    assert [r.messages for r in rows] == [4, 4, 4]


def test_inspect_shows_the_active_segment_while_a_writer_holds_the_lock(tmp_path: Path) -> None:
    """With a live writer the newest segment is `active`, counted by scanning it."""
    directory = tmp_path / "j"
    writer = open_writer(directory)
    writer.append_messages(items(3))
    writer.rotate()
    writer.append_messages(items(2))
    try:
        assert is_locked(directory)
        rows = inspect_journal(directory)
        assert [r.state for r in rows] == ["sealed", "active"]
        assert (rows[1].records, rows[1].messages, rows[1].first_seq, rows[1].last_seq) == (
            2,
            2,
            5,
            6,
        )
        # A half-written record at the end of the active segment is a write in progress.
        assert writer.active_segment is not None
        with writer.active_segment.path.open("ab") as handle:
            handle.write(encode_messages(7, items(1))[0][:10])
        assert [r.state for r in inspect_journal(directory)] == ["sealed", "active"]
        report = verify_journal(directory)
        assert report.clean
        assert report.in_progress == segment_name(2)
    finally:
        writer.abandon()
    assert [r.state for r in inspect_journal(directory)] == ["sealed", "torn"]


def test_inspect_states_of_crashed_segments(tmp_path: Path) -> None:
    """A crashed writer's segment is `unsealed` when it ends cleanly, `torn` when it ends
    mid-record, and `corrupt` when damage is followed by valid records."""
    states = {}
    for case in ("unsealed", "torn", "corrupt"):
        directory = tmp_path / case
        writer = open_writer(directory)
        writer.append_messages(items(3))
        active = writer.active_segment
        assert active is not None
        writer.abandon()
        if case == "torn":
            with active.path.open("ab") as handle:
                handle.write(encode_messages(5, items(1))[0][:-3])
        if case == "corrupt":
            data = bytearray(active.path.read_bytes())
            data[-5] ^= 0x01  # inside the last message, which is followed by nothing...
            data += encode_messages(5, items(1))[0]  # ...until a valid record follows
            active.path.write_bytes(bytes(data))
        rows = inspect_journal(directory)
        states[case] = rows[0].state
        assert rows[0].first_seq == 1
    assert states == {"unsealed": "unsealed", "torn": "torn", "corrupt": "corrupt"}


def test_inspect_of_an_empty_sealed_segment_has_no_ranges(tmp_path: Path) -> None:
    """A repaired empty segment is sealed with zero records and no seq or time ranges."""
    directory = tmp_path / "j"
    _journal(directory, segments=1)
    (directory / segment_name(2)).write_bytes(b"")
    repair_journal(directory)
    rows = inspect_journal(directory)
    assert [(r.state, r.records) for r in rows] == [("sealed", 6), ("sealed", 0)]
    assert (rows[1].first_seq, rows[1].last_seq, rows[1].first_time_ns) == (None, None, None)


def test_inspect_and_verify_refuse_a_missing_directory(tmp_path: Path) -> None:
    """A missing directory is a JournalError naming it."""
    for command in (inspect_journal, verify_journal, repair_journal):
        with pytest.raises(JournalError, match="no such directory"):
            command(tmp_path / "nope")


def test_inspect_of_an_empty_directory_is_empty(tmp_path: Path) -> None:
    """A directory with no segments has no rows and verifies clean."""
    assert inspect_journal(tmp_path) == []
    assert verify_journal(tmp_path).clean


# -- verify -----------------------------------------------------------------------------------


def test_verify_reports_gaps_in_segment_numbering(tmp_path: Path) -> None:
    """Missing segments between the first and last are reported as one range each."""
    directory = tmp_path / "j"
    clock = FakeClock()
    writer = open_writer(directory, clock)
    for _ in range(6):
        writer.append_messages(items(1))
        writer.rotate()
    writer.close()
    for number in (2, 3, 6):
        (directory / segment_name(number)).unlink()
    report = verify_journal(directory)
    assert [(p.segment, p.offset, p.reason) for p in report.problems] == [
        (segment_name(2), None, "segments 2..3 are missing"),
        (segment_name(6), None, "segments 6..6 are missing"),
    ]
    assert report.segments == 4


def test_verify_accepts_a_journal_trimmed_from_the_front(tmp_path: Path) -> None:
    """Deleting the oldest segments (what retention does) is not a gap."""
    directory = tmp_path / "j"
    _journal(directory)
    (directory / segment_name(1)).unlink()
    assert verify_journal(directory).clean


def test_verify_reports_an_unsealed_segment_of_a_stopped_writer(tmp_path: Path) -> None:
    """A segment left unsealed by a writer that is gone is reported as not sealed."""
    directory = tmp_path / "j"
    writer = open_writer(directory)
    writer.append_messages(items(1))
    writer.abandon()
    problems = verify_journal(directory).problems
    assert [(p.segment, p.reason) for p in problems] == [
        (segment_name(1), "not sealed (writer stopped uncleanly)")
    ]


def test_verify_reports_a_misplaced_segment(tmp_path: Path) -> None:
    """A segment copied under another number shows as a wrong header and a sequence going back."""
    directory = tmp_path / "j"
    _journal(directory, segments=2)
    shutil.copy(directory / segment_name(1), directory / segment_name(3))
    reasons = {(p.segment, p.reason) for p in verify_journal(directory).problems}
    assert (segment_name(3), "header says segment 1") in reasons
    assert (segment_name(3), "sequence 1 does not follow 10") in reasons


def test_verify_reports_a_footer_that_disagrees_with_the_records(tmp_path: Path) -> None:
    """A footer whose counts, seq range or time range differ from the records is reported."""
    footer, found = Footer(1, 3, T0, T0, 3, 3), Footer(1, 2, T0 + 1, T0 + 2, 2, 2)
    _handmade_segment(tmp_path / segment_name(1), 1, [1, 2], footer)
    problems = verify_journal(tmp_path).problems
    assert [p.reason for p in problems] == [f"footer says {footer}, records say {found}"]


def test_verify_and_repair_handle_a_sequence_going_backwards(tmp_path: Path) -> None:
    """A record whose seq does not increase is reported, and repair moves it aside."""
    _handmade_segment(tmp_path / segment_name(1), 1, [5, 3, 6], None)
    problems = verify_journal(tmp_path).problems
    assert any("sequence 3 does not follow 5" in p.reason for p in problems)
    report = repair_journal(tmp_path)
    assert [q.reason for q in report.quarantined] == ["sequence 3 does not follow 5"]
    assert verify_journal(tmp_path).clean
    assert [r.seq for r in records_of(tmp_path)] == [5, 6]


# -- repair -----------------------------------------------------------------------------------


def test_repair_refuses_a_journal_with_a_live_writer(tmp_path: Path) -> None:
    """repair takes the writer's lock, so it cannot run under a live writer."""
    directory = tmp_path / "j"
    writer = open_writer(directory)
    try:
        with pytest.raises(LockedError):
            repair_journal(directory)
    finally:
        writer.close()


def test_repair_of_a_clean_journal_changes_nothing(tmp_path: Path) -> None:
    """A clean journal is left byte-for-byte alone by repair."""
    directory = tmp_path / "j"
    _journal(directory)
    before = {s.path.name: digest(s.path) for s in list_segments(directory)}
    report = repair_journal(directory)
    assert (report.segments_repaired, report.quarantined) == ([], [])
    assert {p.path.name: digest(p.path) for p in list_segments(directory)} == before
    assert quarantine_files(directory) == []


def test_repair_never_touches_later_segments(tmp_path: Path) -> None:
    """Damage in the first segment is repaired there; later segments keep every byte."""
    directory = tmp_path / "j"
    _journal(directory)
    later = {n: digest(directory / segment_name(n)) for n in (2, 3)}
    path = directory / segment_name(1)
    data = bytearray(path.read_bytes())
    data[100] ^= 0x40
    path.write_bytes(bytes(data))
    report = repair_journal(directory)
    assert report.segments_repaired == [segment_name(1)]
    assert {n: digest(directory / segment_name(n)) for n in (2, 3)} == later
    assert verify_journal(directory).clean


# -- the lock probe ---------------------------------------------------------------------------

_HOLD_AND_SLEEP = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from recorder.journal.record import Incoming
    from recorder.journal.writer import JournalWriter
    writer = JournalWriter(Path(sys.argv[1]))
    writer.open()
    writer.append_messages([Incoming(1, "a", "", None, b"x", None)])
    print("ready", flush=True)
    time.sleep(60)
    """
)


def test_is_locked_follows_the_writer(tmp_path: Path) -> None:
    """is_locked is false with no lock file, true while a writer is open, false after close."""
    directory = tmp_path / "j"
    assert not is_locked(directory)
    writer = open_writer(directory)
    assert is_locked(directory)
    writer.close()
    assert not is_locked(directory)
    assert (directory / LOCK_NAME).exists()
    assert holder_pid(directory) is None


def test_lock_dies_with_its_process(tmp_path: Path) -> None:
    """A writer killed with SIGKILL releases the lock, and the next writer recovers its segment."""
    directory = tmp_path / "j"
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLD_AND_SLEEP, str(directory)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        assert is_locked(directory)
        assert holder_pid(directory) == child.pid
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert not is_locked(directory)
    writer = open_writer(directory)
    assert writer.recovery is not None
    assert (writer.recovery.clean, writer.recovery.previous_last_seq) == (False, 2)
    writer.close()
    assert verify_journal(directory).clean
