"""Deduplicate a stream of journal records into the live set of Kubernetes objects.

Rules (the issue's contract, WIRE.md's last section):

- Key: (cluster id, `metadata.uid`); last arrival wins. An object without a uid is keyed by
  (cluster, apiVersion, kind, namespace, name), counted in `no_uid` and listed in the issues.
- DELETED removes the object and leaves a tombstone for its uid: Kubernetes never reuses uids, so
  any later event for it is stale and ignored (`stale`). Names can be reused, so objects keyed by
  name get no tombstone.
- An event whose resourceVersion equals the live one is a duplicate (a re-list or dump) and changes
  nothing. resourceVersion is opaque: it is compared for equality only, and an empty one never
  counts as equal.
- Ghost pruning (`CompactOptions.prune_ghosts`): a `resync-discovery` or `informer-store` request
  opens a re-list epoch (a second boundary while one is open extends it). Every ADDED, MODIFIED or
  dump sighting during the epoch marks its object as seen. The epoch closes at the first record
  (message or marker) that arrives `idle_ns` or more after the last re-list traffic (the boundary,
  an ADDED event or a dump reply), by receive time. On closing, for each cluster that had at least
  one sighting in the epoch, live objects not seen during it are dropped as ghosts (deleted while
  MeshSync or the recorder was down). Ghosts get no tombstone, so a later event brings them back.
  Limits: the idle gap must exceed MeshSync's 5 s resync debounce and any lull inside a re-list;
  core NATS is at-most-once, so a message lost from the re-list prunes a live object until its next
  event; a re-list without a recorded boundary (a MeshSync restart) opens no epoch; a cluster that
  sent nothing during the epoch (for example, another MeshSync in the same queue group took the
  request) is left alone; an epoch still open when the input ends prunes nothing unless
  `close_idle_epoch` is given a time `idle_ns` past the last re-list traffic (`compact` does so
  with `until_ns`).

Memory grows with live objects and tombstones, not events: each live object keeps only its last
payload (the journal's bytes; a dump item is re-encoded on its own) and a few strings.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from sys import intern
from typing import Final

import msgpack
import orjson

from recorder.compact.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, parse_checkpoint
from recorder.compact.model import (
    CompactOptions,
    CompactStats,
    Entry,
    Issue,
    LiveObject,
    entry_row,
)
from recorder.journal.record import Message, Record
from recorder.meshsync import (
    ADDED,
    DELETED,
    Boundary,
    Decoded,
    DumpBatch,
    NotState,
    ObjectEvent,
    Undecodable,
    decode,
)

_NEVER: Final = sys.maxsize
_COUNTERS: Final = (
    "messages",
    "object_events",
    "applied",
    "duplicates",
    "stale",
    "deleted",
    "ghosts_pruned",
    "boundaries",
    "not_state",
    "undecodable",
    "no_uid",
)


class Compactor:
    """The dedup state machine: feed it records in journal order, then read `objects()`."""

    def __init__(self, options: CompactOptions | None = None) -> None:
        self.options = options or CompactOptions()
        self._until_seq = _NEVER if self.options.until_seq is None else self.options.until_seq
        self._until_ns = _NEVER if self.options.until_ns is None else self.options.until_ns
        self._live: dict[str, dict[str, Entry]] = {}
        self._tombs: dict[str, set[str]] = {}
        self._issues: list[Issue] = []
        self.gaps: list[str] = []  # missing records accepted into this state, described
        self.stopped_by: Record | None = None  # the record past `until` a feed last stopped at
        self._resume_seq = -1
        self.first_seq: int | None = None
        self.last_seq: int | None = None
        self.first_time_ns: int | None = None
        self.last_time_ns: int | None = None
        self.messages = self.object_events = self.applied = self.duplicates = 0
        self.stale = self.deleted = self.ghosts_pruned = self.boundaries = 0
        self.not_state = self.undecodable = self.no_uid = 0
        self._epoch = 0
        self._epoch_open = False
        self._epoch_active_ns = 0
        self._epoch_clusters: set[str] = set()

    # -- feeding ---------------------------------------------------------------------------

    def extend_until(self, until_seq: int | None, until_ns: int | None) -> None:
        """Move the stopping point on (None: no bound), so one pass can stop at several points."""
        self._until_seq = _NEVER if until_seq is None else until_seq
        self._until_ns = _NEVER if until_ns is None else until_ns

    def feed(self, record: Record) -> bool:
        """Apply one record; False once a record lies past `until` (the caller should stop)."""
        return self.feed_many((record,))

    def feed_many(
        self, records: Iterable[Record], observe: Callable[[Decoded, Message], None] | None = None
    ) -> bool:
        """Apply records in journal order; False if it stopped at a record past `until`.

        `observe` sees each message it applies with its decoding, so a caller that needs the
        decoded events too (the MeshSync `-extended` file) never decodes a payload twice.
        This is the benchmarked loop, so the per-record state lives in locals and is written back
        once at the end.
        """
        until_seq, until_ns, resume = self._until_seq, self._until_ns, self._resume_seq
        idle_ns = self.options.idle_ns
        apply = self._apply
        messages = 0
        last_seq, last_time = self.last_seq, self.last_time_ns
        try:
            for record in records:
                seq = record.seq
                now = record.time_ns
                if seq > until_seq or now > until_ns:
                    self.stopped_by = record
                    return False
                if seq <= resume:  # already covered by the checkpoint this state came from
                    continue
                if self._epoch_open and now - self._epoch_active_ns >= idle_ns:
                    self._close_epoch()
                if type(record) is not Message:  # a marker only moves the clock on
                    continue
                if self.first_seq is None:
                    self.first_seq = seq
                    self.first_time_ns = now
                last_seq = seq
                last_time = now
                messages += 1
                decoded = decode(record.payload, record.subject)
                if observe is not None:
                    observe(decoded, record)
                if type(decoded) is ObjectEvent:
                    apply(decoded, record.payload, seq, record.subject)
                    if self._epoch_open and decoded.type == ADDED:
                        self._epoch_active_ns = now
                else:
                    self._other(decoded, seq, now, record.subject)
        finally:
            self.messages += messages
            self.last_seq, self.last_time_ns = last_seq, last_time
        return True

    def _other(self, decoded: Decoded, seq: int, now: int, subject: str) -> None:
        if type(decoded) is DumpBatch:
            for event in decoded.events:
                self._apply(event, None, seq, subject)
            for reason in decoded.errors:
                self._report(seq, subject, reason)
            if self._epoch_open:
                self._epoch_active_ns = now
        elif type(decoded) is Boundary:
            self.boundaries += 1
            if self.options.prune_ghosts:
                if not self._epoch_open:
                    self._epoch += 1
                    self._epoch_open = True
                self._epoch_active_ns = now
        elif type(decoded) is NotState:
            self.not_state += 1
        elif type(decoded) is Undecodable:
            self._report(seq, subject, decoded.reason)

    def _apply(self, event: ObjectEvent, payload: bytes | None, seq: int, subject: str) -> None:
        # The order of the lookups matters for speed: most events update a live object, which
        # cannot be tombstoned, so the large tombstone set is consulted only for unknown keys.
        self.object_events += 1
        cluster = event.cluster_id
        live = self._live.get(cluster)
        if live is None:
            live = self._live[cluster] = {}
        uid = event.uid
        key = uid or self._name_key(event, seq, subject)
        entry = live.get(key)
        if entry is None and uid:
            tombs = self._tombs.get(cluster)
            if tombs is not None and uid in tombs:
                self.stale += 1
                return
        if event.type == DELETED:
            self.deleted += 1
            if entry is not None:
                del live[key]
            if uid:
                self._tombs.setdefault(cluster, set()).add(uid)
            return
        if self._epoch_open:
            self._epoch_clusters.add(cluster)
        rv = event.resource_version
        if entry is not None and rv and entry.rv == rv:
            self.duplicates += 1
            entry.seen = self._epoch
            return
        # The journal's bytes are kept as they are; a dump item is re-encoded alone so that one
        # surviving item does not pin its whole five-object batch in memory.
        if payload is None:
            try:
                payload = orjson.dumps(event.obj)
            except orjson.JSONEncodeError as exc:  # nested deeper than orjson writes (254)
                self._report(seq, subject, f"dump item {uid or key!r} cannot be kept: {exc}")
                return
        self.applied += 1
        if entry is None:
            live[key] = self._new_entry(event, payload, seq)
            return
        # Storing only what changed avoids touching (and freeing) cold strings.
        if entry.kind != event.kind or entry.api_version != event.api_version:
            entry.kind = intern(event.kind)
            entry.api_version = intern(event.api_version)
        entry.rv = rv
        entry.raw = payload
        entry.wrapper = event.wrapper
        entry.seq = seq
        entry.seen = self._epoch

    def _name_key(self, event: ObjectEvent, seq: int, subject: str) -> str:
        """The key of an object without a uid: its identity by name, noted as an issue."""
        self.no_uid += 1
        self._note(seq, subject, f"no metadata.uid: {event.kind} {event.namespace}/{event.name}")
        return "\x00".join((event.api_version, event.kind, event.namespace, event.name))

    def _new_entry(self, event: ObjectEvent, raw: bytes, seq: int) -> Entry:
        # Interning shares the few distinct kinds, versions and namespaces among all entries.
        return Entry(
            event.uid,
            intern(event.api_version),
            intern(event.kind),
            intern(event.namespace),
            event.name,
            event.resource_version,
            raw,
            event.wrapper,
            seq,
            self._epoch,
        )

    def _report(self, seq: int, subject: str, reason: str) -> None:
        self.undecodable += 1
        self._note(seq, subject, reason)

    def _note(self, seq: int, subject: str, reason: str) -> None:
        if len(self._issues) < self.options.max_issues:
            self._issues.append(Issue(seq, subject, reason))

    def _close_epoch(self) -> None:
        for cluster in self._epoch_clusters:
            live = self._live.get(cluster, {})
            ghosts = [key for key, entry in live.items() if entry.seen != self._epoch]
            for key in ghosts:
                del live[key]
            self.ghosts_pruned += len(ghosts)
        self._epoch_open = False
        self._epoch_clusters = set()

    def close_idle_epoch(self, now_ns: int) -> bool:
        """Close an open re-list epoch if `now_ns` is past its idle gap; True when it closed."""
        if self._epoch_open and now_ns - self._epoch_active_ns >= self.options.idle_ns:
            self._close_epoch()
            return True
        return False

    # -- reading ---------------------------------------------------------------------------

    def clusters(self) -> tuple[str, ...]:
        """Cluster ids that have live objects, sorted."""
        return tuple(sorted(cluster for cluster, live in self._live.items() if live))

    def objects(
        self,
        cluster: str | None = None,
        kinds: Collection[str] | None = None,
        namespaces: Collection[str] | None = None,
    ) -> list[LiveObject]:
        """Live objects ordered by cluster, namespace, kind, name (kinds match case-insensitively)."""
        wanted_kinds = {kind.lower() for kind in kinds} if kinds else None
        result = []
        for cluster_id, live in self._live.items():
            if cluster is not None and cluster_id != cluster:
                continue
            for entry in live.values():
                if wanted_kinds is not None and entry.kind.lower() not in wanted_kinds:
                    continue
                if namespaces is not None and entry.namespace not in namespaces:
                    continue
                result.append(
                    LiveObject(
                        cluster_id,
                        entry.uid,
                        entry.api_version,
                        entry.kind,
                        entry.namespace,
                        entry.name,
                        entry.rv,
                        entry.seq,
                        entry.raw,
                        entry.wrapper,
                    )
                )
        result.sort(key=lambda o: (o.cluster_id, o.namespace, o.kind, o.name, o.uid))
        return result

    def stats(self) -> CompactStats:
        """Counters so far, with live objects per kind."""
        per_kind = Counter(entry.kind for live in self._live.values() for entry in live.values())
        return CompactStats(
            **{name: getattr(self, name) for name in _COUNTERS},
            objects=sum(len(live) for live in self._live.values()),
            tombstones=sum(len(tombs) for tombs in self._tombs.values()),
            first_seq=self.first_seq,
            last_seq=self.last_seq,
            first_time_ns=self.first_time_ns,
            last_time_ns=self.last_time_ns,
            clusters=self.clusters(),
            per_kind=dict(sorted(per_kind.items())),
            issues=tuple(self._issues),
        )

    # -- checkpoints -----------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The whole state as msgpack, for `--checkpoint`; `from_bytes` continues from it."""
        state = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "prune_ghosts": self.options.prune_ghosts,
            "idle_ns": self.options.idle_ns,
            "counters": [getattr(self, name) for name in _COUNTERS],
            "range": [self.first_seq, self.last_seq, self.first_time_ns, self.last_time_ns],
            "issues": [[i.seq, i.subject, i.reason] for i in self._issues],
            "gaps": self.gaps,
            "epoch": [
                self._epoch,
                self._epoch_open,
                self._epoch_active_ns,
                sorted(self._epoch_clusters),
            ],
            "live": {
                cluster: [[key, *entry_row(entry)] for key, entry in live.items()]
                for cluster, live in self._live.items()
            },
            "tombs": {cluster: sorted(tombs) for cluster, tombs in self._tombs.items()},
        }
        packed: bytes = msgpack.packb(state, use_bin_type=True)
        return packed

    @classmethod
    def from_bytes(cls, data: bytes, options: CompactOptions | None = None) -> Compactor:
        """Restore a state saved by `to_bytes`; records up to its last seq will be skipped."""
        options = options or CompactOptions()
        state = parse_checkpoint(data, options)
        self = cls(options)
        for name, value in zip(_COUNTERS, state["counters"], strict=True):
            setattr(self, name, value)
        self.first_seq, self.last_seq, self.first_time_ns, self.last_time_ns = state["range"]
        self._resume_seq = -1 if self.last_seq is None else self.last_seq
        self._issues = [Issue(*item) for item in state["issues"]]
        self.gaps = list(state.get("gaps", ()))  # absent from checkpoints written before gaps
        epoch, is_open, active_ns, epoch_clusters = state["epoch"]
        self._epoch, self._epoch_open, self._epoch_active_ns = epoch, is_open, active_ns
        self._epoch_clusters = set(epoch_clusters)
        for cluster, rows in state["live"].items():
            self._live[cluster] = {row[0]: Entry(*row[1:]) for row in rows}
        self._tombs = {cluster: set(uids) for cluster, uids in state["tombs"].items()}
        return self


def compact(
    records: Iterable[Record],
    options: CompactOptions | None = None,
    state: Compactor | None = None,
) -> tuple[Compactor, CompactStats]:
    """Feed `records` (journal order) into `state` or a fresh Compactor, stopping at `until`."""
    compactor = state or Compactor(options)
    compactor.feed_many(records)
    if compactor.options.until_ns is not None:
        compactor.close_idle_epoch(compactor.options.until_ns)
    return compactor, compactor.stats()
