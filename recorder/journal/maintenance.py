"""Inspect and verify a journal directory: what each segment holds and what is wrong with it."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from recorder.errors import SegmentGoneError
from recorder.journal.directory import journal_segments
from recorder.journal.frames import Damage, walk_frames
from recorder.journal.lock import is_locked
from recorder.journal.record import (
    FRAME_OVERHEAD,
    HEADER_SIZE,
    Footer,
    FrameError,
    Kind,
    SegmentHeader,
    decode_body,
    decode_footer,
    decode_header,
    record_seq_time,
)
from recorder.journal.segment import (
    SegmentFile,
    find_gaps,
    segment_bytes,
    segment_name,
    summarize,
)
from recorder.journal.source import present, source_of
from recorder.log import get_logger

log = get_logger("journal")


@dataclass(slots=True)
class SegmentScan:
    """Everything a full walk of one segment learned."""

    file: SegmentFile
    size: int
    header: SegmentHeader | None = None
    footer: Footer | None = None
    records: int = 0
    messages: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    first_time_ns: int | None = None
    last_time_ns: int | None = None
    good_end: int = 0
    damages: list[Damage] = field(default_factory=list)

    @property
    def torn(self) -> Damage | None:
        return next((damage for damage in self.damages if damage.torn), None)

    @property
    def corrupt(self) -> list[Damage]:
        return [damage for damage in self.damages if not damage.torn]

    def implied_footer(self) -> Footer:
        """The footer that sealing these records would write."""
        return Footer(
            self.first_seq or 0,
            self.last_seq or 0,
            self.first_time_ns or 0,
            self.last_time_ns or 0,
            self.records,
            self.messages,
        )


@dataclass(slots=True)
class SegmentWalk:
    """One salvage walk over a segment: its good frames' spans and its damage."""

    scan: SegmentScan
    spans: list[tuple[int, int]] = field(default_factory=list)


def walk_segment(segment: SegmentFile) -> tuple[bytes, SegmentWalk]:
    data = segment_bytes(segment)
    scan = SegmentScan(segment, len(data), good_end=min(len(data), HEADER_SIZE))
    try:
        scan.header = decode_header(data)
    except FrameError:
        scan.header = None
    walk = SegmentWalk(scan)
    previous_seq = 0
    for offset, kind, body in walk_frames(segment.name, data, salvage=True, damages=scan.damages):
        end = offset + FRAME_OVERHEAD + len(body)
        if kind is Kind.FOOTER:
            scan.footer = decode_footer(body)
            scan.good_end = len(data)
            break
        try:
            decode_body(kind, body, offset)
            seq, time_ns = record_seq_time(kind, body)
        except FrameError as exc:
            scan.damages.append(Damage(segment.name, offset, end - offset, exc.reason, torn=False))
            continue
        if seq <= previous_seq:
            reason = f"sequence {seq} does not follow {previous_seq}"
            scan.damages.append(Damage(segment.name, offset, end - offset, reason, torn=False))
            continue
        previous_seq = seq
        walk.spans.append((offset, end))
        scan.records += 1
        scan.messages += kind is Kind.MESSAGE
        # Earliest and latest stamp, as the writer's footer keeps them: after a step back of the
        # wall clock, the first and last record's would hide records from time pruning.
        if scan.first_seq is None or scan.first_time_ns is None or scan.last_time_ns is None:
            scan.first_seq, scan.first_time_ns, scan.last_time_ns = seq, time_ns, time_ns
        else:
            scan.first_time_ns = min(scan.first_time_ns, time_ns)
            scan.last_time_ns = max(scan.last_time_ns, time_ns)
        scan.last_seq = seq
        scan.good_end = end
    return data, walk


def scan_segment(segment: SegmentFile) -> SegmentScan:
    """Check every record of one segment (salvage mode): damage, sequence order, footer."""
    return walk_segment(segment)[1].scan


# -- inspect ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    name: str
    number: int
    state: str  # sealed | active | unsealed | torn | corrupt
    records: int
    messages: int
    bytes: int
    first_seq: int | None
    last_seq: int | None
    first_time_ns: int | None
    last_time_ns: int | None
    compressed: bool


def inspect_journal(directory: Path) -> list[SegmentInfo]:
    """A row per segment; sealed segments are described from their footer without a scan.

    A segment that retention removes while the rows are made has no row.
    """
    segments = journal_segments(directory)
    locked = is_locked(directory)
    source = source_of(directory)
    infos = []
    for index, segment in enumerate(segments):
        known = source.footer(segment) if source is not None else None
        if known is not None:  # a brought-in journal's footers are known without fetching
            infos.append(_info(segment, "sealed", *known))
            continue
        with contextlib.suppress(SegmentGoneError), present(directory, segment):
            infos.append(_inspect_one(segment, live=locked and index == len(segments) - 1))
    return infos


