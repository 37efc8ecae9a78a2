"""Reading journals: records with their positions, filters, damage detection and salvage.

Whole, valid frames take a fast path; from the first frame that is anything else on, the careful
walk of `recorder.journal.frames` (the reference) takes over.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, NamedTuple

import msgpack
from zlib_ng.zlib_ng import crc32

from recorder.errors import CorruptionError
from recorder.journal.frames import Damage, walk_frames
from recorder.journal.record import (
    FRAME,
    FRAME_OVERHEAD,
    HEADER_SIZE,
    KIND_CRC,
    MAX_BODY_SIZE,
    SYNC,
    Footer,
    FrameError,
    Kind,
    Message,
    Record,
    decode_body,
    message_of,
    record_seq_time,
)
from recorder.journal.segment import (
    SegmentFile,
    header_or_none,
    list_segments,
    require_dir,
    segment_bytes,
    summarize,
)
from recorder.subjects import matches_any


class Position(NamedTuple):
    segment: int
    offset: int


class Batch(NamedTuple):
    """A run of records read from one segment, and the file offset of each."""

    segment: int
    offsets: list[int]
    records: list[Record]


@dataclass(frozen=True, slots=True)
class Query:
    """Which records a command wants; bounds are inclusive, subjects use NATS wildcards."""

    since_ns: int | None = None
    until_ns: int | None = None
    from_seq: int | None = None
    to_seq: int | None = None
    subjects: tuple[str, ...] = ()

    def excludes_segment(self, footer: Footer) -> bool:
        """Whether a sealed segment's range lies wholly outside the query."""
        if footer.records == 0:
            return True
        return (
            (self.from_seq is not None and footer.last_seq < self.from_seq)
            or (self.to_seq is not None and footer.first_seq > self.to_seq)
            or (self.since_ns is not None and footer.last_time_ns < self.since_ns)
            or (self.until_ns is not None and footer.first_time_ns > self.until_ns)
        )

    def admits(self, seq: int, time_ns: int) -> bool:
        return not (
            (self.from_seq is not None and seq < self.from_seq)
            or (self.to_seq is not None and seq > self.to_seq)
            or (self.since_ns is not None and time_ns < self.since_ns)
            or (self.until_ns is not None and time_ns > self.until_ns)
        )

    @property
    def bounded(self) -> bool:
        return any(
            bound is not None
            for bound in (self.since_ns, self.until_ns, self.from_seq, self.to_seq)
        )


@dataclass(slots=True)
class ReadStats:
    segments_read: int = 0
    segments_skipped: int = 0
    records: int = 0
    damages: list[Damage] = field(default_factory=list)

    @property
    def skipped_bytes(self) -> int:
        return sum(damage.length for damage in self.damages)


