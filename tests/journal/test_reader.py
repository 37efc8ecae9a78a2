"""Reading journals: filters, markers, torn tails, bit flips, salvage and repair."""

from __future__ import annotations

import io
import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from recorder.errors import CorruptionError, JournalError, RecorderError
from recorder.journal.frames import Damage
from recorder.journal.maintenance import inspect_journal, verify_journal
from recorder.journal.options import Compression
from recorder.journal.query import Query
from recorder.journal.reader import Batch, JournalReader, Position
from recorder.journal.record import (
    FOOTER_SIZE,
    HEADER_SIZE,
    Incoming,
    Kind,
    Marker,
    MarkerType,
    Message,
    Record,
    SegmentHeader,
    decode_body,
    encode_header,
    read_frame,
)
from recorder.journal.repair import repair_journal
from recorder.journal.segment import SegmentFile, list_segments, segment_bytes, segment_name
from recorder.journal.writer import JournalWriter
from recorder.subjects import matches_any

from ._helpers import (
    T0,
    FakeClock,
    digest,
    items,
    open_writer,
    quarantine_files,
    read_all,
    records_of,
    seqs,
)

SECOND = 10**9
SUMMARY_FRAME = 8 + HEADER_SIZE + FOOTER_SIZE  # the skippable frame leading a .seg.zst
SUBJECTS = ["meshsync.k8s.pod", "meshsync.k8s.node", "meshsync.status", "other.x.y"]


def _build_journal(directory: Path, segments: int = 3, per_segment: int = 5) -> JournalWriter:
    """A closed journal whose segments cover disjoint, increasing seq and time ranges."""
    clock = FakeClock()
    writer = open_writer(directory, clock)
    for n in range(segments):
        batch: list[Incoming] = [
            Incoming(
                clock.now + i * SECOND, SUBJECTS[(n + i) % len(SUBJECTS)], "", None, b"%d" % i, None
            )
            for i in range(per_segment)
        ]
        writer.append_messages(batch)
        clock.advance(per_segment * SECOND)
        if n < segments - 1:
            writer.rotate()
    writer.close()
    return writer


