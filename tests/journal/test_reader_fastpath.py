"""The reader's fast path against its careful path: the same records, positions, damage and errors.

The fast path streams a segment through a reused buffer of `_CHUNK` bytes; these tests make the
chunk tiny, so its boundaries fall inside frame headers, inside bodies and between frames. The
reference is the careful path alone (`_checked_records`, on frames.walk_frames) from byte 0.
"""

from __future__ import annotations

import tempfile
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple
from unittest.mock import patch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recorder.errors import CorruptionError, JournalError
from recorder.journal import reader as reader_module
from recorder.journal.frames import Damage
from recorder.journal.options import FsyncPolicy
from recorder.journal.query import Query
from recorder.journal.reader import JournalReader, Position
from recorder.journal.record import (
    FRAME_OVERHEAD,
    HEADER_SIZE,
    MAX_BODY_SIZE,
    SYNC,
    Headers,
    Incoming,
    MarkerType,
    Message,
    Record,
    decode_body,
    read_frame,
)
from recorder.journal.segment import SegmentFile, compress_segment, list_segments, segment_bytes
from recorder.subjects import matches_any

from ._helpers import T0, FakeClock, copy_journal, open_writer

SECOND = 10**9
SUBJECTS = ["meshsync.k8s.pod", "meshsync.k8s.node", "meshsync.status", "other.x.y"]
# Chunks from one frame header up: below HEADER_SIZE the fast path cannot even start.
CHUNKS = st.integers(HEADER_SIZE, 320) | st.integers(FRAME_OVERHEAD, 4096)
Fields = tuple[str, str, Headers | None, bytes, int | None]  # an Incoming without its time
Op = list[Fields] | MarkerType


class Outcome(NamedTuple):
    records: list[tuple[Position, Record]]
    error: str | None
    damages: list[Damage]
    counted: int


