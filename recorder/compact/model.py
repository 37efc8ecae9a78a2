"""The values compaction takes and gives: options, statistics, issues and live objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from recorder.manifest import to_manifest, to_meshsync
from recorder.meshsync import DOCS, load_object

SECOND_NS: Final = 1_000_000_000


@dataclass(frozen=True, slots=True)
class CompactOptions:
    """How to compact: where to stop and whether to prune ghosts after a re-list."""

    until_seq: int | None = None
    until_ns: int | None = None
    prune_ghosts: bool = False
    idle_ns: int = 10 * SECOND_NS
    max_issues: int = 100


@dataclass(frozen=True, slots=True)
class Issue:
    """A record that could not be used as it was (undecodable, or an object without a uid)."""

    seq: int
    subject: str
    reason: str


@dataclass(frozen=True, slots=True)
class CompactStats:
    """What a compaction read and what it kept."""

    messages: int
    object_events: int
    applied: int
    duplicates: int
    stale: int
    deleted: int
    ghosts_pruned: int
    boundaries: int
    not_state: int
    undecodable: int
    no_uid: int
    objects: int
    tombstones: int
    first_seq: int | None
    last_seq: int | None
    first_time_ns: int | None
    last_time_ns: int | None
    clusters: tuple[str, ...]
    per_kind: dict[str, int] = field(default_factory=dict)
    issues: tuple[Issue, ...] = ()

    @property
    def skipped(self) -> int:
        """Messages or dump items that contributed nothing because they could not be decoded."""
        return self.undecodable


@dataclass(frozen=True, slots=True)
class LiveObject:
    """One object of the compacted state, rendered on demand from its last payload."""

    cluster_id: str
    uid: str
    api_version: str
    kind: str
    namespace: str
    name: str
    resource_version: str
    seq: int
    raw: bytes
    wrapper: str

    def meshsync_object(self) -> dict[str, Any]:
        """The object as the last event carried it (MeshSync form, or the docs shape)."""
        return load_object(self.raw, self.wrapper)

    def as_meshsync(self) -> dict[str, Any]:
        """The object in MeshSync's KubernetesResource form, converting the docs shape if need be."""
        if self.wrapper == DOCS:
            return to_meshsync(self.manifest())
        return self.meshsync_object()

    def manifest(self) -> dict[str, Any]:
        """The object as a Kubernetes manifest (see recorder.manifest)."""
        result: dict[str, Any] = to_manifest(
            self.meshsync_object(), self.cluster_id, meshsync_form=self.wrapper != DOCS
        )
        return result


class Entry:
    """Mutable per-object slot: updated in place on the hot path."""

    __slots__ = (
        "api_version",
        "kind",
        "name",
        "namespace",
        "raw",
        "rv",
        "seen",
        "seq",
        "uid",
        "wrapper",
    )

    def __init__(
        self,
        uid: str,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        rv: str,
        raw: bytes,
        wrapper: str,
        seq: int,
        seen: int,
    ) -> None:
        self.uid = uid
        self.api_version = api_version
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.rv = rv
        self.raw = raw
        self.wrapper = wrapper
        self.seq = seq
        self.seen = seen


def entry_row(e: Entry) -> list[Any]:
    """An entry's fields in `Entry.__init__` order, for checkpoints."""
    return [
        e.uid,
        e.api_version,
        e.kind,
        e.namespace,
        e.name,
        e.rv,
        e.raw,
        e.wrapper,
        e.seq,
        e.seen,
    ]
