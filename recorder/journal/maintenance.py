"""Inspect, verify and repair a journal directory; repair moves damage aside, never deletes it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from recorder.fsutil import fsync_dir
from recorder.journal.frames import Damage, walk_frames
from recorder.journal.lock import DirectoryLock, is_locked
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
    encode_footer,
    encode_header,
    record_seq_time,
)
from recorder.journal.segment import (
    FILE_MODE,
    QUARANTINE_SUFFIX,
    SegmentFile,
    find_gaps,
    list_segments,
    require_dir,
    segment_bytes,
    segment_name,
    summarize,
    write_file_atomically,
)
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


@dataclass(slots=True)
class _Walk:
    """One salvage walk over a segment: its good frames' spans and its damage."""

    scan: SegmentScan
    spans: list[tuple[int, int]] = field(default_factory=list)


def _walk(segment: SegmentFile) -> tuple[bytes, _Walk]:
    data = segment_bytes(segment)
    scan = SegmentScan(segment, len(data), good_end=min(len(data), HEADER_SIZE))
    try:
        scan.header = decode_header(data)
    except FrameError:
        scan.header = None
    walk = _Walk(scan)
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
        if scan.first_seq is None:
            scan.first_seq, scan.first_time_ns = seq, time_ns
        scan.last_seq, scan.last_time_ns = seq, time_ns
        scan.good_end = end
    return data, walk