def _payload(size: int, seed: int) -> bytes:
    """`size` bytes with sync markers inside: a payload may hold anything."""
    unit = bytes([seed]) * 7 + SYNC + bytes(range(seed, 256))
    return (unit * (size // len(unit) + 1))[:size]


def _write(directory: Path, segments: list[list[Op]], *, close: bool) -> None:
    """A journal of one segment per entry of `segments`; the last is left unsealed unless `close`."""
    clock = FakeClock()
    writer = open_writer(directory, clock, fsync=FsyncPolicy.NEVER)
    for index, ops in enumerate(segments):
        if index:
            writer.rotate()
        for op in ops:
            clock.advance(SECOND)
            if isinstance(op, MarkerType):
                writer.append_marker(op, {"at": clock.now, "note": "n" * index})
            else:
                writer.append_messages(
                    [Incoming(clock.now + i, *fields) for i, fields in enumerate(op)]
                )
    if close:
        writer.close()
    else:
        writer.abandon()


def _outcome(reader: JournalReader, records: Iterator[tuple[Position, Record]]) -> Outcome:
    got: list[tuple[Position, Record]] = []
    error = None
    try:
        got.extend(records)
    except JournalError as exc:
        error = f"{type(exc).__name__}: {exc}"
    return Outcome(got, error, reader.stats.damages, reader.stats.records)


def _careful(directory: Path, segment: SegmentFile, **options: Any) -> Outcome:
    """The reference for one segment: the careful path alone over all of it, from byte 0."""
    reader = JournalReader(directory, **options)
    records = reader._checked_records(segment, segment_bytes(segment), 0)
    return _outcome(reader, ((Position(segment.number, o), r) for o, r in records))


def _fast(directory: Path, segment: SegmentFile, **options: Any) -> Outcome:
    reader = JournalReader(directory, **options)
    return _outcome(reader, reader.segment_records(segment))


def _careful_journal(directory: Path, **options: Any) -> Outcome:
    """The reference for an unbounded read: each segment's careful read in turn; a torn end of
    any segment but the newest is corruption unless salvaging."""
    records: list[tuple[Position, Record]] = []
    damages: list[Damage] = []
    counted = 0
    segments = list_segments(directory)
    for segment in segments:
        part = _careful(directory, segment, **options)
        records += part.records
        damages += part.damages
        counted += part.counted
        torn = [d for d in part.damages if d.torn]
        error = part.error
        if error is None and torn and segment != segments[-1] and not options.get("salvage"):
            reason = f"{torn[0].reason}, and it is not the newest segment"
            error = f"CorruptionError: {CorruptionError(segment.name, torn[0].offset, reason)}"
        if error is not None:
            return Outcome(records, error, damages, counted)
    return Outcome(records, None, damages, counted)


def _whole(directory: Path, **options: Any) -> Outcome:
    reader = JournalReader(directory, **options)
    return _outcome(reader, iter(reader))


def _same_as_careful(directory: Path, chunk: int, **options: Any) -> tuple[Outcome, list[int]]:
    """Assert that reads through `chunk` equal the reference, per segment and whole (like for
    like when unbounded, or when undamaged: a segment skipped by its footer holds no match).

    Returns the reference and the offsets of the records the careful path gave those reads.
    """
    segments = list_segments(directory)
    per_segment = [_careful(directory, segment, **options) for segment in segments]
    expected = _careful_journal(directory, **options)
    taken: list[int] = []
    careful = JournalReader._checked_records

    def spy(self: JournalReader, *args: Any) -> Iterator[tuple[int, Record]]:
        for offset, record in careful(self, *args):
            taken.append(offset)
            yield offset, record

    with (
        patch.object(reader_module, "_CHUNK", chunk),
        patch.object(JournalReader, "_checked_records", spy),
    ):
        assert [_fast(directory, segment, **options) for segment in segments] == per_segment
        assert _whole(directory, **options) == expected
    return expected, taken


@contextmanager
def _scratch() -> Iterator[Path]:
    """A fresh directory per example (in memory when /dev/shm is there)."""
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as name:
        yield Path(name)


def _damage(path: Path, at: int, mask: int) -> None:
    """XOR the byte at `at` with `mask`; a zero mask cuts the file there instead."""
    data = path.read_bytes()
    path.write_bytes(data[:at] + (bytes([data[at] ^ mask]) + data[at + 1 :] if mask else b""))


HEADERS = st.none() | st.lists(
    st.tuples(st.sampled_from(["Nats-Msg-Id", "X-Kind"]), st.text(max_size=6)), max_size=3
).map(tuple)
MESSAGES = st.tuples(
    st.sampled_from(SUBJECTS),
    st.sampled_from(["", "_INBOX.reply.1"]),
    HEADERS,
    st.builds(_payload, st.integers(0, 3000), st.integers(0, 255)),
    st.none() | st.integers(0, 2**40),
)
BATCHES = st.lists(MESSAGES, min_size=1, max_size=4)
OPS = st.lists(BATCHES | st.sampled_from(list(MarkerType)), min_size=1, max_size=6)
ANYWHERE = st.integers(0, 2**32)


def _mixed_segment(first: int) -> list[Op]:
    """Twelve records from 0 bytes to 5 KiB, with headers, replies and a marker every fourth."""
    ops: list[Op] = []
    for i in range(first, first + 12):
        headers = (("X", "a"), ("X", "b"))[: i % 3] or None
        message = (SUBJECTS[i % 4], "_INBOX.r" * (i % 2), headers, _payload(i * 397 % 5000, i), i)
        ops.append(MarkerType.NOTE if i % 4 == 0 else [message])
    return ops


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three sealed segments of mixed records and an active, unsealed fourth."""
    directory = tmp_path_factory.mktemp("fastpath") / "j"
    _write(directory, [_mixed_segment(12 * n) for n in range(4)], close=False)
    return directory


@settings(max_examples=100, deadline=None)
@given(spec=st.tuples(st.lists(OPS, min_size=1, max_size=4), st.booleans()), chunk=CHUNKS)
def test_random_journals_read_as_the_careful_path_through_any_chunk(
    spec: tuple[list[list[Op]], bool], chunk: int
) -> None:
    """Any journal reads through any chunk size with the careful path's records, positions, counts and no damage, and every record comes by the fast path once the chunk holds a segment header."""
    with _scratch() as root:
        _write(root / "j", spec[0], close=spec[1])
        for markers in (False, True):
            expected, careful = _same_as_careful(root / "j", chunk, markers=markers)
            assert expected.error is None and expected.damages == []
            assert careful == [] or chunk < HEADER_SIZE
    written = sum(1 if isinstance(op, MarkerType) else len(op) for ops in spec[0] for op in ops)
    assert len(expected.records) == 1 + written + spec[1]  # with the started and stop markers


@pytest.mark.parametrize(
    ("size", "chunk"),
    [(64 * 1024, 256), (64 * 1024, 61), ((1 << 20) + 4099, reader_module._CHUNK)],
    ids=["64KiB-in-256B", "64KiB-in-61B", "over-1MiB-in-default"],
)
@pytest.mark.parametrize("close", [True, False], ids=["sealed", "active"])
def test_records_larger_than_the_chunk_come_back_whole(
    tmp_path: Path, size: int, chunk: int, close: bool
) -> None:
    """A record many chunks long (or over the default 1 MiB chunk) reads back byte-exact between small ones, last in an active segment too, by the fast path alone."""
    big = _payload(size, 7)
    small: Fields = ("s.small", "", None, b"s", None)
    large: Fields = ("s.big", "_INBOX.x", (("X-Kind", "big"),), big, 1)
    directory = tmp_path / "j"
    _write(directory, [[[small], [large], MarkerType.NOTE, [small, large]]], close=close)
    got, careful = _same_as_careful(directory, chunk, markers=True)
    assert got.error is None and got.damages == [] and careful == []
    assert [r.payload for _, r in got.records if isinstance(r, Message)] == [b"s", big, b"s", big]


@settings(max_examples=300, deadline=None)
@given(chunk=CHUNKS, which=st.integers(0, 3), where=ANYWHERE, mask=st.just(0) | st.integers(1, 255))
def test_damage_reads_as_the_careful_path_reads_it(
    journal: Path, chunk: int, which: int, where: int, mask: int
) -> None:
    """A byte changed or the file cut anywhere past the first chunk (header, body, footer) gives the careful path's records and damage (offset, length, reason, torn) in salvage mode, and its records then the same error, or none, in strict mode."""
    with _scratch() as root:
        directory = copy_journal(journal, root / "j")
        segment = list_segments(directory)[which]
        size = segment.path.stat().st_size
        start = min(chunk, size - 1)
        _damage(segment.path, start + where % (size - start), mask)
        for salvage in (True, False):
            expected, _ = _same_as_careful(directory, chunk, markers=True, salvage=salvage)
            if mask:  # a CRC catches any changed byte: the damage is always seen
                assert expected.damages or expected.error


TIMES = st.none() | st.integers(T0 - SECOND, T0 + 60 * SECOND)
SEQS = st.none() | st.integers(0, 60)
PATTERNS = st.lists(
    st.sampled_from(["meshsync.>", "*.k8s.*", "other.x.y", "meshsync.status", "nope"]), max_size=2
).map(tuple)


@settings(max_examples=150, deadline=None)
@given(
    query=st.builds(Query, TIMES, TIMES, SEQS, SEQS, PATTERNS), chunk=CHUNKS, markers=st.booleans()
)
def test_queries_through_tiny_chunks_match_a_hand_filter(
    journal: Path, query: Query, chunk: int, markers: bool
) -> None:
    """from_seq/to_seq/since/until/subjects through any chunk give exactly the unfiltered reference's records that the query admits, per segment as the careful path gives them."""
    everything = _careful_journal(journal, markers=markers).records
    expected = [
        (position, record)
        for position, record in everything
        if query.admits(record.seq, record.time_ns)
        and not (
            query.subjects
            and isinstance(record, Message)
            and not matches_any(query.subjects, record.subject)
        )
    ]
    got, _ = _same_as_careful(journal, chunk, query=query, markers=markers)
    assert got == Outcome(expected, None, [], len(expected))


@settings(max_examples=80, deadline=None)
@given(chunk=CHUNKS, where=ANYWHERE, markers=st.booleans())
def test_batches_flatten_to_iteration_and_each_is_from_one_segment(
    journal: Path, chunk: int, where: int, markers: bool
) -> None:
    """batches() flattened is iteration exactly, damage or not; each batch is non-empty, its offsets and records pair up, and each offset holds that record in that batch's segment."""
    with _scratch() as root:
        directory = copy_journal(journal, root / "j")
        damaged = list_segments(directory)[1]
        _damage(damaged.path, where % damaged.path.stat().st_size, 0x40)
        with patch.object(reader_module, "_CHUNK", chunk):
            batches = list(JournalReader(directory, markers=markers, salvage=True).batches())
            flat = list(JournalReader(directory, markers=markers, salvage=True))
        assert [
            (Position(batch.segment, offset), record)
            for batch in batches
            for offset, record in zip(batch.offsets, batch.records, strict=True)
        ] == flat
        files = {s.number: segment_bytes(s) for s in list_segments(directory)}
        for batch in batches:
            assert batch.records and len(batch.offsets) == len(batch.records)
            assert batch.offsets == sorted(set(batch.offsets))
            for offset, record in zip(batch.offsets, batch.records, strict=True):
                kind, body, _ = read_frame(files[batch.segment], offset)
                assert decode_body(kind, body) == record


@settings(max_examples=60, deadline=None)
@given(chunk=CHUNKS, where=st.none() | ANYWHERE)
def test_compressed_segments_read_as_their_uncompressed_originals(
    journal: Path, chunk: int, where: int | None
) -> None:
    """Sealed segments compressed to .seg.zst, intact or with a changed byte, read through any chunk as the careful path reads them, with the records and damage of the uncompressed originals."""
    with _scratch() as root:
        plain = copy_journal(journal, root / "plain")
        if where is not None:
            target = list_segments(plain)[1].path
            _damage(target, HEADER_SIZE + where % (target.stat().st_size - HEADER_SIZE), 1)
        packed = copy_journal(plain, root / "packed")
        for segment in list_segments(packed)[:-1]:
            compress_segment(segment)
        assert [s.compressed for s in list_segments(packed)] == [True, True, True, False]
        for salvage in (True, False):
            original = _careful_journal(plain, markers=True, salvage=salvage)
            got, _ = _same_as_careful(packed, chunk, markers=True, salvage=salvage)
            assert got.records == original.records and got.counted == original.counted
            assert [(d.offset, d.length, d.reason, d.torn) for d in got.damages] == [
                (d.offset, d.length, d.reason, d.torn) for d in original.damages
            ]
            assert (got.error is None) == (original.error is None)


@pytest.mark.parametrize("length", [4 << 20, MAX_BODY_SIZE, MAX_BODY_SIZE + 1, 2**32 - 1])
def test_a_huge_declared_length_past_a_tiny_chunk_allocates_nothing(
    tmp_path: Path, length: int
) -> None:
    """A frame header declaring more than a 64-byte chunk and the file hold, at the end of a small segment, is the careful path's torn tail and never grows the buffer to its length."""
    directory = tmp_path / "j"
    _write(directory, [[[("a.b", "", None, b"x" * 100, None)] * 3]], close=False)
    path = list_segments(directory)[0].path
    end = path.stat().st_size
    with path.open("ab") as handle:
        handle.write(SYNC + length.to_bytes(4, "little") + b"\0\0\0\0\x01" + b"tiny")
    tracemalloc.start()
    try:
        got = [_same_as_careful(directory, 64, markers=True, salvage=s)[0] for s in (True, False)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024, f"{peak} bytes allocated for a {length}-byte declared length"
    for outcome in got:
        assert [(d.offset, d.torn) for d in outcome.damages] == [(end, True)]
        assert len(outcome.records) == 4 and outcome.error is None  # started marker, 3 messages


def test_a_torn_tail_after_the_hand_off_names_the_file_end(tmp_path: Path) -> None:
    """A segment cut inside its last record reads, with the default chunk, to the careful path's torn-tail damage, reason ("cut short at" the file's end) included."""
    _write(
        tmp_path / "j",
        [[[("a", "", None, b"x", None)], [("a", "", None, b"y", None)]]],
        close=False,
    )
    segment = list_segments(tmp_path / "j")[0]
    _damage(segment.path, segment.path.stat().st_size - 5, 0)
    expected = _careful(tmp_path / "j", segment)
    assert expected.damages[0].reason.endswith(f"cut short at {segment.path.stat().st_size}")
    assert _fast(tmp_path / "j", segment) == expected
