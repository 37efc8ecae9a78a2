"""Compaction: dedup rules, tombstones, ghosts, until, filters, checkpoints, and a reference model."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from meshsync_samples import sample, sample_names

from recorder.compact.model import SECOND_NS, CompactOptions
from recorder.compact.state import Compactor, compact
from recorder.errors import UsageError
from recorder.journal.record import Marker, MarkerType, Message, Record
from recorder.manifest import envelope, to_meshsync
from recorder.meshsync import CORE_SUBJECT, REQUEST_SUBJECT, STORE_SUBJECT

RESYNC = b'{"ObjectType":"","EventType":"","Request":{"Entity":"resync-discovery","Payload":null},"Object":null}'


def obj(cluster: str, uid: str, rv: str, *, name: str = "", kind: str = "Pod") -> dict[str, Any]:
    manifest = {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {"name": name or f"n-{uid}", "namespace": "ns", "uid": uid},
        "spec": {"rv": rv},
    }
    if rv:
        manifest["metadata"]["resourceVersion"] = rv
    result = to_meshsync(manifest)
    result["cluster_id"] = cluster
    return result


class Journal:
    """Builds records with increasing seq and a clock in seconds."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.now = 1_000 * SECOND_NS

    def add(self, payload: bytes, subject: str = CORE_SUBJECT, after: float = 0.1) -> Journal:
        self.now += int(after * SECOND_NS)
        seq = len(self.records) + 1
        self.records.append(Message(seq, self.now, subject, "", None, payload))
        return self

    def event(self, kind: str, cluster: str, uid: str, rv: str, **kw: Any) -> Journal:
        after = kw.pop("after", 0.1)
        return self.add(envelope(obj(cluster, uid, rv, **kw), kind), after=after)

    def dump(self, items: list[dict[str, Any]], after: float = 0.1) -> Journal:
        payload = orjson.dumps(
            {"ObjectType": "", "EventType": "", "Request": None, "Object": items}
        )
        return self.add(payload, STORE_SUBJECT, after)

    def marker(self, after: float) -> Journal:
        self.now += int(after * SECOND_NS)
        self.records.append(Marker(len(self.records) + 1, self.now, MarkerType.NOTE))
        return self


def live(compactor: Compactor) -> dict[tuple[str, str], str]:
    return {(o.cluster_id, o.uid): o.resource_version for o in compactor.objects()}


def test_samples_compact_to_the_expected_state() -> None:
    """All samples in journal order: the pod's DELETED wins over the later dump of its old state."""
    journal = Journal()
    for name in sample_names():
        subject = REQUEST_SUBJECT if name.startswith("request") else CORE_SUBJECT
        journal.add(sample(name), subject)
    state, stats = compact(journal.records)
    assert {o.kind for o in state.objects()} == {"Namespace", "Service", "ConfigMap", "Pod"}
    assert [o.name for o in state.objects(kinds=["pod"])] == ["my-app-7d8f5c9b-x7k2m"]
    assert (stats.messages, stats.deleted, stats.stale, stats.tombstones) == (11, 1, 1, 1)
    assert (stats.boundaries, stats.not_state, stats.undecodable) == (2, 3, 0)
    assert stats.per_kind == {"ConfigMap": 1, "Namespace": 1, "Pod": 1, "Service": 1}
    assert stats.clusters == ("5b1d3c6e-8f2a-4c71-9e0d-3a7b2f4c9d18", "k8s-cluster-01")


def test_last_arrival_wins_and_resource_version_is_only_compared_for_equality() -> None:
    """A lower-looking resourceVersion that arrives later still wins: versions are opaque."""
    journal = Journal().event("ADDED", "c", "u", "10").event("MODIFIED", "c", "u", "9")
    state, stats = compact(journal.records)
    assert live(state) == {("c", "u"): "9"}
    assert state.objects()[0].manifest()["spec"] == {"rv": "9"}
    assert stats.applied == 2


def test_equal_resource_version_is_a_no_op() -> None:
    """A re-list ADDED with the same uid and resourceVersion keeps the stored payload and seq."""
    journal = Journal().event("ADDED", "c", "u", "5").event("ADDED", "c", "u", "5")
    state, stats = compact(journal.records)
    assert stats.duplicates == 1
    assert state.objects()[0].seq == 1


def test_deleted_leaves_a_tombstone_that_blocks_later_events() -> None:
    """After DELETED, a late ADDED or dump sighting of the same uid never brings it back."""
    journal = Journal().event("ADDED", "c", "u", "1").event("DELETED", "c", "u", "2")
    journal.event("ADDED", "c", "u", "1").dump([obj("c", "u", "1")])
    state, stats = compact(journal.records)
    assert live(state) == {}
    assert (stats.deleted, stats.stale, stats.tombstones) == (1, 2, 1)


def test_clusters_are_kept_apart() -> None:
    """The same uid in two clusters is two objects; deleting one leaves the other."""
    journal = Journal().event("ADDED", "a", "u", "1").event("ADDED", "b", "u", "1")
    journal.event("DELETED", "a", "u", "2")
    state, _ = compact(journal.records)
    assert live(state) == {("b", "u"): "1"}


