"""Decoding MeshSync payloads: every shipped sample, the edge shapes, and never an exception."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from meshsync_samples import sample, sample_names

from recorder.meshsync import (
    BARE,
    CORE_SUBJECT,
    DOCS,
    ENVELOPE,
    INFORMER_STORE,
    REQUEST_SUBJECT,
    RESYNC_DISCOVERY,
    STORE_SUBJECT,
    Boundary,
    DumpBatch,
    NotState,
    ObjectEvent,
    Undecodable,
    decode,
    events_of,
    load_object,
    request_payload,
)

CLUSTER = "5b1d3c6e-8f2a-4c71-9e0d-3a7b2f4c9d18"
POD_UID = "a3c9e5f1-2b4d-4e6f-8a1c-7d9e0f2b3c4d"


def test_every_sample_is_covered() -> None:
    """The tests below name every sample file, so a new sample cannot go untested."""
    names = set(sample_names())
    assert names == {
        "core-added-pod",
        "core-added-service",
        "core-deleted-pod",
        "core-modified-configmap",
        "docs-format-added-pod",
        "meshsync-meta-reply",
        "request-informer-store",
        "request-log-stream",
        "request-meshsync-meta",
        "request-resync-discovery",
        "store-dump-batch",
    }


def test_added_pod_decodes_to_its_identity_with_nested_json_left_as_text() -> None:
    """An ADDED pod yields its dedup key and metadata, and spec.attribute stays an unparsed string."""
    event = decode(sample("core-added-pod"), CORE_SUBJECT)
    assert type(event) is ObjectEvent
    assert event.type == "ADDED"
    assert (event.cluster_id, event.uid) == (CLUSTER, POD_UID)
    assert (event.api_version, event.kind) == ("v1", "Pod")
    assert (event.namespace, event.name) == ("default", "nginx-7c5ddbdf54-x8b2q")
    assert event.resource_version == "48213"
    assert event.wrapper == ENVELOPE and not event.from_dump
    assert isinstance(event.obj["spec"]["attribute"], str)


def test_service_with_escaped_annotation_decodes() -> None:
    """The Service sample decodes as ADDED with its own uid and resourceVersion."""
    event = decode(sample("core-added-service"), CORE_SUBJECT)
    assert type(event) is ObjectEvent
    assert (event.type, event.kind, event.uid) == (
        "ADDED",
        "Service",
        "6f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
    )
    assert event.resource_version == "48102"


def test_deleted_pod_carries_the_final_state() -> None:
    """DELETED carries the same uid as the ADDED pod and its last resourceVersion."""
    event = decode(sample("core-deleted-pod"), CORE_SUBJECT)
    assert type(event) is ObjectEvent
    assert (event.type, event.uid, event.resource_version) == ("DELETED", POD_UID, "61877")
    assert event.obj["metadata"]["deletionGracePeriodSeconds"] == 0


def test_modified_configmap_decodes() -> None:
    """A MODIFIED ConfigMap decodes with its namespace, and data stays JSON text until rendered."""
    event = decode(sample("core-modified-configmap"), CORE_SUBJECT)
    assert type(event) is ObjectEvent
    assert (event.type, event.kind, event.namespace, event.name) == (
        "MODIFIED",
        "ConfigMap",
        "shop",
        "app-config",
    )
    assert isinstance(event.obj["data"], str)


def test_docs_shape_is_accepted_with_its_top_level_cluster_id() -> None:
    """The docs shape decodes, taking cluster_id from the top level; it has no resourceVersion."""
    event = decode(sample("docs-format-added-pod"), CORE_SUBJECT)
    assert type(event) is ObjectEvent
    assert (event.type, event.cluster_id, event.wrapper) == ("ADDED", "k8s-cluster-01", DOCS)
    assert event.uid == "a1b2c3d4-e5f6-7890-abcd-ef1234567890"
    assert event.resource_version == ""


def test_store_dump_is_a_batch_of_added_sightings() -> None:
    """An informer-store reply yields each listed object as an ADDED sighting from a dump."""
    batch = decode(sample("store-dump-batch"), STORE_SUBJECT)
    assert isinstance(batch, DumpBatch)
    assert [(e.type, e.kind, e.wrapper, e.from_dump) for e in batch.events] == [
        ("ADDED", "Pod", BARE, True),
        ("ADDED", "Namespace", BARE, True),
    ]
    assert batch.errors == ()
    assert events_of(batch) == batch.events


@pytest.mark.parametrize(
    ("name", "entity", "reply"),
    [
        ("request-resync-discovery", "resync-discovery", ""),
        ("request-informer-store", "informer-store", STORE_SUBJECT),
    ],
)
def test_relist_requests_are_boundaries(name: str, entity: str, reply: str) -> None:
    """resync-discovery and informer-store requests mark re-list boundaries, with the reply subject."""
    assert decode(sample(name), REQUEST_SUBJECT) == Boundary(entity, reply)


@pytest.mark.parametrize(
    ("name", "subject"),
    [
        ("request-log-stream", REQUEST_SUBJECT),
        ("request-meshsync-meta", REQUEST_SUBJECT),
        ("meshsync-meta-reply", "meshsync-meta"),
    ],
)
def test_other_control_traffic_is_not_state(name: str, subject: str) -> None:
    """Log-stream and meta requests and the meta reply are recognised as carrying no state."""
    decoded = decode(sample(name), subject)
    assert isinstance(decoded, NotState)
    assert events_of(decoded) == ()


def _envelope(**fields: object) -> bytes:
    base: dict[str, object] = {
        "ObjectType": "meshsync-data",
        "EventType": "ADDED",
        "Request": None,
        "Object": None,
    }
    return orjson.dumps(base | fields)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe{}", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"hello": 1}', "neither a MeshSync envelope"),
        (_envelope(), "without an object"),
        (_envelope(Object={"kind": "Pod"}), "without metadata"),
        (_envelope(Object={"kind": "Pod", "metadata": {"name": "x"}}), "without metadata.uid"),
        (_envelope(Object={"kind": 7, "metadata": {"uid": "u"}}), "is not a string"),
        (_envelope(Object={"metadata": {"uid": "", "name": ""}}), "neither metadata.uid"),
        (_envelope(ObjectType="", EventType="", Request="resync"), "Request is not an object"),
    ],
)
def test_undecodable_payloads_come_back_typed_with_a_reason(payload: bytes, reason: str) -> None:
    """Bad payloads are returned as Undecodable with a reason naming what is wrong."""
    decoded = decode(payload, CORE_SUBJECT)
    assert isinstance(decoded, Undecodable)
    assert reason in decoded.reason


def test_empty_uid_is_an_event_keyed_later_by_name() -> None:
    """An empty uid with a name still decodes, so compaction can key it by name."""
    decoded = decode(_envelope(Object={"kind": "Pod", "metadata": {"uid": "", "name": "p"}}))
    assert type(decoded) is ObjectEvent
    assert (decoded.uid, decoded.name) == ("", "p")


def test_dump_with_a_bad_item_keeps_the_good_ones() -> None:
    """One broken item in a dump is reported without losing the other items."""
    good = {"kind": "Pod", "metadata": {"uid": "u1", "name": "p"}, "cluster_id": "c"}
    payload = _envelope(ObjectType="", EventType="", Object=[good, {"kind": "Pod"}, 3])
    batch = decode(payload, STORE_SUBJECT)
    assert isinstance(batch, DumpBatch)
    assert [e.uid for e in batch.events] == ["u1"]
    assert len(batch.errors) == 2


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"EventType": "ERROR"}, "event type"),
        ({"ObjectType": "log-stream", "Object": {"id": "x"}}, "log-stream"),
        ({"ObjectType": "exec-output", "Object": "stdout"}, "exec-output"),
    ],
)
def test_non_state_object_types_are_ignored(fields: dict[str, object], reason: str) -> None:
    """Event types MeshSync never uses for state, and log/exec traffic, are ignored, not errors."""
    decoded = decode(_envelope(**fields), CORE_SUBJECT)
    assert isinstance(decoded, NotState)
    assert reason in decoded.reason


def test_envelope_keys_in_other_casing_are_accepted() -> None:
    """Go matches field names case-insensitively, so `objectType`-style envelopes decode too."""
    obj = {"kind": "Pod", "metadata": {"uid": "u1", "name": "p"}, "cluster_id": "c"}
    payload = orjson.dumps(
        {"objectType": "meshsync-data", "eventType": "MODIFIED", "request": None, "object": obj}
    )
    decoded = decode(payload)
    assert type(decoded) is ObjectEvent
    assert (decoded.type, decoded.uid) == ("MODIFIED", "u1")


def test_load_object_returns_the_object_from_each_stored_form() -> None:
    """A stored payload gives back its object whether it is an envelope, docs shape or bare."""
    pod = load_object(sample("core-added-pod"), ENVELOPE)
    assert pod["metadata"]["uid"] == POD_UID
    docs = load_object(sample("docs-format-added-pod"), DOCS)
    assert docs["metadata"]["labels"] == {"app": "my-app", "version": "v1"}
    assert load_object(orjson.dumps(pod), BARE) == pod


@given(st.binary(max_size=200))
def test_decode_never_raises_on_arbitrary_bytes(payload: bytes) -> None:
    """Whatever bytes arrive, decode returns a result instead of raising."""
    decode(payload, CORE_SUBJECT)


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.text(max_size=8)
    | st.sampled_from(["meshsync-data", "ADDED", "DELETED", "", "resync-discovery", "Reply"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "ObjectType",
                    "EventType",
                    "Request",
                    "Object",
                    "metadata",
                    "uid",
                    "object",
                    "type",
                ]
            )
            | st.text(max_size=5),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)


@given(_json)
def test_decode_never_raises_on_arbitrary_json(value: object) -> None:
    """Any JSON document, including envelope look-alikes, decodes to a result without raising."""
    decode(orjson.dumps(value), CORE_SUBJECT)


def test_request_payload_is_byte_identical_to_what_meshery_sends() -> None:
    """The control requests we build (baseline, simulator) are the samples' exact bytes."""
    assert request_payload(RESYNC_DISCOVERY) == sample("request-resync-discovery").strip()
    store = request_payload(INFORMER_STORE, "meshery-server.meshsync.store")
    assert store == sample("request-informer-store").strip()
