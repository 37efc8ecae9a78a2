"""MeshSync objects become valid Kubernetes manifests, and manifests go back to MeshSync's form."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from meshsync_samples import sample

from recorder.manifest import (
    CLUSTER_ANNOTATION,
    added_envelope,
    envelope,
    go_json,
    parse_json_text,
    to_manifest,
    to_meshsync,
    unescape_value,
)
from recorder.meshsync import DOCS, ObjectEvent, decode

CLUSTER = "5b1d3c6e-8f2a-4c71-9e0d-3a7b2f4c9d18"
MESHSYNC_ONLY = {"id", "model", "cluster_id", "pattern_resource", "component_metadata"}


def manifest_of(payload: bytes) -> dict[str, Any]:
    event = decode(payload)
    assert type(event) is ObjectEvent
    result: dict[str, Any] = to_manifest(
        event.obj, event.cluster_id, meshsync_form=event.wrapper != DOCS
    )
    return result


def assert_kubernetes_shaped(manifest: dict[str, Any]) -> None:
    assert not MESHSYNC_ONLY & manifest.keys()
    assert not {"id", "cluster_id"} & manifest["metadata"].keys()
    for key in ("labels", "annotations"):
        mapping = manifest["metadata"].get(key, {})
        assert isinstance(mapping, dict)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items())


def test_added_pod_becomes_a_manifest_with_maps_and_structures() -> None:
    """The pod's labels become a map, spec/status/ownerReferences structures, MeshSync fields go."""
    manifest = manifest_of(sample("core-added-pod"))
    assert_kubernetes_shaped(manifest)
    assert list(manifest)[:3] == ["apiVersion", "kind", "metadata"]
    meta = manifest["metadata"]
    assert meta["labels"] == {"app": "nginx", "pod-template-hash": "7c5ddbdf54"}
    assert meta["annotations"] == {CLUSTER_ANNOTATION: CLUSTER}
    assert meta["ownerReferences"][0]["kind"] == "ReplicaSet"
    assert meta["ownerReferences"][0]["controller"] is True
    assert meta["uid"] == "a3c9e5f1-2b4d-4e6f-8a1c-7d9e0f2b3c4d"
    assert meta["resourceVersion"] == "48213"
    assert manifest["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert manifest["spec"]["tolerations"][0]["tolerationSeconds"] == 300
    assert manifest["status"]["phase"] == "Running"
    assert manifest["status"]["podIPs"] == [{"ip": "10.244.1.17"}]


def test_service_annotation_is_unescaped_once_more() -> None:
    """last-applied-configuration arrives still escaped and comes out as the exact JSON text."""
    manifest = manifest_of(sample("core-added-service"))
    assert_kubernetes_shaped(manifest)
    applied = manifest["metadata"]["annotations"][
        "kubectl.kubernetes.io/last-applied-configuration"
    ]
    assert applied.endswith("}\n") and "\\" not in applied
    assert orjson.loads(applied)["spec"] == {
        "ports": [{"port": 80}],
        "selector": {"app": "nginx"},
    }
    assert manifest["spec"]["clusterIP"] == "10.96.12.34"
    assert manifest["status"] == {"loadBalancer": {}}


def test_deleted_pod_keeps_its_deletion_metadata() -> None:
    """The final state of a deleted pod keeps deletionTimestamp and a zero grace period."""
    meta = manifest_of(sample("core-deleted-pod"))["metadata"]
    assert meta["deletionTimestamp"] == "2025-03-14T11:02:48Z"
    assert meta["deletionGracePeriodSeconds"] == 0


def test_configmap_data_and_immutable_become_structures() -> None:
    """ConfigMap data is parsed from JSON text (escapes resolved) and immutable becomes a bool."""
    manifest = manifest_of(sample("core-modified-configmap"))
    assert_kubernetes_shaped(manifest)
    assert manifest["data"] == {"LOG_LEVEL": "debug", "greeting": "café <b>&</b>"}
    assert manifest["immutable"] is True
    assert "spec" not in manifest and "status" not in manifest


def test_docs_shape_pod_is_kept_and_tagged_with_its_cluster() -> None:
    """The docs shape keeps its maps and structures and gains the cluster annotation."""
    manifest = manifest_of(sample("docs-format-added-pod"))
    assert manifest["metadata"]["labels"] == {"app": "my-app", "version": "v1"}
    assert manifest["metadata"]["annotations"] == {CLUSTER_ANNOTATION: "k8s-cluster-01"}
    assert manifest["spec"] == {"containers": [{"name": "app", "image": "myapp:v1.0.0"}]}
    assert manifest["status"] == {"phase": "Running"}


def test_dump_items_normalise_like_core_objects() -> None:
    """Objects inside an informer-store reply normalise to the same manifests as core events."""
    batch = orjson.loads(sample("store-dump-batch"))["Object"]
    namespace = to_manifest(batch[1], batch[1]["cluster_id"])
    assert namespace["spec"] == {"finalizers": ["kubernetes"]}
    assert namespace["metadata"]["labels"] == {"kubernetes.io/metadata.name": "default"}
    assert to_manifest(batch[0], CLUSTER) == manifest_of(sample("core-added-pod"))


def test_unparsable_nested_json_is_kept_as_raw_text() -> None:
    """A spec.attribute or ownerReferences that is not JSON survives as its raw text."""
    obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"uid": "u", "name": "p", "ownerReferences": "[oops"},
        "spec": {"id": "", "attribute": "{not json"},
    }
    manifest = to_manifest(obj)
    assert manifest["spec"] == "{not json"
    assert manifest["metadata"]["ownerReferences"] == "[oops"
    assert parse_json_text(7) == 7