@contextmanager
def _opened_segments(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Record which segments the reader opens (reads the records of)."""
    opened: list[str] = []
    read_segment = JournalReader._segment_batches

    def spy(self: JournalReader, segment: SegmentFile, handle: io.FileIO) -> Iterator[Batch]:
        opened.append(segment.name)
        return read_segment(self, segment, handle)

    monkeypatch.setattr(JournalReader, "_segment_batches", spy)
    yield opened


def _expected(all_records: list[tuple[Position, Record]], query: Query) -> list[int]:
    return [
        record.seq
        for _, record in all_records
        if isinstance(record, Message)
        and query.admits(record.seq, record.time_ns)
        and (not query.subjects or matches_any(query.subjects, record.subject))
    ]


# -- filters ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "opened", "skipped"),
    [
        (Query(), [1, 2, 3], 0),
        (Query(from_seq=8), [2, 3], 1),
        (Query(from_seq=8, to_seq=11), [2], 2),
        (Query(to_seq=3), [1], 0),  # stops at seq 4 without looking at later segments
        (Query(since_ns=T0 + 10 * SECOND), [3], 2),
        (Query(since_ns=T0 + 4 * SECOND, until_ns=T0 + 5 * SECOND), [1, 2], 1),
        (Query(until_ns=T0 + 2 * SECOND), [1], 2),
        (Query(subjects=("meshsync.k8s.*",)), [1, 2, 3], 0),
        (Query(subjects=("meshsync.>",), from_seq=12), [3], 2),
        (Query(subjects=("other.*.y", "meshsync.status")), [1, 2, 3], 0),
        (Query(from_seq=1000), [], 3),
        (Query(since_ns=T0 + 10**6 * SECOND), [], 3),
    ],
)
def test_query_filters_return_exactly_the_admitted_messages(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    query: Query,
    opened: list[int],
    skipped: int,
) -> None:
    """since/until/from_seq/to_seq (inclusive) and NATS subject patterns select exactly the
    matching messages, and sealed segments outside the range are skipped unread."""
    directory = tmp_path / "j"
    _build_journal(directory)
    everything = read_all(directory)[0]
    with _opened_segments(monkeypatch) as names:
        reader = JournalReader(directory, query=query)
        got = [record.seq for _, record in reader]
    assert got == _expected(everything, query)
    assert names == [segment_name(n) for n in opened]
    assert reader.stats.segments_read == len(opened)
    assert reader.stats.segments_skipped == skipped
    assert reader.stats.records == len(got)


def test_random_queries_match_a_brute_force_filter(tmp_path: Path) -> None:
    """For any bounds and patterns, the reader agrees with filtering every message by hand."""
    directory = tmp_path / "j"
    _build_journal(directory, segments=4, per_segment=4)
    everything = read_all(directory)[0]
    times = st.none() | st.integers(T0 - SECOND, T0 + 20 * SECOND)
    numbers = st.none() | st.integers(0, 25)
    patterns = st.lists(
        st.sampled_from(["meshsync.>", "*.k8s.*", "other.x.y", "meshsync.*", ">", "nope"]),
        max_size=2,
    ).map(tuple)

    @settings(max_examples=80, deadline=None)
    @given(st.builds(Query, times, times, numbers, numbers, patterns))
    def check(query: Query) -> None:
        reader = JournalReader(directory, query=query)
        assert [record.seq for _, record in reader] == _expected(everything, query)

    check()


def test_to_seq_stops_reading_later_segments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once past to_seq the reader stops, even in the unsealed active segment."""
    directory = tmp_path / "j"
    writer = open_writer(directory)
    writer.append_messages(items(5))
    writer.rotate()
    writer.append_messages(items(5))
    writer.abandon()  # segment 2 stays unsealed: no footer to skip it by
    with _opened_segments(monkeypatch) as opened:
        got = [r.seq for _, r in JournalReader(directory, query=Query(to_seq=3))]
    assert got == [2, 3]
    assert opened == [segment_name(1)]


def test_positions_point_at_the_records(tmp_path: Path) -> None:
    """Each Position names the segment and byte offset where its record's frame starts."""
    directory = tmp_path / "j"
    _build_journal(directory)
    for position, record in read_all(directory)[0]:
        data = (directory / segment_name(position.segment)).read_bytes()
        kind, body, _ = read_frame(data, position.offset)
        assert decode_body(kind, body) == record


def test_missing_directory_is_a_journal_error(tmp_path: Path) -> None:
    """Reading a directory that does not exist raises JournalError, not a traceback."""
    with pytest.raises(JournalError, match="no such directory"):
        list(JournalReader(tmp_path / "nope"))


# -- markers ----------------------------------------------------------------------------------


def test_markers_are_returned_only_when_asked(tmp_path: Path) -> None:
    """Markers are skipped by default and returned in sequence order with markers=True."""
    directory = tmp_path / "j"
    writer = open_writer(directory)
    writer.append_messages(items(2))
    writer.append_marker(MarkerType.DISCONNECTED, {"error": "eof"})
    writer.append_marker(MarkerType.DROPPED, {"count": 17})
    writer.append_marker(MarkerType.RECONNECTED)
    writer.append_messages(items(1))
    writer.append_marker(MarkerType.NOTE, {"text": "hello"})
    writer.close()

    plain = records_of(directory, markers=False)
    assert all(isinstance(r, Message) for r in plain)
    assert seqs(plain) == [2, 3, 7]
    everything = records_of(directory)
    assert seqs(everything) == list(range(1, 10))
    types = [r.type for r in everything if isinstance(r, Marker)]
    assert types == [
        MarkerType.STARTED,
        MarkerType.DISCONNECTED,
        MarkerType.DROPPED,
        MarkerType.RECONNECTED,
        MarkerType.NOTE,
        MarkerType.STOPPED,
    ]
    dropped = next(r for r in everything if isinstance(r, Marker) and r.type is MarkerType.DROPPED)
    assert dropped.fields == {"count": 17}
    # A subject filter applies to messages; markers asked for still show the capture's gaps.
    filtered = records_of(directory, query=Query(subjects=("nothing.matches",)))
    assert all(isinstance(r, Marker) for r in filtered) and len(filtered) == 6


# -- the crash test ---------------------------------------------------------------------------


def _crashed_journal(directory: Path) -> tuple[Path, int, int]:
    """A journal whose writer died: a sealed segment 1 and an unsealed segment 2 ending in a
    small record. Returns segment 2's path and the start and end of its last record."""
    writer = open_writer(directory)
    writer.append_messages(items(3))
    writer.rotate()
    writer.append_messages(items(2, payload=b'{"a":1}'))
    writer.append_messages([Incoming(T0, "a", "", None, b"!", None)])
    active = writer.active_segment
    assert active is not None
    writer.abandon()
    records = read_all(directory)[0]
    last = records[-1][0]
    return active.path, last.offset, active.path.stat().st_size


def test_cut_at_every_byte_of_the_last_record_is_a_torn_tail_and_repair_keeps_the_rest(
    tmp_path: Path,
) -> None:
    """Cutting the last record anywhere (frame header included) gives a torn tail, every earlier
    record intact, and a repair that keeps them all and quarantines exactly the cut bytes."""
    source = tmp_path / "source"
    segment, start, end = _crashed_journal(source)
    assert end - start < 60  # a small record, so this stays fast
    full = segment.read_bytes()
    earlier = [r for p, r in read_all(source)[0] if not (p.segment == 2 and p.offset == start)]
    sealed_digest = digest(source / segment_name(1))

    for cut in range(start + 1, end):
        directory = tmp_path / f"cut{cut}"
        shutil.copytree(source, directory)
        target = directory / segment.name
        target.write_bytes(full[:cut])

        for salvage in (False, True):
            records, stats = read_all(directory, salvage=salvage)
            assert [r for _, r in records] == earlier, cut
            assert [(d.segment, d.offset, d.length, d.torn) for d in stats.damages] == [
                (segment.name, start, cut - start, True)
            ], cut
        problems = verify_journal(directory).problems
        assert [(p.segment, p.offset) for p in problems] == [(segment.name, start)], cut
        assert problems[0].reason.startswith("torn tail")
        assert [info.state for info in inspect_journal(directory)] == ["sealed", "torn"]

        report = repair_journal(directory)
        assert report.segments_repaired == [segment.name]
        assert report.records_kept == sum(1 for p, _ in read_all(source)[0] if p.segment == 2) - 1
        assert [(q.offset, q.length) for q in report.quarantined] == [(start, cut - start)]
        assert report.quarantined[0].path.read_bytes() == full[start:cut]
        assert verify_journal(directory).clean, cut
        assert records_of(directory) == earlier
        assert target.read_bytes().startswith(full[:start])
        assert digest(directory / segment_name(1)) == sealed_digest
        shutil.rmtree(directory)


def test_cut_at_a_record_boundary_is_not_damage(tmp_path: Path) -> None:
    """An unsealed segment that ends exactly between records reads back with no damage."""
    segment, start, _ = _crashed_journal(tmp_path / "j")
    segment.write_bytes(segment.read_bytes()[:start])
    records, stats = read_all(tmp_path / "j")
    assert stats.damages == []
    assert records[-1][1].seq == 6


def test_cut_inside_the_footer_is_a_torn_tail_and_repair_reseals(tmp_path: Path) -> None:
    """A sealed segment cut anywhere inside its footer or tail loses no record and is resealed."""
    source = tmp_path / "source"
    _build_journal(source, segments=1)
    segment = list_segments(source)[0].path
    full = segment.read_bytes()
    expected = records_of(source)
    footer_at = len(full) - FOOTER_SIZE
    for cut in range(footer_at + 1, len(full)):
        directory = tmp_path / f"cut{cut}"
        shutil.copytree(source, directory)
        (directory / segment.name).write_bytes(full[:cut])
        records, stats = read_all(directory)
        assert [r for _, r in records] == expected
        assert [(d.offset, d.torn) for d in stats.damages] == [(footer_at, True)]
        repair_journal(directory)
        assert verify_journal(directory).clean
        assert (directory / segment.name).read_bytes() == full
        shutil.rmtree(directory)


# -- bit flips --------------------------------------------------------------------------------


def test_every_bit_flip_in_a_sealed_segment_is_detected_located_salvaged_and_repaired(
    tmp_path: Path,
) -> None:
    """A flipped bit anywhere in a sealed segment (header, records, footer, tail) is reported by
    verify with segment and offset; a strict read raises CorruptionError at the damaged frame
    (or reports a torn footer); salvage recovers every other record and counts the skipped
    bytes; repair keeps every undamaged record, quarantines the damage and verifies clean."""
    directory = tmp_path / "j"
    _build_journal(directory, segments=3, per_segment=3)
    name = segment_name(2)
    path = directory / name
    original = path.read_bytes()
    everything = read_all(directory)[0]
    all_records = [r for _, r in everything]
    starts = [p.offset for p, _ in everything if p.segment == 2]
    footer_at = len(original) - FOOTER_SIZE
    spans = list(zip(starts, [*starts[1:], footer_at], strict=True))
    others = {n: digest(directory / segment_name(n)) for n in (1, 3)}

    for position in range(len(original)):
        damaged = bytearray(original)
        damaged[position] ^= 1 << (position % 8)
        path.write_bytes(bytes(damaged))

        hit = next(((s, e) for s, e in spans if s <= position < e), None)
        if position < HEADER_SIZE:
            damage = (0, HEADER_SIZE)
        elif hit is not None:
            damage = (hit[0], hit[1] - hit[0])
        else:
            damage = (footer_at, FOOTER_SIZE)
        torn = position >= footer_at
        lost = (
            []
            if hit is None
            else [r for p, r in everything if (p.segment, p.offset) == (2, hit[0])]
        )
        survivors = [r for r in all_records if r not in lost]

        problems = [p for p in verify_journal(directory).problems if p.segment == name]
        assert problems, position
        assert problems[0].offset == damage[0], (position, problems)

        # A damaged footer leaves the segment looking torn; since it is not the newest segment,
        # a strict read still stops there with an error, after the records before the damage.
        strict = JournalReader(directory, markers=True)
        got: list[Record] = []
        with pytest.raises(CorruptionError) as caught:
            got.extend(r for _, r in strict)
        assert (caught.value.segment, caught.value.offset) == (name, damage[0]), position
        assert name in str(caught.value) and f"offset {damage[0]}" in str(caught.value)
        assert got == [
            r for p, r in everything if p.segment == 1 or (p.segment == 2 and p.offset < damage[0])
        ]
        if torn:
            assert [(d.offset, d.length, d.torn) for d in strict.stats.damages] == [(*damage, True)]

        records, stats = read_all(directory, salvage=True)
        assert [r for _, r in records] == survivors, position
        assert [(d.segment, d.offset, d.length, d.torn) for d in stats.damages] == [
            (name, *damage, torn)
        ], position
        assert stats.skipped_bytes == damage[1]

        report = repair_journal(directory)
        assert report.segments_repaired == [name]
        assert [(q.offset, q.length) for q in report.quarantined] == [damage]
        assert report.quarantined[0].path.read_bytes() == bytes(damaged[damage[0] : sum(damage)])
        assert verify_journal(directory).clean, position
        assert records_of(directory) == survivors
        assert {n: digest(directory / segment_name(n)) for n in (1, 3)} == others

        path.write_bytes(original)
        for leftover in quarantine_files(directory):
            leftover.unlink()


def test_bit_flips_in_a_compressed_segment_are_detected_and_no_command_crashes(
    tmp_path: Path,
) -> None:
    """A flipped bit anywhere in a .seg.zst is reported by verify (in the zstd frame, unless it
    changed nothing the segment holds), no command crashes, and repair leaves a clean journal that lost no
    record it could still read and keeps the compressed original when content was lost."""
    source = tmp_path / "source"
    writer = open_writer(source, compression=Compression.ZSTD)
    writer.append_messages(items(4, payload=b'{"kind":"Pod","spec":{}}' * 4))
    writer.close()
    segment = list_segments(source)[0]
    assert segment.compressed
    original = segment.path.read_bytes()
    content = zstandard.ZstdDecompressor().stream_reader(original, read_across_frames=True).read()
    expected = records_of(source)
    directory = source
    outcomes = {"unchanged": 0, "lost": 0}

    for position in range(len(original)):
        damaged = bytearray(original)
        damaged[position] ^= 1 << (position % 8)
        segment.path.write_bytes(bytes(damaged))

        unchanged = segment_bytes(segment) == content
        report = verify_journal(directory)
        if not unchanged or position < SUMMARY_FRAME:
            assert not report.clean, position
            assert all(p.segment == segment.name for p in report.problems)
        inspect_journal(directory)
        for salvage in (False, True):
            with suppress(RecorderError):
                records_of(directory, salvage=salvage)
        repaired = repair_journal(directory)
        assert verify_journal(directory).clean, position
        kept = records_of(directory)
        assert kept == [r for r in expected if r in kept]
        if unchanged:
            assert kept == expected
        if len(kept) < len(expected):
            saved = [q.path.read_bytes() for q in repaired.quarantined]
            assert bytes(damaged) in saved, position
        outcomes["unchanged"] += unchanged and position >= SUMMARY_FRAME
        outcomes["lost"] += len(kept) < len(expected)

        for leftover in [*quarantine_files(directory), *directory.glob("*.seg")]:
            leftover.unlink()
        segment.path.write_bytes(original)
    # Most flips in the zstd frame change content; only a few land on bits it does not use.
    assert outcomes["unchanged"] < len(original) // 10
    assert outcomes["lost"] > len(original) // 2


# -- garbage, empty and truncated files ---------------------------------------------------------


def _two_segments(directory: Path) -> None:
    """Segment 1 (to be damaged by the test) and a sealed segment 2 with three records."""
    writer = open_writer(directory)
    writer.append_messages(items(1))
    writer.rotate()
    writer.append_messages(items(2))
    writer.close()


@pytest.mark.parametrize(
    ("content", "reason", "state"),
    [
        (b"", "segment header is 0 of 48 bytes", "torn"),
        (encode_header(SegmentHeader(1, T0, bytes(16)))[:20], "segment header is 20 of", "torn"),
        (os.urandom(500).replace(b"\xff\xfeMR", b"xxxx"), "bad magic", "corrupt"),
        (b"\x89MSJ\r\n\x1a\n" + b"\x00" * 100, "segment header checksum mismatch", "corrupt"),
    ],
    ids=["empty", "truncated-header", "garbage", "bad-header-crc"],
)
def test_damaged_first_segment_is_reported_and_later_segments_still_read(
    tmp_path: Path, content: bytes, reason: str, state: str
) -> None:
    """An empty, truncated or garbage segment is reported as damage at offset 0 without a crash,
    the segments after it still read, and repair quarantines it and verifies clean."""
    directory = tmp_path / "j"
    _two_segments(directory)
    (directory / segment_name(1)).write_bytes(content)
    (directory / "notes.txt").write_text("not a segment")

    with pytest.raises(CorruptionError):  # strict: a broken segment that is not the newest
        read_all(directory)
    records, stats = read_all(directory, salvage=True)
    assert [p.segment for p, _ in records] == [2, 2, 2]
    assert [(d.segment, d.offset, d.length) for d in stats.damages] == [
        (segment_name(1), 0, len(content))
    ]
    assert reason in stats.damages[0].reason
    problems = verify_journal(directory).problems
    assert [(p.segment, p.offset) for p in problems] == [(segment_name(1), 0)]
    assert stats.damages[0].torn is (state == "torn")
    assert [info.state for info in inspect_journal(directory)] == [state, "sealed"]

    report = repair_journal(directory)
    assert report.quarantined[0].path.read_bytes() == content
    assert stat.S_IMODE(report.quarantined[0].path.stat().st_mode) == 0o600
    assert verify_journal(directory).clean
    assert records_of(directory) == [r for _, r in records]
    assert (directory / "notes.txt").read_text() == "not a segment"


def test_garbage_compressed_segment_is_damage_not_a_crash(tmp_path: Path) -> None:
    """A .seg.zst that is not zstd at all is reported as damage, and repair keeps its bytes."""
    directory = tmp_path / "j"
    _two_segments(directory)
    (directory / segment_name(1)).unlink()
    garbage = b"definitely not zstd" * 10
    (directory / f"{segment_name(1)}.zst").write_bytes(garbage)
    with pytest.raises(CorruptionError):
        read_all(directory)
    records, stats = read_all(directory, salvage=True)
    assert len(records) == 3 and len(stats.damages) == 1
    assert not verify_journal(directory).clean
    report = repair_journal(directory)
    assert garbage in [q.path.read_bytes() for q in report.quarantined]
    assert verify_journal(directory).clean


def test_damage_in_the_middle_of_an_unsealed_segment_is_corruption(tmp_path: Path) -> None:
    """Damage followed by valid records is corruption even without a footer: strict raises,
    salvage skips just the damaged record."""
    directory = tmp_path / "j"
    writer = open_writer(directory)
    writer.append_messages(items(4))
    writer.abandon()
    everything = read_all(directory)[0]
    victim = everything[2][0]
    path = directory / segment_name(1)
    data = bytearray(path.read_bytes())
    data[victim.offset + 20] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptionError) as caught:
        list(JournalReader(directory))
    assert (caught.value.segment, caught.value.offset) == (segment_name(1), victim.offset)
    records, stats = read_all(directory, salvage=True)
    assert [r for _, r in records] == [r for p, r in everything if p != victim]
    assert [(d.offset, d.torn) for d in stats.damages] == [(victim.offset, False)]
    assert stats.skipped_bytes == everything[3][0].offset - victim.offset


def test_damage_entries_carry_segment_offset_and_length() -> None:
    """Damage is a plain value naming where it is, how long, why, and whether it is torn."""
    damage = Damage("00000001.seg", 48, 10, "checksum mismatch", torn=False)
    assert (damage.segment, damage.offset, damage.length, damage.torn) == (
        "00000001.seg",
        48,
        10,
        False,
    )


def test_frames_of_every_kind_are_walked(tmp_path: Path) -> None:
    """A sealed segment walks as header, records, then exactly one footer at its end."""
    directory = tmp_path / "j"
    _build_journal(directory, segments=1)
    data = (directory / segment_name(1)).read_bytes()
    offset, kinds = HEADER_SIZE, []
    while offset < len(data) - 8:
        kind, _, offset = read_frame(data, offset)
        kinds.append(kind)
    assert kinds[-1] is Kind.FOOTER and Kind.FOOTER not in kinds[:-1]
    assert offset == len(data) - 8
