"""Snapshot output: YAML manifests, a JSON List, MeshSync's file format, and atomic writes."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from meshsync_samples import sample

from recorder.compact.snapshot import (
    extended_documents,
    iter_yaml,
    meshsync_snapshot_paths,
    render_json,
    render_meshsync,
    render_yaml,
    snapshot_meta,
)
from recorder.compact.state import Compactor, compact
from recorder.demo.simulator import Simulator
from recorder.fsutil import write_atomic
from recorder.journal.record import Message
from recorder.manifest import CLUSTER_ANNOTATION, envelope, to_meshsync
from recorder.meshsync import CORE_SUBJECT

CREATED = 1_741_950_000 * 10**9
TRICKY = {"bool": "true", "yes": "yes", "y": "y", "num": "1e3", "octal": "0755", "null": "null"}


def simulated_state(seed: int = 5) -> Compactor:
    sim = Simulator(seed, clusters=2, namespaces=2, apps_per_namespace=2, pods_per_app=2)
    state, _ = compact(sim.messages(1500))
    return state


def tricky_state() -> Compactor:
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "tricky", "namespace": "ns", "uid": "u", "resourceVersion": "1"},
        "data": TRICKY | {"file": "line one\nline two\n"},
    }
    payload = envelope(to_meshsync(manifest) | {"cluster_id": "c"}, "ADDED")
    return compact([Message(1, CREATED, CORE_SUBJECT, "", None, payload)])[0]


def render(state: Compactor, kind: str = "yaml", **filters: Any) -> bytes:
    objects = state.objects(**filters)
    meta = snapshot_meta(objects, state.stats(), journal="/journal", created_ns=CREATED)
    return render_yaml(objects, meta) if kind == "yaml" else render_json(objects, meta)


def test_yaml_documents_are_valid_manifests() -> None:
    """Every YAML document re-parses with apiVersion, kind, metadata.name and string maps."""
    state = simulated_state()
    documents = [d for d in yaml.safe_load_all(render(state)) if d is not None]
    assert len(documents) == len(state.objects()) > 20
    for document in documents:
        assert document["apiVersion"] and document["kind"] and document["metadata"]["name"]
        for key in ("labels", "annotations"):
            mapping = document["metadata"].get(key, {})
            assert all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items())
        assert CLUSTER_ANNOTATION in document["metadata"]["annotations"]
        assert not {"id", "model", "cluster_id", "pattern_resource"} & document.keys()


def test_yaml_is_ordered_and_byte_identical_for_the_same_state() -> None:
    """Documents follow cluster, namespace, kind, name, and two renders of one state match."""
    state = simulated_state()
    text = render(state)
    assert text == render(simulated_state())
    documents = [d for d in yaml.safe_load_all(text) if d is not None]
    order = [
        (
            d["metadata"]["annotations"][CLUSTER_ANNOTATION],
            d["metadata"].get("namespace", ""),
            d["kind"],
            d["metadata"]["name"],
        )
        for d in documents
    ]
    assert order == sorted(order)


def test_yaml_header_carries_the_snapshot_metadata() -> None:
    """The header comment names the journal, seq range, creation time, clusters and kind counts."""
    state = simulated_state()
    header = render(state).split(b"---\n", 1)[0].decode()
    stats = state.stats()
    assert "# journal: /journal" in header
    assert f"# first-seq: {stats.first_seq}" in header
    assert f"# last-seq: {stats.last_seq}" in header
    assert "# created: 2025-03-14T11:00:00.000Z" in header
    assert f"# clusters: {','.join(stats.clusters)}" in header
    assert f"Pod={stats.per_kind['Pod']}" in header


def test_strings_that_look_like_other_types_stay_strings() -> None:
    """Values such as "true", "y", "1e3" and "0755" read back as strings, multi-line text intact."""
    (document,) = [d for d in yaml.safe_load_all(render(tricky_state())) if d is not None]
    assert document["data"] == TRICKY | {"file": "line one\nline two\n"}
    text = render(tricky_state()).decode()
    for value in TRICKY.values():
        assert f"'{value}'" in text


def test_json_output_is_a_v1_list_with_metadata_annotations() -> None:
    """The JSON format is a v1 List whose items are the manifests and whose metadata is annotated."""
    state = simulated_state()
    document = orjson.loads(render(state, "json"))
    assert (document["apiVersion"], document["kind"]) == ("v1", "List")
    assert len(document["items"]) == len(state.objects())
    assert document["items"][0] == state.objects()[0].manifest()
    annotations = document["metadata"]["annotations"]
    assert annotations["meshery.io/snapshot-last-seq"] == str(state.stats().last_seq)
    empty = orjson.loads(render(state, "json", cluster="nope"))
    assert empty["items"] == []


def test_filters_limit_the_snapshot() -> None:
    """Cluster, kind and namespace filters leave only matching documents."""
    state = simulated_state()
    cluster = state.clusters()[0]
    documents = orjson.loads(render(state, "json", cluster=cluster, kinds={"Pod"}))["items"]
    assert documents and {d["kind"] for d in documents} == {"Pod"}
    assert {d["metadata"]["annotations"][CLUSTER_ANNOTATION] for d in documents} == {cluster}


def test_meshsync_format_sorts_keys_and_ends_each_document_with_a_separator() -> None:
    """MeshSync-format documents are the Object only, keys sorted at every level, each then `---`."""
    state = simulated_state()
    text = render_meshsync(state.objects())
    assert text.endswith(b"---\n")
    chunks = text.split(b"---\n")
    assert chunks[-1] == b"" and len(chunks) - 1 == len(state.objects())

    def sorted_everywhere(value: Any) -> bool:
        if isinstance(value, dict):
            return list(value) == sorted(value) and all(map(sorted_everywhere, value.values()))
        if isinstance(value, list):
            return all(map(sorted_everywhere, value))
        return True

    loaded = [yaml.safe_load(chunk) for chunk in chunks[:-1]]
    assert all(sorted_everywhere(document) for document in loaded)
    assert all(isinstance(d["metadata"].get("labels", []), list) for d in loaded)
    assert loaded[0] == state.objects()[0].meshsync_object()


def test_extended_documents_include_deletions() -> None:
    """The -extended file gets a document for every object event, DELETED ones too."""
    (document,) = extended_documents(sample("core-deleted-pod"), CORE_SUBJECT)
    assert document.endswith(b"---\n")
    loaded = yaml.safe_load(document.removesuffix(b"---\n"))
    assert loaded["metadata"]["deletionTimestamp"] == "2025-03-14T11:02:48Z"
    assert len(extended_documents(sample("store-dump-batch"), "meshery-server.meshsync.store")) == 2


def test_meshsync_file_names_pick_the_first_free_number(tmp_path: Path) -> None:
    """Names follow meshery-cluster-snapshot-YYYYMMDD-NN.yaml, skipping numbers already taken."""
    day = date(2025, 3, 14)
    main, extended = meshsync_snapshot_paths(tmp_path, day)
    assert (main.name, extended.name) == (
        "meshery-cluster-snapshot-20250314-00.yaml",
        "meshery-cluster-snapshot-20250314-00-extended.yaml",
    )
    main.write_text("")
    assert meshsync_snapshot_paths(tmp_path, day)[0].name.endswith("-01.yaml")


def test_atomic_write_leaves_the_whole_file_or_nothing(tmp_path: Path) -> None:
    """A finished write replaces the file; a failing one leaves neither file nor temporary."""
    target = tmp_path / "snapshot.yaml"
    state = simulated_state()
    meta = snapshot_meta(state.objects(), state.stats())
    written = write_atomic(target, iter_yaml(state.objects(), meta))
    assert target.read_bytes() == render_yaml(state.objects(), meta)
    assert written == target.stat().st_size

    def broken() -> Any:
        yield b"partial"
        raise RuntimeError("disk on fire")

    other = tmp_path / "other.yaml"
    with pytest.raises(RuntimeError):
        write_atomic(other, broken())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snapshot.yaml"]