def scan_segment(segment: SegmentFile) -> SegmentScan:
    """Check every record of one segment (salvage mode): damage, sequence order, footer."""
    return _walk(segment)[1].scan


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
    """A row per segment; sealed segments are described from their footer without a scan."""
    segments = _existing_segments(directory)
    locked = is_locked(directory)
    infos = []
    for index, segment in enumerate(segments):
        summary = summarize(segment)
        footer = summary.footer
        if footer is not None:
            infos.append(_info(segment, "sealed", footer, summary.size))
            continue
        scan = scan_segment(segment)
        last = index == len(segments) - 1
        if scan.corrupt:
            state = "corrupt"
        elif last and locked:
            state = "active"
        elif scan.torn:
            state = "torn"
        else:
            state = "unsealed"
        infos.append(
            SegmentInfo(
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
        )
    return infos


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


def _existing_segments(directory: Path) -> list[SegmentFile]:
    require_dir(directory)
    return list_segments(directory)


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
    gaps: list[tuple[int, int]] = field(default_factory=list)  # missing segment numbers

    @property
    def clean(self) -> bool:
        return not self.problems


def verify_journal(directory: Path) -> VerifyReport:
    """Check every record of every segment, the footers, sequence order and segment numbering."""
    segments = _existing_segments(directory)
    locked = is_locked(directory)
    report = VerifyReport(segments=len(segments), gaps=find_gaps(segments))
    for first, last in report.gaps:
        report.problems.append(
            Problem(segment_name(first), None, f"segments {first}..{last} are missing")
        )
    previous_last = 0
    for index, segment in enumerate(segments):
        scan = scan_segment(segment)
        report.records += scan.records
        live = locked and index == len(segments) - 1
        if live:
            report.in_progress = segment.name
        for damage in scan.damages:
            if damage.torn and live:
                continue
            kind = "torn tail" if damage.torn else "damage"
            report.problems.append(
                Problem(
                    segment.name, damage.offset, f"{kind}: {damage.reason} ({damage.length} bytes)"
                )
            )
        if scan.header is not None and scan.header.number != segment.number:
            report.problems.append(
                Problem(segment.name, 0, f"header says segment {scan.header.number}")
            )
        if segment.compressed and not _summary_matches(segment, scan):
            report.problems.append(
                Problem(segment.name, 0, "damaged summary frame (copy of header and footer)")
            )
        if scan.footer is None and not live and not scan.damages:
            report.problems.append(
                Problem(segment.name, None, "not sealed (writer stopped uncleanly)")
            )
        if scan.footer is not None and not scan.corrupt:
            expected = (scan.footer.records, scan.footer.first_seq, scan.footer.last_seq)
            found = (scan.records, scan.first_seq or 0, scan.last_seq or 0)
            if scan.records and expected != found:
                report.problems.append(
                    Problem(segment.name, None, f"footer says {expected}, records say {found}")
                )
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


# -- repair -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Quarantined:
    segment: str
    offset: int
    length: int
    reason: str
    path: Path


@dataclass(slots=True)
class RepairReport:
    segments_repaired: list[str] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    records_kept: int = 0


def repair_journal(directory: Path) -> RepairReport:
    """Repair every damaged or unsealed segment of a journal no writer holds."""
    segments = _existing_segments(directory)
    report = RepairReport()
    with DirectoryLock(directory):
        for segment in segments:
            summary = summarize(segment)
            if summary.footer is not None and not _has_damage(segment):
                continue
            quarantined, kept = repair_segment(segment)
            report.segments_repaired.append(segment.name)
            report.quarantined.extend(quarantined)
            report.records_kept += kept
    return report


def _has_damage(segment: SegmentFile) -> bool:
    scan = scan_segment(segment)
    return bool(scan.damages) or not _summary_matches(segment, scan)


def _summary_matches(segment: SegmentFile, scan: SegmentScan) -> bool:
    """Whether the header and footer summaries read agree with the segment's content."""
    summary = summarize(segment)
    return (summary.header, summary.footer) == (scan.header, scan.footer)


def repair_segment(segment: SegmentFile) -> tuple[list[Quarantined], int]:
    """Move damaged bytes into quarantine files, keep every valid record, and seal the segment.

    A torn tail alone is cut off in place; damage inside the segment (or a compressed segment)
    means rewriting it from its valid records via a temporary file and rename.
    """
    data, walk = _walk(segment)
    scan = walk.scan
    quarantined = [_quarantine(segment, data, damage) for damage in scan.damages]
    if segment.compressed and scan.damages:
        # Decompression stops at damage, so keep the whole compressed original (a zstd decoder
        # can still get more out of it) before the segment is rewritten and the original removed.
        raw = segment.path.read_bytes()
        whole = Damage(segment.name, 0, len(raw), "compressed original of a damaged segment", False)
        quarantined.append(_quarantine(segment, raw, whole))
    footer = Footer(
        scan.first_seq or 0,
        scan.last_seq or 0,
        scan.first_time_ns or 0,
        scan.last_time_ns or 0,
        scan.records,
        scan.messages,
    )
    if scan.corrupt or segment.compressed or scan.header is None:
        header = scan.header or SegmentHeader(
            segment.number, segment.path.stat().st_mtime_ns, bytes(16)
        )
        parts = [encode_header(header)]
        parts.extend(data[start:end] for start, end in walk.spans)
        parts.append(encode_footer(footer))
        target = segment.path.with_name(segment_name(segment.number))
        write_file_atomically(target, b"".join(parts))
        if segment.compressed:
            segment.path.unlink()
            fsync_dir(segment.path.parent)
    elif scan.footer is None:
        fd = os.open(segment.path, os.O_WRONLY)
        try:
            os.ftruncate(fd, scan.good_end)
            os.pwrite(fd, encode_footer(footer), scan.good_end)
            os.fsync(fd)
        finally:
            os.close(fd)
    for item in quarantined:
        log.warning(
            "damage_quarantined",
            segment=item.segment,
            offset=item.offset,
            bytes=item.length,
            reason=item.reason,
            path=str(item.path),
        )
    return quarantined, scan.records


def _quarantine(segment: SegmentFile, data: bytes, damage: Damage) -> Quarantined:
    base = segment.path.with_name(f"{segment_name(segment.number)}@{damage.offset}")
    path = base.with_name(base.name + QUARANTINE_SUFFIX)
    counter = 1
    while path.exists():
        path = base.with_name(f"{base.name}.{counter}{QUARANTINE_SUFFIX}")
        counter += 1
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        os.write(fd, data[damage.offset : damage.offset + damage.length])
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(segment.path.parent)
    return Quarantined(segment.name, damage.offset, damage.length, damage.reason, path)
