"""Segment files on disk: naming, listing, gaps, cheap summaries, compression and fsync."""

from __future__ import annotations

import itertools
import os
import re
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import zstandard

from recorder.errors import JournalError
from recorder.fsutil import PRIVATE_FILE_MODE, fsync_dir, write_atomic
from recorder.journal.record import (
    FOOTER_SIZE,
    HEADER_SIZE,
    Footer,
    FrameError,
    SegmentHeader,
    decode_header,
    find_footer,
)

SUFFIX: Final = ".seg"
COMPRESSED_SUFFIX: Final = ".seg.zst"
QUARANTINE_SUFFIX: Final = ".quarantine"
_NAME: Final = re.compile(r"^(\d{8,})\.seg(\.zst)?$")
# A zstd skippable frame (ignored by every zstd decoder) carries the segment's header and footer,
# so a compressed segment can be summarised without decompressing it.
_SKIPPABLE_MAGIC: Final = 0x184D2A5E
_SKIPPABLE: Final = struct.Struct("<II")
FILE_MODE: Final = PRIVATE_FILE_MODE
DIR_MODE: Final = 0o700


@dataclass(frozen=True, slots=True)
class SegmentFile:
    number: int
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def compressed(self) -> bool:
        return self.path.name.endswith(COMPRESSED_SUFFIX)


@dataclass(frozen=True, slots=True)
class SegmentSummary:
    """What a segment says about itself without a scan: its header and, if sealed, its footer."""

    file: SegmentFile
    header: SegmentHeader | None
    footer: Footer | None
    size: int


def segment_name(number: int) -> str:
    return f"{number:08d}{SUFFIX}"


def list_segments(directory: Path) -> list[SegmentFile]:
    """Segments in write order; a plain file wins over a compressed twin left by a crash."""
    found: dict[int, SegmentFile] = {}
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    for entry in entries:
        match = _NAME.match(entry.name)
        if not match:
            continue
        number = int(match.group(1))
        segment = SegmentFile(number, Path(entry.path))
        if number not in found or not segment.compressed:
            found[number] = segment
    return [found[number] for number in sorted(found)]


def require_dir(directory: Path) -> None:
    """Raise JournalError saying why `directory` cannot be read as a journal directory, if it cannot."""
    try:
        mode = directory.stat().st_mode
    except FileNotFoundError:
        reason = "no such directory"
    except OSError as exc:  # a parent that is a file, or that this user may not enter
        reason = exc.strerror or type(exc).__name__
    else:
        if stat.S_ISDIR(mode):
            return
        reason = "a file, not a directory" if stat.S_ISREG(mode) else "not a directory"
    raise JournalError(f"{directory}: not a journal directory ({reason})")


def find_gaps(segments: list[SegmentFile]) -> list[tuple[int, int]]:
    """Missing segment-number ranges (inclusive) between the first and last segment."""
    gaps = []
    for before, after in itertools.pairwise(segments):
        if after.number != before.number + 1:
            gaps.append((before.number + 1, after.number - 1))
    return gaps


def ensure_dir(directory: Path) -> None:
    """Create the journal directory owner-only: journals can hold Secret contents.

    Missing parents get 0755 whatever the umask (mkdir would give them 0777 under umask 0).
    """
    if directory.exists() and not directory.is_dir():
        require_dir(directory)  # says what is in the way, rather than mkdir's "File exists"
    missing = [parent for parent in reversed(directory.parents) if not parent.exists()]
    for parent in missing:
        parent.mkdir(mode=0o755, exist_ok=True)
        parent.chmod(0o755)
    if not directory.exists():
        missing.append(directory)
    directory.mkdir(mode=DIR_MODE, exist_ok=True)
    # A new directory's entry is durable only once its parent is fsynced: without this a power
    # loss can take the whole journal, fsynced segments and all.
    for created in missing:
        fsync_dir(created.parent)


def segment_bytes(segment: SegmentFile) -> bytes:
    """The segment's uncompressed bytes (read whole: a segment is at most segment_max_bytes)."""
    if segment.compressed:
        return _decompress(segment.path)
    return segment.path.read_bytes()


def summarize(segment: SegmentFile) -> SegmentSummary:
    """Header and footer of a segment from its first and last bytes only."""
    size = segment.path.stat().st_size
    with segment.path.open("rb") as handle:
        if segment.compressed:
            head = _read_skippable(handle.read(_SKIPPABLE.size + HEADER_SIZE + FOOTER_SIZE))
            if head is None:
                return SegmentSummary(segment, None, None, size)
            return SegmentSummary(segment, header_or_none(head), find_footer(head), size)
        head = handle.read(HEADER_SIZE)
        footer = None
        if size >= HEADER_SIZE + FOOTER_SIZE:
            handle.seek(size - FOOTER_SIZE)
            footer = find_footer(head + handle.read(FOOTER_SIZE))
        return SegmentSummary(segment, header_or_none(head), footer, size)


def header_or_none(data: bytes) -> SegmentHeader | None:
    try:
        return decode_header(data)
    except FrameError:
        return None


def _read_skippable(data: bytes) -> bytes | None:
    if len(data) < _SKIPPABLE.size:
        return None
    magic, length = _SKIPPABLE.unpack_from(data)
    if magic != _SKIPPABLE_MAGIC or length != HEADER_SIZE + FOOTER_SIZE:
        return None
    return data[_SKIPPABLE.size : _SKIPPABLE.size + length]


def _decompress(path: Path) -> bytes:
    """Decompress a .seg.zst; a damaged stream gives the bytes that did decompress."""
    with path.open("rb") as handle:
        raw = handle.read()
    output = bytearray()
    reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    try:
        # Small reads: on damage, what decompressed before it is kept as good data, and the
        # reader reports the cut-short end as damage at that offset.
        while chunk := reader.read(1 << 14):
            output += chunk
    except zstandard.ZstdError:
        pass
    return bytes(output)


def write_file_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` via tmp -> fsync -> rename -> fsync(dir)."""
    write_atomic(path, [data], FILE_MODE)


def compress_segment(segment: SegmentFile, level: int = 3) -> SegmentFile:
    """Replace a sealed segment by its zstd form; the skippable frame keeps it summarisable."""
    data = segment.path.read_bytes()
    head = data[:HEADER_SIZE] + data[-FOOTER_SIZE:]
    compressor = zstandard.ZstdCompressor(level=level, write_checksum=True)
    compressed = _SKIPPABLE.pack(_SKIPPABLE_MAGIC, len(head)) + head + compressor.compress(data)
    target = segment.path.with_name(segment_name(segment.number) + ".zst")
    write_file_atomically(target, compressed)
    segment.path.unlink()
    fsync_dir(segment.path.parent)
    return SegmentFile(segment.number, target)
