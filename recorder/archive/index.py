"""The per-journal index object: archived segments with their footers, so readers pick segments
by sequence or time without opening them. Pure: bytes in, values out."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from recorder.errors import ArchiveError

FORMAT: Final = 1


@dataclass(frozen=True, slots=True)
class Bounds:
    """Inclusive time and sequence bounds a reader wants; None is open."""

    since_ns: int | None = None
    until_ns: int | None = None
    from_seq: int | None = None
    to_seq: int | None = None


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One archived segment: its object, checksum and the ranges its footer states."""

    number: int
    name: str  # the file name it had in the journal (`00000007.seg` or `.seg.zst`)
    size: int
    md5: str
    first_seq: int
    last_seq: int
    first_time_ns: int
    last_time_ns: int
    records: int
    messages: int | None = None  # None in an index written before it kept message counts

    def overlaps(self, bounds: Bounds) -> bool:
        """Whether any record may fall in the bounds; a segment without records never does."""
        if not self.records:
            return False
        if bounds.since_ns is not None and self.last_time_ns < bounds.since_ns:
            return False
        if bounds.until_ns is not None and self.first_time_ns > bounds.until_ns:
            return False
        if bounds.from_seq is not None and self.last_seq < bounds.from_seq:
            return False
        return bounds.to_seq is None or self.first_seq <= bounds.to_seq


@dataclass(slots=True)
class ArchiveIndex:
    """Every archived segment of one journal, by segment number."""

    journal: str
    entries: dict[int, IndexEntry] = field(default_factory=dict)

    def add(self, entry: IndexEntry) -> None:
        self.entries[entry.number] = entry

    def ordered(self) -> list[IndexEntry]:
        return [self.entries[number] for number in sorted(self.entries)]

    def select(self, bounds: Bounds | None = None) -> list[IndexEntry]:
        """Segments in write order that may hold records within `bounds`."""
        wanted = bounds or Bounds()
        return [entry for entry in self.ordered() if entry.overlaps(wanted)]

    def encode(self) -> bytes:
        body = {
            "format": FORMAT,
            "journal": self.journal,
            "segments": [asdict(entry) for entry in self.ordered()],
        }
        return json.dumps(body, separators=(",", ":")).encode()


def decode_index(data: bytes, location: str) -> ArchiveIndex:
    """Parse an index object; anything malformed is an ArchiveError naming the object."""
    try:
        body = json.loads(data)
        if not isinstance(body, dict) or body.get("format") != FORMAT:
            raise ValueError(f"format is not {FORMAT}")
        index = ArchiveIndex(str(body["journal"]))
        for raw in body["segments"]:
            index.add(_entry(raw))
    except (ValueError, KeyError, TypeError) as exc:
        raise ArchiveError(location, "bad_index", f"unreadable archive index: {exc}") from None
    return index


def _entry(raw: Any) -> IndexEntry:
    if not isinstance(raw, dict):
        raise TypeError("segment entry is not a mapping")
    entry = IndexEntry(**raw)
    checked = [entry.number, entry.size, entry.last_seq]
    if entry.messages is not None:
        checked.append(entry.messages)
    if not all(isinstance(value, int) for value in checked):
        raise TypeError(f"segment entry {raw!r} has non-integer fields")
    return entry
