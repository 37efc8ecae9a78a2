"""Journal records as decoded object events, the object filters every investigation shares,
and the one-line and JSON views of an event.

A message can carry several events (an informer-store reply holds up to five objects), so
records become `Item`s: one per object event, one per marker, one per other message.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from recorder.journal.record import Marker, Message, Record
from recorder.meshsync import Boundary, DumpBatch, NotState, ObjectEvent, Undecodable, decode
from recorder.timeparse import format_time

SHORT_CLUSTER: Final = 8


class EventItem(NamedTuple):
    """One object event and the message that carried it."""

    seq: int
    time_ns: int
    subject: str
    event: ObjectEvent


class OtherItem(NamedTuple):
    """A message that carries no object event: a re-list request, a non-state reply, garbage."""

    seq: int
    time_ns: int
    subject: str
    what: str  # "relist", "not-state" or "undecodable"
    detail: str


Item = EventItem | OtherItem | Marker


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which object events to keep; empty means any. Kinds match case-insensitively, clusters by
    prefix (so the short id printed by `tail` works), the rest exactly."""

    kinds: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    clusters: tuple[str, ...] = ()
    event_types: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return bool(
            self.kinds or self.namespaces or self.names or self.clusters or self.event_types
        )

    def admits(self, event: ObjectEvent) -> bool:
        if self.kinds and event.kind.lower() not in {kind.lower() for kind in self.kinds}:
            return False
        if self.namespaces and event.namespace not in self.namespaces:
            return False
        if self.names and event.name not in self.names:
            return False
        if self.clusters and not any(event.cluster_id.startswith(c) for c in self.clusters):
            return False
        return not (self.event_types and event.type not in {t.upper() for t in self.event_types})


def items_of(record: Record, event_filter: EventFilter) -> list[Item]:
    """The items of one record that the filter keeps: markers always (a gap matters whatever
    one watches; the reader yields them only when asked), other messages without a filter."""
    if isinstance(record, Marker):
        return [record]
    decoded = decode(record.payload, record.subject)
    if type(decoded) is ObjectEvent:
        events: tuple[ObjectEvent, ...] = (decoded,)
    elif type(decoded) is DumpBatch:
        events = decoded.events
    else:
        if event_filter.active:
            return []
        return [_other(record, decoded)]
    return [
        EventItem(record.seq, record.time_ns, record.subject, event)
        for event in events
        if event_filter.admits(event)
    ]


def _other(record: Message, decoded: Any) -> OtherItem:
    if isinstance(decoded, Boundary):
        return OtherItem(record.seq, record.time_ns, record.subject, "relist", decoded.entity)
    if isinstance(decoded, NotState | Undecodable):
        what = "not-state" if isinstance(decoded, NotState) else "undecodable"
        return OtherItem(record.seq, record.time_ns, record.subject, what, decoded.reason)
    return OtherItem(record.seq, record.time_ns, record.subject, "undecodable", "no events")


def iter_items(records: Iterable[Record], event_filter: EventFilter) -> Iterator[Item]:
    for record in records:
        yield from items_of(record, event_filter)


def item_line(item: Item) -> str:
    """One line: time, cluster (short), EventType, kind, namespace/name, resourceVersion."""
    if isinstance(item, Marker):
        facts = " ".join(f"{key}={value}" for key, value in sorted(item.fields.items()))
        return f"{format_time(item.time_ns)}  -- {str(item.type).upper()} {facts}".rstrip()
    if isinstance(item, OtherItem):
        return f"{format_time(item.time_ns)}  -- {item.what} {item.detail} ({item.subject})"
    event = item.event
    where = f"{event.namespace}/{event.name}" if event.namespace else event.name
    cluster = event.cluster_id[:SHORT_CLUSTER] or "-"
    return (
        f"{format_time(item.time_ns)}  {cluster:<{SHORT_CLUSTER}}  {event.type:<8}  "
        f"{event.kind}  {where}  rv={event.resource_version or '-'}"
    )


def item_row(item: Item) -> list[str]:
    """The columns of `-o table`: time, cluster, event, kind, namespace/name, resourceVersion."""
    stamp = format_time(item.time_ns)
    if isinstance(item, Marker):
        return [stamp, "", str(item.type).upper(), "(marker)", _facts(item.fields), ""]
    if isinstance(item, OtherItem):
        return [stamp, "", item.what.upper(), f"({item.subject})", item.detail, ""]
    event = item.event
    where = f"{event.namespace}/{event.name}" if event.namespace else event.name
    return [
        stamp,
        event.cluster_id[:SHORT_CLUSTER],
        event.type,
        event.kind,
        where,
        event.resource_version,
    ]


TABLE_HEADER: Final = ["time", "cluster", "event", "kind", "namespace/name", "resourceVersion"]


def _facts(fields: dict[str, Any]) -> str:
    return " ".join(f"{key}={value}" for key, value in sorted(fields.items()))


def item_json(item: Item) -> dict[str, Any]:
    """The decoded item as one JSON-able dict."""
    if isinstance(item, Marker):
        return {
            "seq": item.seq,
            "time": format_time(item.time_ns),
            "marker": str(item.type),
            "fields": item.fields,
        }
    if isinstance(item, OtherItem):
        return {
            "seq": item.seq,
            "time": format_time(item.time_ns),
            "subject": item.subject,
            item.what: item.detail,
        }
    event = item.event
    return {
        "seq": item.seq,
        "time": format_time(item.time_ns),
        "subject": item.subject,
        "cluster": event.cluster_id,
        "event_type": event.type,
        "kind": event.kind,
        "namespace": event.namespace,
        "name": event.name,
        "uid": event.uid,
        "resource_version": event.resource_version,
        "from_dump": event.from_dump,
        "object": event.obj,
    }
