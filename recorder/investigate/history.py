"""`history`: every version of one object, in order, with what changed between versions.

An object is a uid; a name can be deleted and re-created, so a name's history is a list of
lives, one per uid, in the order they appeared. The payload is searched for the uid or name as
bytes before it is decoded: almost every message is about another object, and a substring test
costs a fraction of a JSON parse.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

from recorder.fielddiff import FieldChange, field_changes
from recorder.journal.query import Query
from recorder.journal.reader import JournalReader
from recorder.journal.record import Message
from recorder.manifest import to_manifest
from recorder.meshsync import DELETED, DOCS, ObjectEvent, decode, events_of
from recorder.timeparse import format_time

# Changes with every version by definition: a diff line for it says nothing.
_IGNORED: Final = frozenset({"metadata.resourceVersion"})

Render = Callable[[Any], str]


@dataclass(frozen=True, slots=True)
class ObjectSelector:
    """KIND/NAME (with an optional namespace and cluster), or a uid."""

    kind: str = ""
    name: str = ""
    namespace: str | None = None
    cluster: str | None = None
    uid: str | None = None

    def needle(self) -> bytes:
        """Bytes every payload about this object holds (its uid or name, as JSON writes it)."""
        text = self.uid if self.uid else self.name
        return orjson.dumps(text)

    def admits(self, event: ObjectEvent) -> bool:
        if self.cluster is not None and not event.cluster_id.startswith(self.cluster):
            return False
        if self.uid:
            return event.uid == self.uid
        return (
            event.name == self.name
            and event.kind.lower() == self.kind.lower()
            and (self.namespace is None or event.namespace == self.namespace)
        )

    def describe(self) -> str:
        if self.uid:
            return f"uid {self.uid}"
        where = f" in namespace {self.namespace}" if self.namespace is not None else ""
        return f"{self.kind}/{self.name}{where}"


@dataclass(slots=True)
class Version:
    seq: int
    time_ns: int
    event_type: str
    resource_version: str
    manifest: Any
    rendered: str
    changes: list[FieldChange] = field(default_factory=list)
    diff: str = ""

    def as_json(self, uid: str) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": format_time(self.time_ns),
            "event_type": self.event_type,
            "resource_version": self.resource_version,
            "uid": uid,
            "changes": [change.as_json() for change in self.changes],
        }


@dataclass(slots=True)
class Life:
    """One uid's versions, from its first sighting to its deletion (if recorded)."""

    cluster: str
    uid: str
    kind: str
    namespace: str
    name: str
    versions: list[Version] = field(default_factory=list)
    sightings: int = 0  # events seen, re-list repeats of an unchanged version included

    @property
    def deleted(self) -> bool:
        return bool(self.versions) and self.versions[-1].event_type == DELETED


def object_history(
    directory: Path, selector: ObjectSelector, render: Render, query: Query | None = None
) -> list[Life]:
    """The lives of the selected object in order of appearance; `render` turns a manifest into
    the text the unified diffs are taken of (the CLI hands in compact's YAML)."""
    lives: dict[tuple[str, str], Life] = {}
    needle = selector.needle()
    for _position, record in JournalReader(directory, query=query):
        if type(record) is not Message or needle not in record.payload:
            continue
        for event in events_of(decode(record.payload, record.subject)):
            if selector.admits(event):
                _add(lives, event, record, render)
    return list(lives.values())


def _add(
    lives: dict[tuple[str, str], Life], event: ObjectEvent, record: Message, render: Render
) -> None:
    key = (event.cluster_id, event.uid)
    life = lives.get(key)
    if life is None:
        life = lives[key] = Life(
            event.cluster_id, event.uid, event.kind, event.namespace, event.name
        )
    life.sightings += 1
    manifest = to_manifest(event.obj, event.cluster_id, meshsync_form=event.wrapper != DOCS)
    previous = life.versions[-1] if life.versions else None
    rv = event.resource_version
    if previous is not None and event.type != DELETED and rv and rv == previous.resource_version:
        return  # the same version seen again (a re-list or dump)
    rendered = render(manifest)
    version = Version(record.seq, record.time_ns, event.type, rv, manifest, rendered)
    if previous is not None:
        version.changes = field_changes(previous.manifest, manifest, _IGNORED)
        version.diff = "".join(
            difflib.unified_diff(
                previous.rendered.splitlines(keepends=True),
                rendered.splitlines(keepends=True),
                fromfile=f"resourceVersion {previous.resource_version or '-'}",
                tofile=f"resourceVersion {rv or '-'}",
            )
        )
    life.versions.append(version)


def history_json(selector: ObjectSelector, lives: list[Life]) -> dict[str, Any]:
    """The `-o json` document: the object, its lives, and one `versions` entry per version."""
    first = lives[0] if lives else None
    return {
        "kind": first.kind if first else selector.kind,
        "namespace": first.namespace if first else (selector.namespace or ""),
        "name": first.name if first else selector.name,
        "lives": [
            {
                "cluster": life.cluster,
                "uid": life.uid,
                "versions": len(life.versions),
                "sightings": life.sightings,
                "deleted": life.deleted,
            }
            for life in lives
        ],
        "versions": [
            {**version.as_json(life.uid), "cluster": life.cluster}
            for life in lives
            for version in life.versions
        ],
    }
