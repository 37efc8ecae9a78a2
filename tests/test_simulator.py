"""The simulated MeshSync speaks the real wire format, is deterministic, and knows the truth."""

from __future__ import annotations

import time
from collections import Counter
from itertools import islice

import orjson

from recorder.compact.model import CompactOptions
from recorder.compact.state import compact
from recorder.demo.simulator import Simulator
from recorder.meshsync import (
    CORE_SUBJECT,
    REQUEST_SUBJECT,
    STORE_SUBJECT,
    Boundary,
    DumpBatch,
    ObjectEvent,
    decode,
)

# MeshSync's wire order (pkg/model/model.go field order).
OBJECT_KEYS = [
    *("id", "apiVersion", "kind", "model", "metadata", "spec", "status", "cluster_id"),
    *("pattern_resource", "component_metadata", "immutable", "data", "binaryData"),
    *("stringData", "type"),
]
META_KEYS = [
    *("id", "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion"),
    *("generation", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"),
    *("labels", "annotations", "ownerReferences", "finalizers", "clusterName", "managedFields"),
    "cluster_id",
]


def small(seed: int = 7, **kw: object) -> Simulator:
    options: dict[str, object] = {
        "namespaces": 2,
        "apps_per_namespace": 3,
        "pods_per_app": 2,
        "resync_every": 300,
        "store_every": 450,
    }
    return Simulator(seed, **(options | kw))  # type: ignore[arg-type]


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not() -> None:
    """Traffic is a pure function of the seed and the options."""
    first = list(small(1).stream(2000))
    assert first == list(small(1).stream(2000))
    assert first != list(small(2).stream(2000))


def test_core_messages_use_the_exact_envelope_and_object_key_order() -> None:
    """Core payloads have MeshSync's key order, Go's escaping and no newlines."""
    for subject, payload in small().stream(1500):
        assert b"\n" not in payload and b"<" not in payload and b"&" not in payload
        if subject != CORE_SUBJECT:
            continue
        doc = orjson.loads(payload)
        assert list(doc) == ["ObjectType", "EventType", "Request", "Object"]
        assert doc["ObjectType"] == "meshsync-data" and doc["Request"] is None
        keys = list(doc["Object"])
        assert keys == [key for key in OBJECT_KEYS if key in keys]
        assert {"id", "apiVersion", "kind", "model", "metadata", "cluster_id"} <= set(keys)
        meta = list(doc["Object"]["metadata"])
        assert meta == [key for key in META_KEYS if key in meta]
        assert meta[0] == "id" and meta[-1] == "cluster_id" and "uid" in meta
        assert isinstance(doc["Object"].get("spec", {}).get("attribute", ""), str)


def test_cluster_id_is_the_kube_system_namespace_uid() -> None:
    """Each cluster's id is the uid of its kube-system Namespace, as MeshSync computes it."""
    sim = small(clusters=2)
    namespaces = {}
    for _, payload in sim.stream(200):
        event = decode(payload)
        if type(event) is ObjectEvent and event.kind == "Namespace":
            namespaces[(event.cluster_id, event.name)] = event.uid
    for cluster_id in sim.cluster_ids:
        assert namespaces[(cluster_id, "kube-system")] == cluster_id


def test_sizes_match_what_meshsync_really_sends() -> None:
    """Pods are about 4 KB, Deployments several KB, small objects about 0.6-2 KB."""
    sizes: dict[str, list[int]] = {}
    for _, payload in small().stream(300):
        event = decode(payload)
        if type(event) is ObjectEvent:
            sizes.setdefault(event.kind, []).append(len(payload))
    average = {kind: sum(v) / len(v) for kind, v in sizes.items()}
    assert 3000 <= average["Pod"] <= 8000
    assert 5000 <= average["Deployment"] <= 20000
    assert 800 <= average["Service"] <= 2500
    assert {"Namespace", "ReplicaSet", "ConfigMap", "Secret"} <= average.keys()


def test_stream_mixes_churn_relists_and_dumps() -> None:
    """The stream carries ADDED/MODIFIED/DELETED, resync requests with re-lists, and small dumps."""
    sim = small()
    kinds: Counter[str] = Counter()
    previous = None
    for message in sim.events(3000):
        decoded = decode(message.payload, message.subject)
        if type(decoded) is ObjectEvent:
            kinds[decoded.type] += 1
        elif isinstance(decoded, Boundary):
            kinds[decoded.entity] += 1
            assert message.subject == REQUEST_SUBJECT
        elif isinstance(decoded, DumpBatch):
            kinds["dump"] += 1
            assert message.subject == STORE_SUBJECT
            assert 1 <= len(decoded.events) <= 5
        else:
            raise AssertionError(decoded)
        if previous is not None:
            assert message.time_ns > previous
        previous = message.time_ns
    assert kinds["ADDED"] and kinds["MODIFIED"] and kinds["DELETED"] and kinds["dump"]
    assert kinds["resync-discovery"] and kinds["informer-store"]


def test_modifications_get_new_increasing_resource_versions() -> None:
    """Every MODIFIED of an object carries a resourceVersion it never had before."""
    seen: dict[str, set[str]] = {}
    for _, payload in small().stream(2000):
        event = decode(payload)
        if type(event) is ObjectEvent and event.type == "MODIFIED":
            assert event.resource_version not in seen.setdefault(event.uid, set())
            seen[event.uid].add(event.resource_version)


def test_compaction_of_the_stream_equals_the_ground_truth() -> None:
    """Compacting the simulated journal gives exactly the simulator's live set, content included."""
    sim = small(clusters=2)
    state, stats = compact(sim.messages(5000))
    assert {(o.cluster_id, o.uid): o.resource_version for o in state.objects()} == sim.truth()
    live = sim.live_objects()
    for live_object in islice(state.objects(), 50):
        assert live_object.as_meshsync() == live[(live_object.cluster_id, live_object.uid)]
    assert stats.undecodable == 0


def test_ghost_pruning_removes_silent_deletions_after_a_relist() -> None:
    """Deletions never published survive plain compaction but are pruned after a re-list."""
    sim = small(ghost_rate=0.3)
    records = list(sim.messages(4000))
    truth = set(sim.truth())
    assert sim.ghosts
    plain, _ = compact(records)
    assert {(o.cluster_id, o.uid) for o in plain.objects()} == truth | sim.ghosts
    pruned, stats = compact(records, CompactOptions(prune_ghosts=True))
    assert {(o.cluster_id, o.uid) for o in pruned.objects()} == truth | sim.unpruned_ghosts()
    assert stats.ghosts_pruned == len(sim.ghosts - sim.unpruned_ghosts())


def test_generation_is_fast() -> None:
    """Tens of thousands of realistic events take well under a few seconds."""
    sim = Simulator(3, namespaces=10, apps_per_namespace=10, pods_per_app=3)
    started = time.perf_counter()
    total = sum(len(payload) for _, payload in sim.stream(50_000))
    assert total > 50_000 * 1000
    assert time.perf_counter() - started < 10
