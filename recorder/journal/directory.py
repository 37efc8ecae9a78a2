"""What a reader may take a journal directory to hold: its segments, and whether it is one."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from recorder.errors import NotAJournalError
from recorder.journal.lock import LOCK_NAME
from recorder.journal.segment import SegmentFile, find_gaps, list_segments, require_dir
from recorder.journal.source import source_of

# Everything besides segments that a journal directory can hold: the lock, compaction's
# checkpoint, repair's quarantine files, the temporary files of atomic writes, and the
# journal's name in an archive.
_JOURNAL_FILE: Final = re.compile(r"^(?:LOCK|checkpoint.*|.*\.quarantine|\..*\.tmp|archive\.id)$")
_LISTINGS: Final = 3


def journal_segments(directory: Path) -> list[SegmentFile]:
    """The segments of a journal directory, in write order; refuses a directory that is none.

    An empty directory is an empty journal; one holding neither a segment nor a LOCK but other
    files (`/etc`, a snapshot directory) is not, and saying "0 segments: clean" would hide it.
    A directory with a segment source attached lists what the source will bring in.
    """
    require_dir(directory)
    source = source_of(directory)
    if source is not None:
        return source.listing()
    segments = list_segments(directory)
    for _ in range(_LISTINGS - 1):
        if not find_gaps(segments):
            break
        # A directory listing is no snapshot: a segment compressed while it ran (the .seg name
        # removed before the scan reached it, the .seg.zst name added where the scan had been)
        # is in neither form. A real gap is still there when listed again; such a miss is not.
        segments = list_segments(directory)
    if not segments:
        _refuse_unless_journal(directory)
    return segments


def _refuse_unless_journal(directory: Path) -> None:
    names = sorted(entry.name for entry in directory.iterdir())
    if LOCK_NAME in names:
        return
    others = [name for name in names if not _JOURNAL_FILE.match(name)]
    if others:
        raise NotAJournalError(str(directory), others)