class JournalReader:
    """Iterate a journal's records in write order as (Position, Record).

    Markers are skipped unless asked for. Sealed segments outside the query's seq/time range are
    skipped from their footer alone. Torn tails are recorded in `stats.damages`, never returned.
    """

    def __init__(
        self,
        directory: Path,
        *,
        query: Query | None = None,
        markers: bool = False,
        salvage: bool = False,
    ) -> None:
        self.directory = directory
        self.query = query or Query()
        self.markers = markers
        self.salvage = salvage
        self.stats = ReadStats()
        self._past_end = False

    def segments(self) -> list[SegmentFile]:
        require_dir(self.directory)
        return list_segments(self.directory)

    def __iter__(self) -> Iterator[tuple[Position, Record]]:
        for batch in self.batches():
            number = batch.segment
            for offset, record in zip(batch.offsets, batch.records, strict=True):
                yield Position(number, offset), record

    def batches(self) -> Iterator[Batch]:
        """The records iteration gives, in runs (up to a read chunk's worth) from one segment.

        For consumers that handle many records each (replay, flat out): a run costs one
        generator step, not one per record.
        """
        query = self.query
        segments = self.segments()
        for index, segment in enumerate(segments):
            if query.bounded:
                footer = summarize(segment).footer
                if footer is not None and query.excludes_segment(footer):
                    self.stats.segments_skipped += 1
                    continue
            self.stats.segments_read += 1
            known = len(self.stats.damages)
            yield from self._segment_batches(segment)
            if query.to_seq is not None and self._past_end:
                return
            newest = index == len(segments) - 1
            torn = [d for d in self.stats.damages[known:] if d.torn]
            if torn and not newest and not self.salvage:
                # Only the newest segment can be mid-write; a torn end anywhere else (a
                # truncated file, a damaged compressed segment) is corruption.
                raise CorruptionError(
                    segment.name,
                    torn[0].offset,
                    f"{torn[0].reason}, and it is not the newest segment",
                )

    def segment_records(self, segment: SegmentFile) -> Iterator[tuple[Position, Record]]:
        """The records of one segment that the query admits."""
        for batch in self._segment_batches(segment):
            for offset, record in zip(batch.offsets, batch.records, strict=True):
                yield Position(segment.number, offset), record

    def _segment_batches(self, segment: SegmentFile) -> Iterator[Batch]:
        """The records of one segment that the query admits, in runs.

        Almost every frame of a journal is a whole, checksum-valid record, and reading is most
        of what replay and compaction cost, so those are taken by a fast path (`_plain_run`)
        streaming the file through one reused buffer. At the first frame that is anything else
        (the footer, damage, an odd body) the careful path, built on `walk_frames` (the
        reference reader), goes on from that offset with every check and exact error.
        """
        if segment.compressed:
            data = segment_bytes(segment)
            resume = 0
            if header_or_none(data) is not None:
                batch = Batch(segment.number, [], [])
                resume = self._plain_run(data, HEADER_SIZE, len(data), 0, batch)
                if batch.records:
                    yield batch
            if resume > 0:
                data = data[resume:]
        else:
            resume = yield from self._streamed_batches(segment)
            if resume > 0:
                data = _read_from(segment.path, resume)
            elif resume == 0:
                data = segment_bytes(segment)
        if resume >= 0:  # -1: past the query's to_seq
            for offset, record in self._checked_records(segment, data, resume):
                yield Batch(segment.number, [offset], [record])

    def _streamed_batches(self, segment: SegmentFile) -> Generator[Batch, None, int]:
        """The fast path over an uncompressed segment read in chunks; returns where it stopped.

        Chunks, not the whole file: a fresh 64 MiB buffer per segment costs more in page faults
        than decoding the records in it (10 us a 4 KiB message), while one reused buffer stays
        mapped and warm.
        """
        buffer = bytearray(_CHUNK)
        with segment.path.open("rb", buffering=0) as handle:
            filled = handle.readinto(buffer)
            if header_or_none(bytes(buffer[:HEADER_SIZE])) is None:
                return 0
            base, offset = 0, HEADER_SIZE  # `base` is the file offset of buffer[0]
            while True:
                batch = Batch(segment.number, [], [])
                stopped = self._plain_run(buffer, offset, filled, base, batch)
                if batch.records:
                    yield batch
                offset = stopped - base
                size = None if stopped < 0 else _partial_frame_size(buffer, offset, filled)
                if size is None:
                    return stopped  # past the query's end, or a frame for the careful path
                # The chunk ends inside a frame: keep its start and read on behind it.
                rest = bytes(buffer[offset:filled])
                if size > len(buffer):
                    if stopped + size > os.fstat(handle.fileno()).st_size:
                        return stopped  # declares more than the file holds: never allocate it
                    buffer = bytearray(size + _CHUNK)
                buffer[: len(rest)] = rest
                base, offset, filled = base + offset, 0, len(rest)
                read = handle.readinto(memoryview(buffer)[filled:])
                if not read:
                    return base  # the file ends inside the frame: for the careful path
                filled += read

    def _plain_run(
        self, data: bytes | bytearray, offset: int, end: int, base: int, batch: Batch
    ) -> int:
        """Add the records of data[offset:end] (file offset `base` + index) to `batch` while
        every frame is plainly whole and valid.

        Returns the file offset of the first frame it does not take (cut short by `end`, the
        footer, damage, a body of unexpected shape), or -1 once the query's to_seq is passed.
        """
        query = self.query
        bounded = query.bounded
        subjects = query.subjects
        take_markers = self.markers
        records = batch.records
        add_offset = batch.offsets.append
        add_record = records.append
        view = memoryview(data)
        try:
            while end - offset >= FRAME_OVERHEAD:
                sync, length, crc, kind = _unpack_frame(data, offset)
                start = offset + FRAME_OVERHEAD
                following = start + length
                if sync != SYNC or kind not in _PLAIN_KINDS or following > end:
                    break  # also the footer, which the careful path checks with the segment's tail
                body = view[start:following]
                if crc32(body, _PLAIN_KINDS[kind]) != crc:
                    break
                if kind == _MARKER and not take_markers:
                    offset = following
                    continue
                try:
                    fields = _unpackb(body, use_list=False)
                    if kind == _MESSAGE and type(fields) is tuple and len(fields) == 7:
                        message = message_of(fields)
                        if message is None:
                            break
                        record: Record = message
                    else:
                        record = decode_body(Kind(kind), body, base + offset)
                except (ValueError, TypeError, msgpack.UnpackException, FrameError):
                    break
                if bounded:
                    if query.to_seq is not None and record.seq > query.to_seq:
                        self._past_end = True  # sequences only grow: nothing later can match
                        return -1
                    if not query.admits(record.seq, record.time_ns):
                        offset = following
                        continue
                if (
                    subjects
                    and type(record) is Message
                    and not matches_any(subjects, record.subject)
                ):
                    offset = following
                    continue
                add_offset(base + offset)
                add_record(record)
                offset = following
            return base + offset
        finally:
            self.stats.records += len(records)

    def _checked_records(
        self, segment: SegmentFile, data: bytes, base: int
    ) -> Iterator[tuple[int, Record]]:
        """The careful path: every check, damage recorded (salvage) or raised (strict).

        `data` holds the segment from file offset `base` on (0: the whole segment).
        """
        query = self.query
        bounded = query.bounded
        skip_markers = not self.markers
        stats = self.stats
        frames = walk_frames(
            segment.name, data, salvage=self.salvage, damages=stats.damages, base=base
        )
        for offset, kind, body in frames:
            if kind is Kind.FOOTER or (skip_markers and kind is Kind.MARKER):
                continue
            try:
                if bounded:
                    seq, time_ns = record_seq_time(kind, body)
                    if query.to_seq is not None and seq > query.to_seq:
                        self._past_end = True  # sequences only grow: nothing later can match
                        return
                    if not query.admits(seq, time_ns):
                        continue
                record = decode_body(kind, body, offset)
            except FrameError as exc:
                if not self.salvage:
                    raise CorruptionError(segment.name, offset, exc.reason) from None
                stats.damages.append(
                    Damage(segment.name, offset, len(body), exc.reason, torn=False)
                )
                continue
            if (
                query.subjects
                and isinstance(record, Message)
                and not matches_any(query.subjects, record.subject)
            ):
                continue
            stats.records += 1
            yield offset, record


