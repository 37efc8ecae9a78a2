"""The careful walk over a segment's frames: every check, damage found, recorded or raised.

This is the reference reader: `JournalReader`'s fast path hands every frame it does not plainly
accept to it, and `verify`, `repair` and recovery use it directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from recorder.errors import CorruptionError
from recorder.journal.record import (
    HEADER_SIZE,
    SYNC,
    TAIL_MAGIC,
    FrameError,
    Kind,
    decode_footer,
    decode_header,
    read_frame,
)

_TAIL_SIZE = 8


@dataclass(frozen=True, slots=True)
class Damage:
    """Bytes that do not form valid records; `torn` when nothing valid follows them."""

    segment: str
    offset: int
    length: int
    reason: str
    torn: bool


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
    name: str, data: bytes, *, salvage: bool, damages: list[Damage], base: int = 0
) -> Iterator[tuple[int, Kind, memoryview]]:
    """Yield (offset, kind, body) of each valid frame; record damage, or raise it when strict.

    Damage followed by no valid frame is a torn tail (the writer died mid-write) and ends the
    walk in either mode. Damage followed by a valid frame is corruption: strict mode raises
    CorruptionError naming segment and offset, salvage mode records it and resumes there.
    `data` is the whole segment, header first, or (`base` > 0) its bytes from the frame at
    file offset `base` on; offsets are always the file's.
    """
    end = len(data)
    offset = 0 if base else HEADER_SIZE
    try:
        if not base:
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
            kind, body, following = read_frame(data, offset, base)
            if kind is Kind.FOOTER:
                _check_tail(data, offset, following)
                decode_footer(body)  # a checksum-valid footer of the wrong size seals nothing
        except FrameError as exc:
            resume = next_valid_frame(data, offset + 1)
            if resume is None:
                damages.append(Damage(name, base + offset, end - offset, exc.reason, torn=True))
                return
            if not salvage:
                raise CorruptionError(name, base + offset, exc.reason) from None
            damages.append(Damage(name, base + offset, resume - offset, exc.reason, torn=False))
            offset = resume
            continue
        yield base + offset, kind, body
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