def test_annotation_unescape_falls_back_to_the_raw_value() -> None:
    """A value that is not a valid JSON string body is kept as it arrived."""
    assert unescape_value('a \\"quoted\\" word\\n') == 'a "quoted" word\n'
    assert unescape_value("broken \\x escape") == "broken \\x escape"
    assert unescape_value("plain") == "plain"


def test_go_json_escapes_html_characters_like_go() -> None:
    """<, >, & and the JS line separators are escaped the way Go's json.Marshal does."""
    assert go_json({"b": "<a>&\u2028", "a": 1}, sort_keys=True) == (
        b'{"a":1,"b":"\\u003ca\\u003e\\u0026\\u2028"}'
    )


@pytest.mark.parametrize("name", ["core-added-pod", "core-added-service", "core-deleted-pod"])
def test_reverse_reproduces_the_wire_bytes_of_the_samples(name: str) -> None:
    """Normalising a sample and converting it back gives MeshSync's exact bytes."""
    payload = sample(name)
    event_type = orjson.loads(payload)["EventType"]
    assert envelope(to_meshsync(manifest_of(payload)), event_type) == payload.rstrip(b"\n")


_label_value = st.from_regex(r"\A([A-Za-z0-9]([-A-Za-z0-9_.]{0,20}[A-Za-z0-9])?)?\Z")
_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=20)
_scalar = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _text
_structure = st.recursive(
    _scalar,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_text, children, max_size=3),
    max_leaves=10,
)


@st.composite
def manifests(draw: st.DrawFn) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": draw(_label_value.filter(bool)),
        "uid": draw(st.uuids()).hex,
        "resourceVersion": str(draw(st.integers(1, 10**9))),
    }
    if draw(st.booleans()):
        meta["namespace"] = draw(_label_value.filter(bool))
    if draw(st.booleans()):
        meta["generation"] = draw(st.integers(1, 100))
    labels = draw(st.dictionaries(_label_value.filter(bool), _label_value, max_size=3))
    if labels:
        meta["labels"] = labels
    annotations = draw(st.dictionaries(_label_value.filter(bool), _text, max_size=3))
    cluster = draw(st.sampled_from(["", CLUSTER]))
    if cluster:
        annotations[CLUSTER_ANNOTATION] = cluster
    if annotations:
        meta["annotations"] = annotations
    if draw(st.booleans()):
        meta["ownerReferences"] = [{"kind": "ReplicaSet", "name": draw(_text), "controller": True}]
    if draw(st.booleans()):
        meta["finalizers"] = draw(st.lists(_text, max_size=2))
    manifest: dict[str, Any] = {
        "apiVersion": draw(st.sampled_from(["v1", "apps/v1"])),
        "kind": draw(st.sampled_from(["Pod", "ConfigMap", "Secret", "Deployment"])),
        "metadata": meta,
    }
    for part in ("spec", "status"):
        if draw(st.booleans()):
            manifest[part] = draw(st.dictionaries(_text, _structure, max_size=4))
    if draw(st.booleans()):
        manifest["data"] = draw(st.dictionaries(_text, _text, max_size=3))
    if draw(st.booleans()):
        manifest["immutable"] = True
    if draw(st.booleans()):
        manifest["type"] = "Opaque"
    return manifest


def _sorted(value: Any) -> Any:
    """Key order is not part of a manifest's meaning: compare with every map sorted."""
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


@settings(max_examples=200)
@given(manifests())
def test_manifest_round_trips_through_an_added_message(manifest: dict[str, Any]) -> None:
    """Encoding a manifest as MeshSync's ADDED message and decoding it gives the manifest back."""
    payload = added_envelope(manifest)
    assert b"\n" not in payload and b"<" not in payload and b"&" not in payload
    assert _sorted(manifest_of(payload)) == _sorted(manifest)
