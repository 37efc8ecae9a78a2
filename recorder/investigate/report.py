"""`report`: what a self-contained HTML report shows, gathered from the journal.

Gaps, re-lists and totals come from `stats`; the per-kind timeline, the per-kind tables and the
most-changed objects from one more pass that decodes each message again. Rendering is
`report_html`'s job.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from recorder.investigate.stats import JournalStats, journal_stats
from recorder.journal.query import Query
from recorder.journal.reader import JournalReader
from recorder.journal.record import Message
from recorder.meshsync import decode, events_of

BUCKETS: Final = 120
TOP_OBJECTS: Final = 10
KEPT_VERSIONS: Final = 50  # per object: the report shows the latest of a busy object's history

ObjectKey = tuple[str, str]  # cluster, uid


@dataclass(slots=True)
class ObjectTrail:
    cluster: str
    uid: str
    kind: str
    namespace: str
    name: str
    events: int = 0
    versions: deque[tuple[int, int, str, str]] = field(
        default_factory=lambda: deque(maxlen=KEPT_VERSIONS)
    )  # (seq, time_ns, event type, resourceVersion)


@dataclass(slots=True)
class KindRow:
    kind: str
    events: int = 0
    types: Counter[str] = field(default_factory=Counter)
    objects: set[ObjectKey] = field(default_factory=set)


@dataclass(slots=True)
class ReportData:
    stats: JournalStats
    start_ns: int
    bucket_ns: int
    series: dict[str, list[int]]  # kind -> events per bucket
    kinds: list[KindRow]
    top: list[ObjectTrail]


def gather_report(directory: Path, query: Query | None = None) -> ReportData:
    """Everything the report shows for the records `query` admits."""
    stats = journal_stats(directory, query)
    start = stats.first_ns or 0
    bucket_ns = max(1, -(-max(stats.covered_ns, 1) // BUCKETS))
    series: dict[str, list[int]] = {}
    kinds: dict[str, KindRow] = {}
    trails: dict[ObjectKey, ObjectTrail] = {}
    for _position, record in JournalReader(directory, query=query):
        if type(record) is not Message:
            continue
        # Clamped at both ends: after a wall clock stepped back, a record can be stamped before
        # the first one (a negative index would count it elsewhere, or past the list's start).
        index = min(BUCKETS - 1, max(0, (record.time_ns - start) // bucket_ns))
        for event in events_of(decode(record.payload, record.subject)):
            counts = series.get(event.kind)
            if counts is None:
                counts = series[event.kind] = [0] * BUCKETS
            counts[index] += 1
            row = kinds.get(event.kind) or kinds.setdefault(event.kind, KindRow(event.kind))
            key = (event.cluster_id, event.uid or event.name)
            row.events += 1
            row.types[event.type] += 1
            row.objects.add(key)
            trail = trails.get(key)
            if trail is None:
                trail = trails[key] = ObjectTrail(
                    event.cluster_id, event.uid, event.kind, event.namespace, event.name
                )
            trail.events += 1
            trail.versions.append((record.seq, record.time_ns, event.type, event.resource_version))
    top = sorted(trails.values(), key=lambda t: (-t.events, t.kind, t.namespace, t.name))
    return ReportData(
        stats,
        start,
        bucket_ns,
        dict(sorted(series.items())),
        sorted(kinds.values(), key=lambda row: (-row.events, row.kind)),
        top[:TOP_OBJECTS],
    )
