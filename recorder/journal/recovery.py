"""Opening a journal after a crash: seal what the previous writer left open, find the sequence."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from recorder.journal.frames import walk_frames
from recorder.journal.record import FrameError, Kind, Marker, MarkerType, decode_body
from recorder.journal.repair import repair_segment
from recorder.journal.segment import SegmentFile, list_segments, segment_bytes, summarize
from recorder.log import get_logger

log = get_logger("journal")


@dataclass(frozen=True, slots=True)
class Recovery:
    """What opening the journal found of the previous writer."""

    previous_last_seq: int
    clean: bool | None  # None: a new journal
    repaired: tuple[str, ...]


def recover(directory: Path) -> Recovery:
    """Seal every segment a crashed writer left open and find where the sequence stands."""
    for leftover in directory.glob("*.tmp"):
        # Half-written compressions or rewrites from a crash: the originals are intact.
        leftover.unlink()
        log.info("temporary_file_removed", path=leftover.name)
    segments = list_segments(directory)
    if not segments:
        return Recovery(0, None, ())
    repaired = []
    clean = True
    summaries = [summarize(segment) for segment in segments]
    for summary in summaries:
        if summary.footer is None:
            clean = False
            repair_segment(summary.file)
            repaired.append(summary.file.name)
            log.warning("segment_repaired_at_start", segment=summary.file.number)
    last_seq = 0
    for segment in reversed(segments):
        footer = summarize(segment).footer
        if footer is not None and footer.records:
            last_seq = footer.last_seq
            if clean and not _ends_with_stop(segment):
                # Sealed yet never stopped: the writer died between sealing a segment and
                # writing into the next (mid-rotation, or a restart killed after its recovery).
                clean = False
                log.warning("unmarked_stop_detected", segment=segment.number, last_seq=last_seq)
            break
    return Recovery(last_seq, clean, tuple(repaired))


def _ends_with_stop(segment: SegmentFile) -> bool:
    """Whether the segment's last record is a STOPPED marker, as every orderly close leaves."""
    last: tuple[Kind, memoryview] | None = None
    data = segment_bytes(segment)
    for _offset, kind, body in walk_frames(segment.name, data, salvage=True, damages=[]):
        if kind is not Kind.FOOTER:
            last = (kind, body)
    if last is None or last[0] is not Kind.MARKER:
        return False
    try:
        record = decode_body(*last)
    except FrameError:
        return False
    return isinstance(record, Marker) and record.type is MarkerType.STOPPED
