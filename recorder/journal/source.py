"""Journals whose segments are not all on disk at once: each is brought in just before it is read.

Every reading path (dump, compact, replay, inspect, verify) takes a journal directory. A
journal read from elsewhere (an archive) is a scratch directory with a `SegmentSource`
attached: listing the directory gives the source's listing, and a reader asks for each segment
(`present`) just before opening it and gives it back right after, so only the segments in use
(and the one fetched ahead) take space. Attaching the source to the directory, rather than
handing it to every reader, keeps those paths unchanged; journal/ knows no archive.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from recorder.journal.record import Footer
from recorder.journal.segment import SegmentFile, summarize


class SegmentSource(Protocol):
    """Where a journal's segments come from when they are brought in one at a time."""

    def listing(self) -> list[SegmentFile]:
        """Every segment, in write order, at the path it has once brought in."""
        ...

    def bring(self, segment: SegmentFile) -> None:
        """Put the segment at its path (blocking until it is there), or raise RecorderError."""
        ...

    def release(self, segment: SegmentFile) -> None:
        """The reader is done with the segment: its space may go."""
        ...

    def footer(self, segment: SegmentFile) -> tuple[Footer, int] | None:
        """The segment's footer and size when known without bringing it in, else None."""
        ...


_sources: dict[Path, SegmentSource] = {}
_lock = threading.Lock()


@contextlib.contextmanager
def attached(directory: Path, source: SegmentSource) -> Iterator[Path]:
    """`directory` read as the journal `source` brings in, until the block ends."""
    with _lock:
        _sources[directory] = source
    try:
        yield directory
    finally:
        with _lock:
            _sources.pop(directory, None)


def source_of(directory: Path) -> SegmentSource | None:
    if not _sources:  # the usual case: a journal on disk
        return None
    with _lock:
        return _sources.get(directory)


@contextlib.contextmanager
def present(directory: Path, segment: SegmentFile) -> Iterator[None]:
    """The segment on disk for the block: as it is in a plain journal, brought in otherwise."""
    source = source_of(directory)
    if source is None:
        yield
        return
    source.bring(segment)
    try:
        yield
    finally:
        source.release(segment)


def listed_footer(segment: SegmentFile) -> Footer | None:
    """A listed segment's footer: from its journal's source when that knows it, else its file."""
    source = source_of(segment.path.parent)
    known = source.footer(segment) if source is not None else None
    return known[0] if known is not None else summarize(segment).footer
