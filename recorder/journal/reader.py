"""Reading journals: records with their positions, filters, damage detection and salvage."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from recorder.errors import CorruptionError, JournalError
from recorder.journal.record import (
    HEADER_SIZE,
    SYNC,
    TAIL_MAGIC,
    Footer,
    FrameError,
    Kind,
    Message,
    Record,
    decode_body,
    decode_footer,
    decode_header,
    read_frame,
    record_seq_time,
)
from recorder.journal.segment import SegmentFile, list_segments, segment_bytes, summarize
from recorder.subjects import matches_any

_TAIL_SIZE = 8


class Position(NamedTuple):
    segment: int
    offset: int


@dataclass(frozen=True, slots=True)
class Damage:
    """Bytes that do not form valid records; `torn` when nothing valid follows them."""

    segment: str
    offset: int
    length: int
    reason: str
    torn: bool


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


def next_valid_frame(data: bytes, start: int) -> int | None:
    """Offset of the first checksum-valid frame at or after `start`, found by its sync marker."""
    end = len(data)
    while True:
        candidate = data.find(SYNC, start, end)
        if candidate < 0:
            return None
        try:
            read_frame(data, candidate)
        except FrameError:
            start = candidate + 1
            continue
        return candidate


def walk_frames(
    name: str, data: bytes, *, salvage: bool, damages: list[Damage]
) -> Iterator[tuple[int, Kind, memoryview]]:
    """Yield (offset, kind, body) of each valid frame; record damage, or raise it when strict.

    Damage followed by no valid frame is a torn tail (the writer died mid-write) and ends the
    walk in either mode. Damage followed by a valid frame is corruption: strict mode raises
    CorruptionError naming segment and offset, salvage mode records it and resumes there.
    """
    end = len(data)
    offset = HEADER_SIZE
    try:
        decode_header(data)
    except FrameError as exc:
        resume = None if exc.torn else next_valid_frame(data, 1)
        if exc.torn or resume is None:
            if not exc.torn and not salvage:
                raise CorruptionError(name, 0, exc.reason) from None
            damages.append(Damage(name, 0, end, exc.reason, torn=exc.torn))
            return
        if not salvage:
            raise CorruptionError(name, 0, exc.reason) from None
        damages.append(Damage(name, 0, resume, exc.reason, torn=False))
        offset = resume
    while offset < end:
        try:
            kind, body, following = read_frame(data, offset)
            if kind is Kind.FOOTER:
                _check_tail(data, offset, following)
                decode_footer(body)  # a checksum-valid footer of the wrong size seals nothing
        except FrameError as exc:
            resume = next_valid_frame(data, offset + 1)
            if resume is None:
                damages.append(Damage(name, offset, end - offset, exc.reason, torn=True))
                return
            if not salvage:
                raise CorruptionError(name, offset, exc.reason) from None
            damages.append(Damage(name, offset, resume - offset, exc.reason, torn=False))
            offset = resume
            continue
        yield offset, kind, body
        if kind is Kind.FOOTER:
            return
        offset = following


def _check_tail(data: bytes, footer_start: int, footer_end: int) -> None:
    if (
        len(data) != footer_end + _TAIL_SIZE
        or data[-4:] != TAIL_MAGIC
        or int.from_bytes(data[footer_end : footer_end + 4], "little") != footer_end - footer_start
    ):
        raise FrameError(footer_end, "bytes after the segment footer")


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
        if not self.directory.is_dir():
            raise JournalError(f"{self.directory}: not a journal directory (no such directory)")
        return list_segments(self.directory)

    def __iter__(self) -> Iterator[tuple[Position, Record]]:
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
            yield from self.segment_records(segment)
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
        query = self.query
        bounded = query.bounded
        skip_markers = not self.markers
        stats = self.stats
        number = segment.number
        data = segment_bytes(segment)
        frames = walk_frames(segment.name, data, salvage=self.salvage, damages=self.stats.damages)
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
                self.stats.damages.append(
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
            yield Position(number, offset), record


def iter_messages(directory: Path, query: Query | None = None) -> Iterator[Message]:
    """Just the messages of a journal, in write order."""
    for _position, record in JournalReader(directory, query=query):
        if isinstance(record, Message):
            yield record
