"""Reading a journal that is being written, compressed and cut by retention under the reader."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recorder.errors import NotAJournalError
from recorder.journal.gaps import MISSING, REMOVED, Bounds, Gap, GapTracker, listing_gaps
from recorder.journal.maintenance import inspect_journal, verify_journal
from recorder.journal.query import Query
from recorder.journal.reader import JournalReader
from recorder.journal.record import Message, encode_message
from recorder.journal.retention import RetentionPolicy, enforce_retention
from recorder.journal.segment import SegmentFile, compress_segment, list_segments, segment_name

from ._helpers import T0, items, open_writer, read_all, seqs

PER_SEGMENT = 50


def _journal(directory: Path, segments: int) -> list[int]:
    """A closed journal of `segments` sealed segments; returns every record's seq."""
    writer = open_writer(directory)
    for index in range(segments):
        if index:
            writer.rotate()
        writer.append_messages(items(PER_SEGMENT, start_ns=T0 + index * 10**9))
    writer.close()
    return seqs(record for _, record in read_all(directory)[0])


def _segment(directory: Path, number: int) -> SegmentFile:
    return next(segment for segment in list_segments(directory) if segment.number == number)


def test_a_segment_compressed_after_listing_is_read_from_its_twin(tmp_path: Path) -> None:
    """Compression between the listing and the open: the .seg.zst gives the same records."""
    directory = tmp_path / "j"
    expected = _journal(directory, 4)
    reader = JournalReader(directory, markers=True)
    batches = reader.batches()
    got = seqs(next(batches).records)  # segment 1 open: the listing is taken
    compress_segment(_segment(directory, 2))
    compress_segment(_segment(directory, 3))
    got += [record.seq for batch in batches for record in batch.records]
    assert got == expected
    assert reader.stats.gaps == [] and reader.stats.damages == []


def test_a_segment_compressed_while_open_is_read_on_to_its_end(tmp_path: Path) -> None:
    """Compression of the segment being read: the open file is read on, no record lost or doubled."""
    directory = tmp_path / "j"
    writer = open_writer(directory)
    writer.append_messages(items(40_000, payload=b"x" * 100))  # several read chunks
    writer.rotate()
    writer.append_messages(items(10))
    writer.close()
    expected = seqs(record for _, record in read_all(directory)[0])
    reader = JournalReader(directory, markers=True)
    batches = reader.batches()
    got = seqs(next(batches).records)
    compress_segment(_segment(directory, 1))
    assert not (directory / segment_name(1)).exists()
    got += [record.seq for batch in batches for record in batch.records]
    assert got == expected


def test_retention_behind_the_reader_is_no_gap_and_ahead_of_it_is_one(tmp_path: Path) -> None:
    """Retention deleting read segments changes nothing; deleting one not yet reached is a gap."""
    directory = tmp_path / "j"
    expected = _journal(directory, 5)
    reader = JournalReader(directory, markers=True)
    batches = reader.batches()
    got = list(next(batches).records)  # inside segment 1
    deleted = enforce_retention(directory, RetentionPolicy(max_segments=2), None, 0, T0)
    assert deleted == [segment_name(n) for n in (1, 2)]
    got += [record for batch in batches for record in batch.records]
    missing = set(range(PER_SEGMENT + 2, 2 * PER_SEGMENT + 2))  # segment 2's messages
    assert seqs(got) == [seq for seq in expected if seq not in missing]
    assert reader.stats.gaps == [Gap(2, 2, None, None, REMOVED, "middle")]
    # A later read returns the very same records for the range both have.
    later = {record.seq: record for _, record in read_all(directory)[0]}
    assert [record for record in got if record.seq in later] == list(later.values())


def test_the_live_writers_torn_tail_is_a_write_in_progress(tmp_path: Path) -> None:
    """Half a frame at the end of the locked active segment: read up to it, no damage reported."""
    directory = tmp_path / "j"
    writer = open_writer(directory)
    last = writer.append_messages(items(20))
    frame = encode_message(Message(last + 1, T0, "meshsync.events", "", None, b"{}", None))
    active = writer.active_segment
    assert active is not None
    fd = os.open(active.path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, frame[:20])  # what a concurrent reader sees mid-write
        reader = JournalReader(directory, markers=True)
        assert seqs(record for _, record in reader)[-1] == last
        assert reader.stats.damages == [] and reader.stats.in_progress == active.name
        report = verify_journal(directory)
        assert report.clean, report.problems
        os.write(fd, frame[20:])  # the write completes
    finally:
        os.close(fd)
    assert seqs(record for _, record in JournalReader(directory, markers=True))[-1] == last + 1
    writer.abandon()


