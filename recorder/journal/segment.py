"""Segment files on disk: naming, listing, gaps, cheap summaries, compression and fsync."""

from __future__ import annotations

import io
import itertools
import os
import re
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from recorder.errors import JournalError, JournalWriteError, PathAccessError, SegmentGoneError
from recorder.fsutil import (
    PRIVATE_FILE_MODE,
    fsync_dir,
    open_for_reading,
    open_nofollow,
    read_file,
    write_atomic,
)
from recorder.journal.record import (
    FOOTER_SIZE,
    HEADER_SIZE,
    Footer,
    FrameError,
    SegmentHeader,
    decode_header,
    find_footer,
)
from recorder.log import get_logger

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

log = get_logger("journal")


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
    except PermissionError as exc:
        raise PathAccessError(str(directory), exc.errno, "permission denied for listing") from None
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


def remove_segment(segment: SegmentFile) -> None:
    """Unlink a segment in both its forms; the caller fsyncs the directory.

    A crash between a compression's rename and its unlink leaves a plain file and a compressed
    twin. list_segments shows the plain one, so deleting only that would bring the twin back as
    an old segment once newer ones are gone: a gap in the numbering.
    """
    segment.path.with_name(segment_name(segment.number)).unlink(missing_ok=True)
    compressed_twin(segment).path.unlink(missing_ok=True)


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
    if directory not in missing:
        tighten_dir(directory)
    # A new directory's entry is durable only once its parent is fsynced: without this a power
    # loss can take the whole journal, fsynced segments and all.
    for created in missing:
        fsync_dir(created.parent)


def tighten_dir(directory: Path) -> None:
    """Take group and world access away from an existing journal directory, saying so.

    Tightened rather than refused: volume mounts (a Kubernetes emptyDir is 0777) and hand-made
    directories often come group- or world-accessible, and the fix is the same chmod an
    operator would have to type. A directory we cannot chmod (not ours) is reported and used.
    """
    mode = stat.S_IMODE(directory.stat().st_mode)
    if not mode & 0o077:
        return
    try:
        directory.chmod(mode & ~0o077)
    except OSError as exc:
        log.warning(
            "journal_dir_open_to_others",
            dir=str(directory),
            mode=oct(mode),
            error=exc.strerror or str(exc),
        )
        return
    log.warning(
        "journal_dir_permissions_tightened",
        dir=str(directory),
        mode=oct(mode),
        now=oct(mode & ~0o077),
    )


def create_segment_file(path: Path) -> int:
    """A new segment file for appending, never through a link.

    A refusal (permission lost mid-run, a read-only filesystem, a file planted at the name) is
    a JournalWriteError, which the daemon's writer retries, never a crash of its thread.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND
    try:
        return open_nofollow(path, flags, FILE_MODE)
    except PathAccessError as exc:
        raise JournalWriteError(exc.path, exc.errno, exc.reason) from None
    except OSError as exc:
        raise JournalWriteError(str(path), exc.errno, exc.strerror or str(exc)) from None


def compressed_twin(segment: SegmentFile) -> SegmentFile:
    return SegmentFile(
        segment.number, segment.path.with_name(segment_name(segment.number) + ".zst")
    )


def open_segment(segment: SegmentFile) -> tuple[SegmentFile, io.FileIO]:
    """Open a listed segment, or its compressed twin if compression replaced it since.

    An open file stays whole whatever happens to its name (compression renames, retention
    unlinks), so a reader holding one reads on unaffected: only the step from listing to opening
    can find the name gone. Neither form there means retention or a prune removed it:
    SegmentGoneError, which readers of a live journal report as a gap rather than crash on.
    """
    try:
        return segment, open_for_reading(segment.path)
    except FileNotFoundError:
        if segment.compressed:
            raise SegmentGoneError(segment.name) from None
    twin = compressed_twin(segment)
    try:
        return twin, open_for_reading(twin.path)
    except FileNotFoundError:
        raise SegmentGoneError(segment.name) from None


def segment_bytes(segment: SegmentFile) -> bytes:
    """The segment's uncompressed bytes (read whole: a segment is at most segment_max_bytes)."""
    opened, handle = open_segment(segment)
    with handle:
        return handle_bytes(opened, handle)


def handle_bytes(segment: SegmentFile, handle: io.FileIO) -> bytes:
    """The uncompressed bytes of an open segment, from its current position on."""
    raw = handle.readall()
    return _decompress(raw) if segment.compressed else raw


def summarize(segment: SegmentFile) -> SegmentSummary:
    """Header and footer of a segment from its first and last bytes only."""
    opened, handle = open_segment(segment)
    with handle:
        return summarize_open(opened, handle)


def summarize_open(segment: SegmentFile, handle: io.FileIO) -> SegmentSummary:
    """`summarize` of an open segment; leaves the handle at its start."""
    size = os.fstat(handle.fileno()).st_size
    try:
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
    finally:
        handle.seek(0)


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


def _decompress(raw: bytes) -> bytes:
    """Decompress a .seg.zst's bytes; a damaged stream gives the bytes that did decompress."""
    import zstandard  # only for compressed segments: inspect and verify of others never load it

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
    import zstandard

    data = read_file(segment.path)
    head = data[:HEADER_SIZE] + data[-FOOTER_SIZE:]
    compressor = zstandard.ZstdCompressor(level=level, write_checksum=True)
    compressed = _SKIPPABLE.pack(_SKIPPABLE_MAGIC, len(head)) + head + compressor.compress(data)
    target = compressed_twin(segment)
    write_file_atomically(target.path, compressed)
    segment.path.unlink()
    fsync_dir(segment.path.parent)
    return target