def test_objects_without_uid_are_keyed_by_name_and_reported() -> None:
    """Objects with an empty uid are keyed by apiVersion/kind/namespace/name and listed as issues."""
    journal = (
        Journal().event("ADDED", "c", "", "1", name="x").event("MODIFIED", "c", "", "2", name="x")
    )
    journal.event("ADDED", "c", "", "1", name="y")
    state, stats = compact(journal.records)
    assert sorted((o.name, o.resource_version) for o in state.objects()) == [("x", "2"), ("y", "1")]
    assert stats.no_uid == 3
    assert [issue.seq for issue in stats.issues] == [1, 2, 3]


def test_undecodable_payloads_are_counted_with_seq_and_subject_and_capped() -> None:
    """Every bad payload is counted; only the first max_issues are detailed."""
    journal = Journal()
    for _ in range(5):
        journal.add(b"garbage", "meshery.meshsync.core")
    journal.event("ADDED", "c", "u", "1")
    state, stats = compact(journal.records, CompactOptions(max_issues=3))
    assert stats.undecodable == stats.skipped == 5
    assert [(i.seq, i.subject) for i in stats.issues] == [
        (1, CORE_SUBJECT),
        (2, CORE_SUBJECT),
        (3, CORE_SUBJECT),
    ]
    assert "not JSON" in stats.issues[0].reason
    assert live(state) == {("c", "u"): "1"}


def test_until_seq_and_until_time_give_the_state_at_that_point() -> None:
    """--until stops before the first record past the given seq or time."""
    journal = (
        Journal().event("ADDED", "c", "u", "1", after=1).event("MODIFIED", "c", "u", "2", after=1)
    )
    journal.event("DELETED", "c", "u", "3", after=1)
    assert live(compact(journal.records, CompactOptions(until_seq=2))[0]) == {("c", "u"): "2"}
    first_time = journal.records[0].time_ns
    by_time = compact(journal.records, CompactOptions(until_ns=first_time))[0]
    assert live(by_time) == {("c", "u"): "1"}
    assert by_time.stats().last_seq == 1


def test_filters_and_order_apply_at_output() -> None:
    """objects() filters by cluster, kind and namespace and orders by cluster, namespace, kind, name."""
    journal = Journal()
    journal.add(envelope(obj("b", "1", "1", name="z")))
    journal.add(envelope(obj("a", "2", "1", name="y", kind="Service")))
    journal.add(envelope(obj("a", "3", "1", name="x")))
    state, _ = compact(journal.records)
    assert [(o.cluster_id, o.kind, o.name) for o in state.objects()] == [
        ("a", "Pod", "x"),
        ("a", "Service", "y"),
        ("b", "Pod", "z"),
    ]
    assert [o.name for o in state.objects(cluster="a", kinds={"service"})] == ["y"]
    assert state.objects(namespaces={"other"}) == []
    assert state.clusters() == ("a", "b")


def test_live_objects_keep_the_journal_payload_without_copying() -> None:
    """Memory grows with live objects: each keeps a reference to its last payload only."""
    journal = Journal()
    for version in range(50):
        journal.event("MODIFIED", "c", "u", str(version))
    state, _ = compact(journal.records)
    (only,) = state.objects()
    assert only.raw is journal.records[-1].payload  # type: ignore[union-attr]


def _relist_journal() -> Journal:
    journal = Journal()
    for uid in ("keep", "ghost", "other"):
        journal.event("ADDED", "c", uid, "1")
    journal.event("ADDED", "d", "elsewhere", "1")
    journal.add(RESYNC, REQUEST_SUBJECT, after=1)
    journal.event("ADDED", "c", "keep", "1", after=5)  # after MeshSync's 5 s debounce
    journal.event("MODIFIED", "c", "other", "2")
    return journal


def test_ghosts_are_pruned_after_a_relist_closed_by_an_idle_gap() -> None:
    """Objects of a re-listing cluster that the re-list did not mention are dropped as ghosts."""
    journal = _relist_journal().event("MODIFIED", "c", "keep", "2", after=11)
    state, stats = compact(journal.records, CompactOptions(prune_ghosts=True))
    assert set(live(state)) == {("c", "keep"), ("c", "other"), ("d", "elsewhere")}
    assert stats.ghosts_pruned == 1
    # without --prune-ghosts nothing is dropped
    assert len(compact(journal.records)[0].objects()) == 4


def test_ghost_pruning_waits_for_the_idle_gap() -> None:
    """An epoch still open at the end of the input prunes nothing; a marker's time can close it."""
    open_epoch = _relist_journal()
    state, _ = compact(open_epoch.records, CompactOptions(prune_ghosts=True))
    assert ("c", "ghost") in live(state)
    closed = _relist_journal().marker(after=20)
    assert ("c", "ghost") not in live(compact(closed.records, CompactOptions(prune_ghosts=True))[0])
    until = CompactOptions(prune_ghosts=True, until_ns=open_epoch.now + 30 * SECOND_NS)
    assert ("c", "ghost") not in live(compact(open_epoch.records, until)[0])


