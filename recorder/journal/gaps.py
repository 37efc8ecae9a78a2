"""Records a read cannot return: segments missing from the numbering, or removed while it ran."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from recorder.errors import SegmentGoneError
from recorder.journal.segment import SegmentFile
from recorder.journal.source import listed_footer

Where = Literal["start", "middle", "end"]


@dataclass(frozen=True, slots=True)
class Gap:
    """Missing records: segment numbers and sequence numbers (inclusive) where they are known.

    Only a gap in the middle of what was read loses records inside it: one at the start is the
    journal's start moving on (retention) before the read got there, one at the end a read
    that ends sooner. A segment missing from the numbering is always in the middle.
    """

    first_segment: int | None
    last_segment: int | None
    first_seq: int | None
    last_seq: int | None
    cause: str
    where: Where = "middle"

    @property
    def inside(self) -> bool:
        return self.where == "middle"

    def describe(self) -> str:
        parts = []
        if self.first_segment is not None and self.last_segment is not None:
            if self.first_segment == self.last_segment:
                parts.append(f"segment {self.first_segment}")
            else:
                parts.append(f"segments {self.first_segment}..{self.last_segment}")
        if self.first_seq is not None or self.last_seq is not None:
            first = "?" if self.first_seq is None else str(self.first_seq)
            last = "?" if self.last_seq is None else str(self.last_seq)
            parts.append(f"seq {first}..{last}")
        where = "" if self.inside else f", at the {self.where} of what was read"
        return f"{' '.join(parts)} {self.cause}{where}"


MISSING = "missing"
REMOVED = "removed while being read"


@dataclass(slots=True)
class GapTracker:
    """Follows a read through the listed segments and notes every gap in what it returns.

    A read calls `removed` for a listed segment it could not open, then `reached` for each it
    did open (read, or skipped by its footer) and `finish` at the end.
    """

    bounds: Bounds
    gaps: list[Gap]
    _previous: SegmentFile | None = None
    _removed: list[int] = field(default_factory=list)
    _read_any: bool = False

    def removed(self, segment: SegmentFile) -> None:
        self._removed.append(segment.number)
        self._previous = segment

    def reached(self, segment: SegmentFile, *, read: bool, before_range: bool = False) -> None:
        """A segment opened: read (`read`), or skipped as wholly before or after the range."""
        previous = self._previous
        self._place_removed("middle" if self._read_any else "start")
        if previous is not None and not before_range:
            gap = numbering_gap(previous, segment, self.bounds)
            if gap is not None:
                self.gaps.append(gap)
        self._previous = segment
        self._read_any = self._read_any or read

    def finish(self) -> None:
        self._place_removed("end" if self._read_any else "start")

    def _place_removed(self, where: Where) -> None:
        if self._removed:
            first, last = self._removed[0], self._removed[-1]
            self.gaps.append(Gap(first, last, None, None, REMOVED, where))
            self._removed.clear()


class Bounds(NamedTuple):
    """A read's range (inclusive): a gap wholly outside it loses nothing the read wanted."""

    from_seq: int | None = None
    to_seq: int | None = None
    since_ns: int | None = None
    until_ns: int | None = None


def listing_gaps(segments: list[SegmentFile], bounds: Bounds) -> list[Gap]:
    """The numbering gaps of a listing that may hold records in the range."""
    found = (numbering_gap(a, b, bounds) for a, b in itertools.pairwise(segments))
    return [gap for gap in found if gap is not None]


def numbering_gap(before: SegmentFile, after: SegmentFile, bounds: Bounds) -> Gap | None:
    """The segments missing between two listed ones, unless none or wholly outside the range.

    What the missing segments held lies between the neighbours' footers: after the last record
    of the one before, before the first of the one after (by time, give or take a clock step).
    """
    if after.number == before.number + 1:
        return None
    try:
        previous, following = listed_footer(before), listed_footer(after)
    except SegmentGoneError:
        previous = following = None
    previous = previous if previous is not None and previous.records else None
    following = following if following is not None and following.records else None
    first = None if previous is None else previous.last_seq + 1
    last = None if following is None else following.first_seq - 1
    outside = (
        (bounds.from_seq is not None and last is not None and last < bounds.from_seq)
        or (bounds.to_seq is not None and first is not None and first > bounds.to_seq)
        or (
            bounds.since_ns is not None
            and following is not None
            and following.first_time_ns < bounds.since_ns
        )
        or (
            bounds.until_ns is not None
            and previous is not None
            and previous.last_time_ns > bounds.until_ns
        )
    )
    return None if outside else Gap(before.number + 1, after.number - 1, first, last, MISSING)