def _inspect_one(listed: SegmentFile, *, live: bool) -> SegmentInfo:
    summary = summarize(listed)
    segment = summary.file  # the compressed twin, if compression came between
    if summary.footer is not None:
        return _info(segment, "sealed", summary.footer, summary.size)
    scan = scan_segment(segment)
    state = "unsealed"
    if scan.corrupt:
        state = "corrupt"
    elif live:
        state = "active"
    elif scan.torn:
        state = "torn"
    return SegmentInfo(
        segment.name,
        segment.number,
        state,
        scan.records,
        scan.messages,
        summary.size,
        scan.first_seq,
        scan.last_seq,
        scan.first_time_ns,
        scan.last_time_ns,
        segment.compressed,
    )


def _info(segment: SegmentFile, state: str, footer: Footer, size: int) -> SegmentInfo:
    empty = footer.records == 0
    return SegmentInfo(
        segment.name,
        segment.number,
        state,
        footer.records,
        footer.messages,
        size,
        None if empty else footer.first_seq,
        None if empty else footer.last_seq,
        None if empty else footer.first_time_ns,
        None if empty else footer.last_time_ns,
        segment.compressed,
    )


# -- verify -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    segment: str
    offset: int | None
    reason: str


@dataclass(slots=True)
class VerifyReport:
    segments: int = 0
    records: int = 0
    problems: list[Problem] = field(default_factory=list)
    in_progress: str | None = None  # the live writer's segment, whose tail may be mid-write
    removed: list[str] = field(default_factory=list)  # by retention, before they were checked
    gaps: list[tuple[int, int]] = field(default_factory=list)  # missing segment numbers

    @property
    def clean(self) -> bool:
        return not self.problems


def verify_journal(directory: Path) -> VerifyReport:
    """Check every record of every segment, the footers, sequence order and segment numbering.

    Segments that retention removes while they wait their turn are listed in `removed`.
    """
    segments = journal_segments(directory)
    locked = is_locked(directory)
    report = VerifyReport(segments=len(segments), gaps=find_gaps(segments))
    for first, last in report.gaps:
        report.problems.append(
            Problem(segment_name(first), None, f"segments {first}..{last} are missing")
        )
    previous_last = 0
    for index, segment in enumerate(segments):
        live = locked and index == len(segments) - 1
        try:
            with present(directory, segment):
                scan = scan_segment(segment)
                report.problems += _segment_problems(segment, scan, live=live)
        except SegmentGoneError:
            report.removed.append(segment.name)
            continue
        report.records += scan.records
        if live:
            report.in_progress = segment.name
        if scan.first_seq is not None:
            if scan.first_seq <= previous_last:
                report.problems.append(
                    Problem(
                        segment.name,
                        HEADER_SIZE,
                        f"sequence {scan.first_seq} does not follow {previous_last}",
                    )
                )
            previous_last = scan.last_seq or previous_last
    return report


def _segment_problems(segment: SegmentFile, scan: SegmentScan, *, live: bool) -> list[Problem]:
    """What is wrong inside one segment; a live writer's torn tail is a write in progress."""
    problems = [
        Problem(
            segment.name,
            damage.offset,
            f"{'torn tail' if damage.torn else 'damage'}: {damage.reason} ({damage.length} bytes)",
        )
        for damage in scan.damages
        if not (damage.torn and live)
    ]
    if scan.header is not None and scan.header.number != segment.number:
        problems.append(Problem(segment.name, 0, f"header says segment {scan.header.number}"))
    if segment.compressed and not summary_matches(segment, scan):
        problems.append(
            Problem(segment.name, 0, "damaged summary frame (copy of header and footer)")
        )
    if scan.footer is None and not live and not scan.damages:
        problems.append(Problem(segment.name, None, "not sealed (writer stopped uncleanly)"))
    if scan.footer is not None and not scan.corrupt:
        found = scan.implied_footer()
        if scan.records and scan.footer != found:
            problems.append(
                Problem(segment.name, None, f"footer says {scan.footer}, records say {found}")
            )
    return problems


def summary_matches(segment: SegmentFile, scan: SegmentScan) -> bool:
    """Whether the header and footer summaries read agree with the segment's content."""
    summary = summarize(segment)
    return (summary.header, summary.footer) == (scan.header, scan.footer)