def test_ghosts_come_back_when_seen_again() -> None:
    """A pruned ghost has no tombstone, so a later event for it restores it."""
    journal = _relist_journal().event("MODIFIED", "c", "ghost", "7", after=11)
    state, _ = compact(journal.records, CompactOptions(prune_ghosts=True))
    assert live(state)[("c", "ghost")] == "7"


def _history_messages(history: list[tuple[Any, ...]]) -> list[Record]:
    journal = Journal()
    for step in history:
        if step[0] == "event":
            _, kind, cluster, uid, rv, after = step
            journal.event(kind, cluster, uid, rv, after=after)
        elif step[0] == "dump":
            journal.dump([obj(c, u, rv) for c, u, rv in step[1]], after=step[2])
        elif step[0] == "resync":
            journal.add(RESYNC, REQUEST_SUBJECT, after=step[1])
        else:
            journal.add(step[1], CORE_SUBJECT, after=0.1)
    return journal.records


_clusters = st.sampled_from(["c1", "c2"])
_uids = st.sampled_from(["u0", "u1", "u2", "u3", "u4"])
_rvs = st.sampled_from(["1", "2", "9", "10", "11"])
_gaps = st.sampled_from([0.01, 0.5, 3.0, 12.0])
_step = st.one_of(
    st.tuples(
        st.just("event"),
        st.sampled_from(["ADDED", "MODIFIED", "DELETED"]),
        _clusters,
        _uids,
        _rvs,
        _gaps,
    ),
    st.tuples(st.just("dump"), st.lists(st.tuples(_clusters, _uids, _rvs), max_size=5), _gaps),
    st.tuples(st.just("resync"), _gaps),
    st.tuples(st.just("garbage"), st.binary(max_size=30) | st.just(b'{"ObjectType":1}')),
)
_histories = st.lists(_step, max_size=40)


def reference(history: list[tuple[Any, ...]]) -> dict[tuple[str, str], str]:
    """The dedup rules in their plainest form (no ghost pruning)."""
    state: dict[tuple[str, str], str] = {}
    tombstones: set[tuple[str, str]] = set()
    sightings: list[tuple[str, str, str, str]] = []
    for step in history:
        if step[0] == "event":
            sightings = [step[1:5]]
        elif step[0] == "dump":
            sightings = [("ADDED", c, u, rv) for c, u, rv in step[1]]
        else:
            continue
        for kind, cluster, uid, rv in sightings:
            key = (cluster, uid)
            if key in tombstones:
                continue
            if kind == "DELETED":
                state.pop(key, None)
                tombstones.add(key)
            else:
                state[key] = rv
    return state


@settings(max_examples=300, deadline=None)
@given(_histories)
def test_compaction_matches_the_reference_model(history: list[tuple[Any, ...]]) -> None:
    """Random histories with duplicates, re-lists and garbage compact exactly like the model."""
    state, stats = compact(_history_messages(history))
    assert live(state) == reference(history)
    for live_object in state.objects():
        assert live_object.manifest()["spec"] == {"rv": live_object.resource_version}
    assert stats.undecodable == sum(1 for step in history if step[0] == "garbage")


@settings(max_examples=300, deadline=None)
@given(_histories, st.data(), st.booleans())
def test_checkpoint_resume_equals_a_full_compaction(
    history: list[tuple[Any, ...]], data: st.DataObject, prune: bool
) -> None:
    """Compacting in pieces through serialised checkpoints gives exactly the full run's result."""
    records = _history_messages(history)
    options = CompactOptions(prune_ghosts=prune)
    full, full_stats = compact(records, options)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(records)), max_size=3)))
    state: Compactor | None = None
    start = 0
    for cut in [*cuts, len(records)]:
        state, _ = compact(records[start:cut], options, state)
        state = Compactor.from_bytes(state.to_bytes(), options)
        start = cut
    assert state is not None
    assert state.objects() == full.objects()
    assert state.stats() == full_stats


def test_resumed_state_skips_records_it_already_covers() -> None:
    """Feeding a restored state from the start again does not double-count anything."""
    records = Journal().event("ADDED", "c", "u", "1").event("DELETED", "c", "u", "2").records
    state, stats = compact(records)
    _, again_stats = compact(records, state=Compactor.from_bytes(state.to_bytes()))
    assert again_stats == stats


def test_checkpoint_with_other_settings_or_garbage_is_refused() -> None:
    """A checkpoint made with other ghost settings, or not a checkpoint at all, is a UsageError."""
    data = Compactor(CompactOptions(prune_ghosts=True)).to_bytes()
    with pytest.raises(UsageError, match="ghost"):
        Compactor.from_bytes(data, CompactOptions())
    with pytest.raises(UsageError, match="not a compaction state"):
        Compactor.from_bytes(b"\x00garbage")
    restored = Compactor.from_bytes(data, replace(CompactOptions(), prune_ghosts=True))
    assert restored.stats().objects == 0
