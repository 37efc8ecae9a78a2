"""The cluster's state at two points of the journal, and what changed between them, in one pass.

A Compactor is fed up to the first point, its objects taken, then fed on to the second: the
journal is read once, however far apart the points are.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from recorder.compact.model import CompactOptions, LiveObject
from recorder.compact.state import Compactor
from recorder.fielddiff import FieldChange, field_changes
from recorder.journal.query import Query
from recorder.journal.reader import JournalReader
from recorder.journal.record import Record

_IGNORED: Final = frozenset({"metadata.resourceVersion"})
Key = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Point:
    """A point of the journal: a sequence number or a time (as `compact --until` takes)."""

    seq: int | None = None
    time_ns: int | None = None


@dataclass(frozen=True, slots=True)
class ObjectChange:
    before: LiveObject
    after: LiveObject
    changes: tuple[FieldChange, ...]


@dataclass(slots=True)
class StateDiff:
    added: list[LiveObject] = field(default_factory=list)
    deleted: list[LiveObject] = field(default_factory=list)
    changed: list[ObjectChange] = field(default_factory=list)
    objects_before: int = 0
    objects_after: int = 0

    @property
    def empty(self) -> bool:
        return not (self.added or self.deleted or self.changed)


def diff_states(
    directory: Path,
    start: Point,
    end: Point,
    *,
    kinds: Collection[str] | None = None,
    namespaces: Collection[str] | None = None,
    options: CompactOptions | None = None,
) -> StateDiff:
    """What changed between the state at `start` and the state at `end` (each as compact gives it)."""
    base = options or CompactOptions()
    compactor = Compactor(
        CompactOptions(
            until_seq=start.seq,
            until_ns=start.time_ns,
            prune_ghosts=base.prune_ghosts,
            idle_ns=base.idle_ns,
        )
    )
    reader = JournalReader(directory, query=Query(to_seq=end.seq), markers=True)
    records = (record for _position, record in reader)
    pending: list[Record] = []
    if not compactor.feed_many(records) and compactor.stopped_by is not None:
        # Read past `start` and not applied: the first record of the rest.
        pending.append(compactor.stopped_by)
    if start.time_ns is not None:
        compactor.close_idle_epoch(start.time_ns)
    before = _keyed(compactor.objects(None, kinds, namespaces))
    compactor.extend_until(end.seq, end.time_ns)
    if compactor.feed_many(pending):
        compactor.feed_many(records)
    if end.time_ns is not None:
        compactor.close_idle_epoch(end.time_ns)
    after = _keyed(compactor.objects(None, kinds, namespaces))
    return _compare(before, after)


def _keyed(objects: list[LiveObject]) -> dict[Key, LiveObject]:
    # An object without a uid is keyed by its name, as the Compactor keys it.
    return {
        (o.cluster_id, o.uid)
        if o.uid
        else (o.cluster_id, "", o.api_version, o.kind, o.namespace, o.name): o
        for o in objects
    }


def _compare(before: dict[Key, LiveObject], after: dict[Key, LiveObject]) -> StateDiff:
    result = StateDiff(objects_before=len(before), objects_after=len(after))
    for key, new in after.items():
        old = before.get(key)
        if old is None:
            result.added.append(new)
        elif old.resource_version != new.resource_version or old.raw != new.raw:
            changes = field_changes(old.manifest(), new.manifest(), _IGNORED)
            result.changed.append(ObjectChange(old, new, tuple(changes)))
    result.deleted = [old for key, old in before.items() if key not in after]
    return result


def object_json(obj: LiveObject) -> dict[str, Any]:
    return {
        "cluster": obj.cluster_id,
        "uid": obj.uid,
        "kind": obj.kind,
        "namespace": obj.namespace,
        "name": obj.name,
        "resource_version": obj.resource_version,
    }


def diff_json(diff: StateDiff) -> dict[str, Any]:
    """The `-o json` document: `added`, `deleted` and `changed` lists."""
    return {
        "added": [object_json(obj) for obj in diff.added],
        "deleted": [object_json(obj) for obj in diff.deleted],
        "changed": [
            {
                **object_json(change.after),
                "from_resource_version": change.before.resource_version,
                "changes": [item.as_json() for item in change.changes],
            }
            for change in diff.changed
        ],
        "objects_before": diff.objects_before,
        "objects_after": diff.objects_after,
    }