def _read_from(path: Path, offset: int) -> bytes:
    with path.open("rb") as handle:
        handle.seek(offset)
        return handle.read()


def _partial_frame_size(data: bytearray, offset: int, end: int) -> int | None:
    """The whole size of the frame at `offset` when only its start is in data[:end], else None.

    None means the frame is whole (so the fast path stopped for another reason) or its header
    is not one to wait for: a bad marker, kind or length goes to the careful path, never makes
    the reader buffer up to a bogus length.
    """
    available = end - offset
    if available < FRAME_OVERHEAD:
        return FRAME_OVERHEAD
    sync, length, _crc, kind = _unpack_frame(data, offset)
    size: int = FRAME_OVERHEAD + length
    if sync != SYNC or kind not in _PLAIN_KINDS or length > MAX_BODY_SIZE or size <= available:
        return None
    return size


_CHUNK: Final = 1024 * 1024
_MESSAGE: Final = int(Kind.MESSAGE)
_MARKER: Final = int(Kind.MARKER)
# The kinds the fast path takes, with the CRC seed of each; the footer is left to walk_frames.
_PLAIN_KINDS: Final = {_MESSAGE: KIND_CRC[Kind.MESSAGE], _MARKER: KIND_CRC[Kind.MARKER]}
_unpack_frame = FRAME.unpack_from
_unpackb = msgpack.unpackb


def iter_messages(directory: Path, query: Query | None = None) -> Iterator[Message]:
    """Just the messages of a journal, in write order."""
    for _position, record in JournalReader(directory, query=query):
        if isinstance(record, Message):
            yield record
