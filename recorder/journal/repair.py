"""Repair a journal no writer holds: damage moves aside into quarantine files, never deleted."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from recorder.fsutil import fsync_dir, open_nofollow, read_file
from recorder.journal.directory import journal_segments
from recorder.journal.frames import Damage
from recorder.journal.lock import DirectoryLock
from recorder.journal.maintenance import scan_segment, summary_matches, walk_segment
from recorder.journal.record import SegmentHeader, encode_footer, encode_header
from recorder.journal.segment import (
    FILE_MODE,
    QUARANTINE_SUFFIX,
    SegmentFile,
    segment_name,
    summarize,
    write_file_atomically,
)
from recorder.log import get_logger

log = get_logger("journal")


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
    segments = journal_segments(directory)
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
    return bool(scan.damages) or not summary_matches(segment, scan)


def repair_segment(segment: SegmentFile) -> tuple[list[Quarantined], int]:
    """Move damaged bytes into quarantine files, keep every valid record, and seal the segment.

    A torn tail alone is cut off in place; damage inside the segment (or a compressed segment)
    means rewriting it from its valid records via a temporary file and rename.
    """
    data, walk = walk_segment(segment)
    scan = walk.scan
    quarantined = [_quarantine(segment, data, damage) for damage in scan.damages]
    if segment.compressed and scan.damages:
        # Decompression stops at damage, so keep the whole compressed original (a zstd decoder
        # can still get more out of it) before the segment is rewritten and the original removed.
        raw = read_file(segment.path)
        whole = Damage(segment.name, 0, len(raw), "compressed original of a damaged segment", False)
        quarantined.append(_quarantine(segment, raw, whole))
    footer = scan.implied_footer()
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
        fd = open_nofollow(segment.path, os.O_WRONLY)
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
    fd = open_nofollow(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        os.write(fd, data[damage.offset : damage.offset + damage.length])
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(segment.path.parent)
    return Quarantined(segment.name, damage.offset, damage.length, damage.reason, path)
