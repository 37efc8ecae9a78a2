"""Reading journals: records with their positions, filters, damage detection and salvage.

Whole, valid frames take a fast path; from the first frame that is anything else on, the careful
walk of `recorder.journal.frames` (the reference) takes over.
"""

from __future__ import annotations

import io
import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Final, NamedTuple

import msgpack
from zlib_ng.zlib_ng import crc32

from recorder.errors import CorruptionError, SegmentGoneError
from recorder.journal.directory import journal_segments
from recorder.journal.frames import Damage, walk_frames
from recorder.journal.gaps import GapTracker
from recorder.journal.lock import is_locked
from recorder.journal.query import Query, ReadStats
from recorder.journal.record import (
    FRAME,
    FRAME_OVERHEAD,
    HEADER_SIZE,
    KIND_CRC,
    MAX_BODY_SIZE,
    SYNC,
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
    handle_bytes,
    header_or_none,
    open_segment,
    summarize_open,
)
from recorder.journal.source import present
from recorder.subjects import matches_any


class Position(NamedTuple):
    segment: int
    offset: int


class Batch(NamedTuple):
    """A run of records read from one segment, and the file offset of each."""

    segment: int
    offsets: list[int]
    records: list[Record]


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
        return journal_segments(self.directory)

    def __iter__(self) -> Iterator[tuple[Position, Record]]:
        for batch in self.batches():
            number = batch.segment
            for offset, record in zip(batch.offsets, batch.records, strict=True):
                yield Position(number, offset), record

    def batches(self) -> Iterator[Batch]:
        """The records iteration gives, in runs (up to a read chunk's worth) from one segment.

        For consumers that handle many records each (replay, flat out): a run costs one
        generator step, not one per record. A journal being written is read as it was listed:
        each segment from the file opened (compression or retention cannot take it away once
        open), its compressed twin if compression came first, a gap if retention did.
        """
        query = self.query
        segments = self.segments()
        tracker = GapTracker(query.bounds, self.stats.gaps)
        for index, listed in enumerate(segments):
            with present(self.directory, listed):
                try:
                    segment, handle = open_segment(listed)
                except SegmentGoneError:
                    tracker.removed(listed)
                    continue
                with handle:
                    if query.bounded:
                        footer = summarize_open(segment, handle).footer
                        if footer is not None and query.excludes_segment(footer):
                            before = query.before_segment(footer)
                            tracker.reached(listed, read=False, before_range=before)
                            self.stats.segments_skipped += 1
                            continue
                    tracker.reached(listed, read=True)
                    self.stats.segments_read += 1
                    known = len(self.stats.damages)
                    for batch in self._segment_batches(segment, handle):
                        if self.stats.first_seq is None:
                            self.stats.first_seq = batch.records[0].seq
                        yield batch
            if query.to_seq is not None and self._past_end:
                return
            self._check_torn(segment, known, newest=index == len(segments) - 1)
        tracker.finish()

    def _check_torn(self, segment: SegmentFile, known: int, *, newest: bool) -> None:
        """A torn end: the live writer's mid-write in the newest segment, corruption elsewhere."""
        torn = [d for d in self.stats.damages[known:] if d.torn]
        if not torn:
            return
        if newest:
            if is_locked(self.directory):
                # A write in progress: read up to the last whole record, which is no damage.
                self.stats.damages.remove(torn[0])
                self.stats.in_progress = segment.name
            return
        if not self.salvage:
            # Only the newest segment can be mid-write; a torn end anywhere else (a
            # truncated file, a damaged compressed segment) is corruption.
            raise CorruptionError(
                segment.name,
                torn[0].offset,
                f"{torn[0].reason}, and it is not the newest segment",
            )

    def segment_records(self, segment: SegmentFile) -> Iterator[tuple[Position, Record]]:
        """The records of one segment that the query admits."""
        opened, handle = open_segment(segment)
        with handle:
            for batch in self._segment_batches(opened, handle):
                for offset, record in zip(batch.offsets, batch.records, strict=True):
                    yield Position(segment.number, offset), record

    def _segment_batches(self, segment: SegmentFile, handle: io.FileIO) -> Iterator[Batch]:
        """The records of one open segment that the query admits, in runs.

        Almost every frame of a journal is a whole, checksum-valid record, and reading is most
        of what replay and compaction cost, so those are taken by a fast path (`_plain_run`)
        streaming the file through one reused buffer. At the first frame that is anything else
        (the footer, damage, an odd body) the careful path, built on `walk_frames` (the
        reference reader), goes on from that offset with every check and exact error. Both read
        the one open file: its name may be gone by then (compressed, or removed by retention).
        """
        if segment.compressed:
            data = handle_bytes(segment, handle)
            resume = 0
            if header_or_none(data) is not None:
                batch = Batch(segment.number, [], [])
                resume = self._plain_run(data, HEADER_SIZE, len(data), 0, batch)
                if batch.records:
                    yield batch
            if resume > 0:
                data = data[resume:]
        else:
            resume = yield from self._streamed_batches(segment, handle)
            if resume >= 0:
                handle.seek(resume)
                data = handle.readall()
        if resume >= 0:  # -1: past the query's to_seq
            for offset, record in self._checked_records(segment, data, resume):
                yield Batch(segment.number, [offset], [record])

    def _streamed_batches(
        self, segment: SegmentFile, handle: io.FileIO
    ) -> Generator[Batch, None, int]:
        """The fast path over an uncompressed segment read in chunks; returns where it stopped.

        Chunks, not the whole file: a fresh 64 MiB buffer per segment costs more in page faults
        than decoding the records in it (10 us a 4 KiB message), while one reused buffer stays
        mapped and warm.
        """
        buffer = bytearray(_CHUNK)
        filled = handle.readinto(buffer) or 0
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
        add_offset = batch.offsets.append
        add_record = batch.records.append
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
            self.stats.records += len(batch.records)

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
