"""Records a read cannot return: segments missing from the numbering, or removed while it ran."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Literal

from recorder.errors import SegmentGoneError
from recorder.journal.segment import SegmentFile, summarize

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

    from_seq: int | None
    to_seq: int | None
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
            gap = numbering_gap(previous, segment, self.from_seq, self.to_seq)
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


def listing_gaps(
    segments: list[SegmentFile], from_seq: int | None, to_seq: int | None
) -> list[Gap]:
    """The numbering gaps of a listing that may hold records in the sequence range."""
    found = (numbering_gap(a, b, from_seq, to_seq) for a, b in itertools.pairwise(segments))
    return [gap for gap in found if gap is not None]


def numbering_gap(
    before: SegmentFile, after: SegmentFile, from_seq: int | None, to_seq: int | None
) -> Gap | None:
    """The segments missing between two listed ones, unless none or wholly outside the range."""
    if after.number == before.number + 1:
        return None
    first, last = _missing_seqs(before, after)
    if (from_seq is not None and last is not None and last < from_seq) or (
        to_seq is not None and first is not None and first > to_seq
    ):
        return None
    return Gap(before.number + 1, after.number - 1, first, last, MISSING)


def _missing_seqs(before: SegmentFile, after: SegmentFile) -> tuple[int | None, int | None]:
    """The sequence numbers between two segments, from their footers where they have one."""
    first = last = None
    try:
        footer = summarize(before).footer
        if footer is not None and footer.records:
            first = footer.last_seq + 1
        footer = summarize(after).footer
        if footer is not None and footer.records:
            last = footer.first_seq - 1
    except SegmentGoneError:
        pass
    return first, last
