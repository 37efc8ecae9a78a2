"""`stats`: what a journal holds, in one pass: counts, rates, gaps, re-lists and time covered.

Counts come from decoding each message once, as compaction does; gaps come from the capture's
own markers (disconnects, drops, stops) and from the segment numbering (segments deleted or lost).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from recorder.journal.directory import journal_segments
from recorder.journal.query import Query
from recorder.journal.reader import JournalReader
from recorder.journal.record import Marker, MarkerType, Message
from recorder.journal.segment import find_gaps
from recorder.journal.source import listed_footer
from recorder.meshsync import Boundary, DumpBatch, NotState, ObjectEvent, decode

MINUTE_NS: Final = 60 * 1_000_000_000


@dataclass(frozen=True, slots=True)
class Gap:
    """A stretch the journal does not cover: `length_ns` None when it never closed."""

    kind: str  # disconnected, dropped, stopped, unclean-stop, missing-segments
    start_ns: int | None
    length_ns: int | None
    seq: int | None = None  # the record that reports it
    count: int | None = None  # messages dropped, or segments missing
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Relist:
    seq: int
    time_ns: int
    entity: str


@dataclass(slots=True)
class JournalStats:
    messages: int = 0
    events: int = 0
    markers: int = 0
    undecodable: int = 0
    not_state: int = 0
    subjects: Counter[str] = field(default_factory=Counter)
    clusters: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    event_types: Counter[str] = field(default_factory=Counter)
    per_minute: Counter[int] = field(default_factory=Counter)  # minute index -> messages
    first_ns: int | None = None
    last_ns: int | None = None
    gaps: list[Gap] = field(default_factory=list)
    relists: list[Relist] = field(default_factory=list)

    @property
    def covered_ns(self) -> int:
        if self.first_ns is None or self.last_ns is None:
            return 0
        return self.last_ns - self.first_ns

    @property
    def peak_per_minute(self) -> int:
        return max(self.per_minute.values(), default=0)

    @property
    def peak_minute_ns(self) -> int | None:
        if not self.per_minute:
            return None
        return max(self.per_minute.items(), key=lambda item: item[1])[0] * MINUTE_NS

    @property
    def mean_per_minute(self) -> float:
        """Messages per minute over the minutes from the first to the last (at least one)."""
        if not self.per_minute:
            return 0.0
        minutes = max(self.per_minute) - min(self.per_minute) + 1
        return self.messages / minutes

    def as_json(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "events": self.events,
            "markers": self.markers,
            "undecodable": self.undecodable,
            "not_state": self.not_state,
            "subjects": dict(self.subjects.most_common()),
            "clusters": dict(self.clusters.most_common()),
            "kinds": dict(self.kinds.most_common()),
            "event_types": dict(self.event_types.most_common()),
            "rate_per_minute": {
                "peak": self.peak_per_minute,
                "peak_minute_ns": self.peak_minute_ns,
                "mean": round(self.mean_per_minute, 3),
            },
            "first_ns": self.first_ns,
            "last_ns": self.last_ns,
            "covered_ns": self.covered_ns,
            "gaps": [
                {
                    "kind": gap.kind,
                    "start_ns": gap.start_ns,
                    "length_ns": gap.length_ns,
                    "seq": gap.seq,
                    "count": gap.count,
                    "detail": gap.detail,
                }
                for gap in self.gaps
            ],
            "relists": [
                {"seq": r.seq, "time_ns": r.time_ns, "entity": r.entity} for r in self.relists
            ],
        }


class _Gaps:
    """Turns the capture's markers into gaps: a gap opens at a marker and closes at its answer."""

    def __init__(self, found: list[Gap]) -> None:
        self.found = found
        self.last_ns: int | None = None  # the last record before the marker in hand
        self._disconnected: Marker | None = None
        self._stopped: tuple[Marker, int | None] | None = None

    def marker(self, marker: Marker) -> None:
        kind = marker.type
        if kind is MarkerType.DISCONNECTED:
            self._disconnected = self._disconnected or marker
        elif kind is MarkerType.RECONNECTED and self._disconnected is not None:
            self._close_disconnect(marker.time_ns)
        elif kind is MarkerType.DROPPED:
            count = marker.fields.get("count")
            start = self.last_ns if self.last_ns is not None else marker.time_ns
            self.found.append(
                Gap(
                    "dropped",
                    start,
                    marker.time_ns - start,
                    marker.seq,
                    count if isinstance(count, int) else None,
                )
            )
        elif kind is MarkerType.STOPPED:
            self._stopped = (marker, self.last_ns)
        elif kind is MarkerType.STARTED:
            self._close_disconnect(marker.time_ns)
            self._close_stop(marker.time_ns)
        self.last_ns = marker.time_ns

    def _close_disconnect(self, end_ns: int | None) -> None:
        opened = self._disconnected
        if opened is not None:
            length = None if end_ns is None else end_ns - opened.time_ns
            self.found.append(Gap("disconnected", opened.time_ns, length, opened.seq))
            self._disconnected = None

    def _close_stop(self, end_ns: int | None) -> None:
        if self._stopped is None:
            return
        marker, before = self._stopped
        clean = marker.fields.get("clean") is not False
        # A crash is noticed at the restart: the gap starts at the last record written before it.
        start = marker.time_ns if clean or before is None else before
        length = None if end_ns is None else end_ns - start
        kind = "stopped" if clean else "unclean-stop"
        self.found.append(Gap(kind, start, length, marker.seq))
        self._stopped = None

    def finish(self) -> None:
        self._close_disconnect(None)
        self._stopped = None  # the journal ends stopped: the recorder is down, no gap inside