def test_a_torn_tail_with_no_writer_is_still_reported(tmp_path: Path) -> None:
    """Without a live writer the same half frame is a torn tail, as before."""
    directory = tmp_path / "j"
    writer = open_writer(directory)
    writer.append_messages(items(5))
    active = writer.active_segment
    assert active is not None
    writer.abandon()
    with active.path.open("ab") as handle:
        handle.write(b"\xff\xfeMR\x40\x00")
    _, stats = read_all(directory)
    assert [damage.torn for damage in stats.damages] == [True]
    assert stats.in_progress is None


def test_inspect_and_verify_skip_a_segment_removed_under_them(tmp_path: Path) -> None:
    """inspect and verify of a journal whose segments vanish: rows for what is there, no crash."""
    directory = tmp_path / "j"
    _journal(directory, 3)
    compress_segment(_segment(directory, 2))
    assert [info.compressed for info in inspect_journal(directory)] == [False, True, False]
    report = verify_journal(directory)
    assert report.clean and report.removed == []


def test_a_numbering_gap_is_reported_with_its_sequence_range(tmp_path: Path) -> None:
    """A segment missing in the middle: a gap naming the segments and the seqs they held."""
    directory = tmp_path / "j"
    _journal(directory, 4)
    (directory / segment_name(2)).unlink()
    records, stats = read_all(directory)
    first, last = PER_SEGMENT + 2, 2 * PER_SEGMENT + 1
    assert stats.gaps == [Gap(2, 2, first, last, MISSING)]
    assert stats.gaps[0].describe() == f"segment 2 seq {first}..{last} missing"
    assert len(records) == 3 * PER_SEGMENT + 2  # started and stopped markers
    # A range wholly before or after the hole does not meet it.
    assert read_all(directory, query=Query(to_seq=first - 1))[1].gaps == []
    assert read_all(directory, query=Query(from_seq=last + 1))[1].gaps == []
    assert read_all(directory, query=Query(from_seq=first))[1].gaps == stats.gaps
    assert read_all(directory, query=Query(until_ns=T0 + 10))[1].gaps == []
    assert read_all(directory, query=Query(since_ns=T0 + 3 * 10**9))[1].gaps == []
    assert read_all(directory, query=Query(until_ns=T0 + 2 * 10**9))[1].gaps == stats.gaps
    assert listing_gaps(list_segments(directory), Bounds(to_seq=first - 1)) == []


def test_gap_tracker_places_removed_segments_before_in_and_after_what_was_read() -> None:
    """Removed before anything was read: the start; between reads: the middle; after: the end."""

    def seg(number: int) -> SegmentFile:
        return SegmentFile(number, Path(segment_name(number)))

    gaps: list[Gap] = []
    tracker = GapTracker(Bounds(), gaps)
    tracker.removed(seg(1))
    tracker.reached(seg(2), read=True)
    tracker.removed(seg(3))
    tracker.reached(seg(4), read=True)
    tracker.removed(seg(5))
    tracker.finish()
    assert [(gap.first_segment, gap.where) for gap in gaps] == [
        (1, "start"),
        (3, "middle"),
        (5, "end"),
    ]
    assert [gap.inside for gap in gaps] == [False, True, False]


def test_a_directory_that_is_no_journal_is_refused(tmp_path: Path) -> None:
    """Files but no segment and no LOCK: refused, naming the directory; empty is an empty journal."""
    other = tmp_path / "etc"
    other.mkdir()
    (other / "passwd").write_text("root:x:0:0\n")
    with pytest.raises(NotAJournalError, match="not a journal directory") as info:
        list(JournalReader(other))
    assert info.value.entries == ["passwd"] and str(other) in str(info.value)
    with pytest.raises(NotAJournalError):
        verify_journal(other)
    with pytest.raises(NotAJournalError):
        inspect_journal(other)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert list(JournalReader(empty)) == []
    (other / "LOCK").write_text("")
    assert verify_journal(other).clean  # a recorder's journal before its first segment
