"""The per-journal index object: archived segments with their footers, so readers pick segments
by sequence or time without opening them. Pure: bytes in, values out."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from recorder.errors import ArchiveError
from recorder.journal.query import Query
from recorder.journal.record import Footer

FORMAT: Final = 1


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

    @property
    def footer(self) -> Footer:
        """The footer it was archived with (no message count in an index that kept none)."""
        return Footer(
            self.first_seq,
            self.last_seq,
            self.first_time_ns,
            self.last_time_ns,
            self.records,
            self.messages or 0,
        )


@dataclass(slots=True)
class ArchiveIndex:
    """Every archived segment of one journal, by segment number."""

    journal: str
    entries: dict[int, IndexEntry] = field(default_factory=dict)

    def add(self, entry: IndexEntry) -> None:
        self.entries[entry.number] = entry

    def ordered(self) -> list[IndexEntry]:
        return [self.entries[number] for number in sorted(self.entries)]

    def select(self, query: Query | None = None) -> list[IndexEntry]:
        """Segments in write order that may hold records `query` wants (a segment without
        records never does), judged from their footers as a local read judges its segments."""
        wanted = query or Query()
        return [entry for entry in self.ordered() if not wanted.excludes_segment(entry.footer)]

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