def journal_stats(directory: Path, query: Query | None = None) -> JournalStats:
    """Count, rate and find the gaps of the records `query` admits, in one pass."""
    stats = JournalStats()
    reader = JournalReader(directory, query=query, markers=True)
    gaps = _Gaps(stats.gaps)
    times: dict[int, tuple[int, int]] = {}  # segment number -> (first, last) record time
    for batch in reader.batches():
        records = batch.records
        first, last = records[0].time_ns, records[-1].time_ns
        span = times.get(batch.segment)
        times[batch.segment] = (span[0], last) if span else (first, last)
        for record in records:
            if type(record) is Message:
                _count_message(stats, record)
                gaps.last_ns = record.time_ns
            else:
                stats.markers += 1
                gaps.marker(record)  # type: ignore[arg-type]
            if stats.first_ns is None:
                stats.first_ns = record.time_ns
            stats.last_ns = record.time_ns
    gaps.finish()
    stats.gaps.extend(_missing_segments(directory, times))
    stats.gaps.sort(key=lambda gap: (gap.start_ns is None, gap.start_ns or 0))
    return stats


def _count_message(stats: JournalStats, message: Message) -> None:
    stats.messages += 1
    stats.subjects[message.subject] += 1
    stats.per_minute[message.time_ns // MINUTE_NS] += 1
    decoded = decode(message.payload, message.subject)
    if type(decoded) is ObjectEvent:
        stats.events += 1
        stats.clusters[decoded.cluster_id] += 1
        stats.kinds[decoded.kind] += 1
        stats.event_types[decoded.type] += 1
    elif type(decoded) is DumpBatch:
        for event in decoded.events:
            stats.events += 1
            stats.clusters[event.cluster_id] += 1
            stats.kinds[event.kind] += 1
            stats.event_types[event.type] += 1
    elif type(decoded) is Boundary:
        stats.relists.append(Relist(message.seq, message.time_ns, decoded.entity))
    elif type(decoded) is NotState:
        stats.not_state += 1
    else:
        stats.undecodable += 1


def _missing_segments(directory: Path, times: dict[int, tuple[int, int]]) -> list[Gap]:
    """Gaps in the segment numbering, timed by the records (or footers) on either side."""
    segments = {segment.number: segment for segment in journal_segments(directory)}
    found = []
    for low, high in find_gaps(list(segments.values())):
        if times and low - 1 not in times and high + 1 not in times:
            continue  # outside what the query read
        before = _span(segments[low - 1], times)
        after = _span(segments[high + 1], times)
        start = before[1] if before else None
        length = after[0] - start if after and start is not None else None
        segs = f"segments {low}-{high}" if high > low else f"segment {low}"
        found.append(Gap("missing-segments", start, length, None, high - low + 1, segs))
    return found


def _span(segment: Any, times: dict[int, tuple[int, int]]) -> tuple[int, int] | None:
    if segment.number in times:
        return times[segment.number]
    footer = listed_footer(segment)
    if footer is None or footer.records == 0:
        return None
    return footer.first_time_ns, footer.last_time_ns
