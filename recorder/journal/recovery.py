"""Opening a journal after a crash: seal what the previous writer left open, find the sequence."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import structlog

from recorder.journal.maintenance import repair_segment
from recorder.journal.segment import list_segments, summarize

log = structlog.get_logger("recorder.journal")


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
            break
    return Recovery(last_seq, clean, tuple(repaired))
