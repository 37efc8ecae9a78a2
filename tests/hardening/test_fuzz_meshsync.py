"""The MeshSync decoder, the compactor and the snapshot renderers on anything a subject can carry.

`decode` never raises; `Compactor.feed` never raises and counts what it cannot use; a compacted
state always renders as YAML, a JSON List and MeshSync files, and survives a checkpoint.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from fuzz_support import fuzz_pair
from hypothesis import strategies as st
from structlog.testing import capture_logs

from recorder.compact.model import CompactOptions
from recorder.compact.snapshot import (
    extended_documents,
    render_json,
    render_meshsync,
    render_yaml,
    snapshot_meta,
)
from recorder.compact.state import Compactor, compact
from recorder.journal.record import Marker, MarkerType, Message, Record
from recorder.meshsync import (
    CORE_SUBJECT,
    REQUEST_SUBJECT,
    STORE_SUBJECT,
    Boundary,
    DumpBatch,
    NotState,
    ObjectEvent,
    Undecodable,
    decode,
)

T0 = 1_700_000_000 * 10**9
SUBJECTS = st.sampled_from([CORE_SUBJECT, REQUEST_SUBJECT, STORE_SUBJECT, "other.subject"])

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)  # past 64 bits too: orjson reads those as floats
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)


def _json_text(value: Any) -> str:
    return json.dumps(value)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The right kind of value most of the time, any JSON value otherwise."""
    return st.one_of(strategy, strategy, strategy, JSON)


TEXT = st.sampled_from(["", "a", "default", "v1", "Pod", "1", "x/y"]) | st.text(max_size=8)
LABELS = st.lists(
    st.fixed_dictionaries(
        {}, optional={"key": maybe(TEXT), "value": maybe(TEXT | st.just(r"a\u0026b\"")), "id": TEXT}
    ),
    max_size=4,
) | st.dictionaries(TEXT, maybe(TEXT), max_size=3)
METADATA = st.fixed_dictionaries(
    {},
    optional={
        "uid": maybe(st.sampled_from(["u1", "u2", "u3", ""])),
        "name": maybe(st.sampled_from(["a", "b", ""])),
        "namespace": maybe(TEXT),
        "resourceVersion": maybe(st.sampled_from(["1", "2", "3", ""])),
        "labels": maybe(LABELS),
        "annotations": maybe(LABELS),
        "ownerReferences": maybe(JSON.map(_json_text) | TEXT),
        "finalizers": maybe(JSON.map(_json_text)),
        "managedFields": maybe(JSON.map(_json_text)),
        "generation": JSON,
    },
)
ATTRIBUTE = st.fixed_dictionaries(
    {}, optional={"attribute": maybe(JSON.map(_json_text) | TEXT), "id": TEXT}
)
OBJECT = st.fixed_dictionaries(
    {"metadata": maybe(METADATA)},
    optional={
        "apiVersion": maybe(st.sampled_from(["v1", "apps/v1"])),
        "kind": maybe(st.sampled_from(["Pod", "Service", "ConfigMap", "Secret"])),
        "cluster_id": maybe(st.sampled_from(["c1", "c2", ""])),
        "spec": maybe(ATTRIBUTE),
        "status": maybe(ATTRIBUTE),
        "data": maybe(JSON.map(_json_text)),
        "immutable": JSON,
        "type": JSON,
        "extra": JSON,
    },
)
EVENT_TYPE = st.sampled_from(["ADDED", "MODIFIED", "DELETED", "", "SYNCED"])
ENVELOPE = st.fixed_dictionaries(
    {},
    optional={
        "ObjectType": maybe(
            st.sampled_from(["meshsync-data", "", "meshsync-meta", "other"]) | st.none()
        ),
        "EventType": maybe(EVENT_TYPE | st.none()),
        "Object": maybe(OBJECT | st.lists(maybe(OBJECT), max_size=5) | st.none() | TEXT),
        "Request": maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "Entity": maybe(
                        st.sampled_from(["resync-discovery", "informer-store", "meshsync-meta"])
                    ),
                    "Payload": maybe(st.fixed_dictionaries({}, optional={"Reply": maybe(TEXT)})),
                },
            )
            | st.none()
        ),
    },
)
DOCS_SHAPE = st.fixed_dictionaries(
    {"type": maybe(EVENT_TYPE), "object": maybe(OBJECT)},
    optional={"cluster_id": maybe(st.sampled_from(["c1", "c2"]))},
)


def _recase(doc: dict[str, Any], flips: list[bool]) -> dict[str, Any]:
    """Go decodes field names case-insensitively; so must we, for foreign publishers."""
    return {
        (key.lower() if flip else key): value
        for (key, value), flip in zip(doc.items(), flips + [False] * len(doc), strict=False)
    }


SHAPED = st.one_of(
    ENVELOPE,
    DOCS_SHAPE,
    st.builds(_recase, ENVELOPE, st.lists(st.booleans(), max_size=4)),
)
PAYLOADS = st.one_of(
    SHAPED.map(lambda doc: json.dumps(doc).encode()),
    JSON.map(lambda doc: json.dumps(doc).encode()),
    st.binary(max_size=200),
    st.text(max_size=50).map(lambda text: text.encode("utf-8", "surrogatepass")),
)


def _check_decoded(payload: bytes, subject: str) -> None:
    result = decode(payload, subject)
    assert isinstance(result, ObjectEvent | DumpBatch | Boundary | NotState | Undecodable)
    events = (result,) if isinstance(result, ObjectEvent) else getattr(result, "events", ())
    for event in events:
        assert all(
            type(value) is str
            for value in (event.uid, event.cluster_id, event.kind, event.name, event.namespace)
        )
        assert event.uid or event.name


@fuzz_pair(st.tuples(PAYLOADS, SUBJECTS), quick=1_500, long=20_000)
def check_decode(case: tuple[bytes, str]) -> None:
    """decode() classifies any payload on any subject without raising, and events carry string keys."""
    _check_decoded(*case)


test_decode_never_raises, test_decode_never_raises_long = check_decode


RECORDS = st.lists(
    st.tuples(
        st.integers(0, 3 * 10**9),  # time step: some past the idle gap, closing re-list epochs
        st.one_of(PAYLOADS, PAYLOADS, PAYLOADS, st.just(b"")),
        SUBJECTS,
        st.sampled_from([True, True, True, False]),  # a message, or a marker moving the clock
    ),
    max_size=12,
)


def _records(steps: list[tuple[int, bytes, str, bool]]) -> list[Record]:
    records: list[Record] = []
    now = T0
    for seq, (step, payload, subject, is_message) in enumerate(steps, start=1):
        now += step
        if is_message:
            records.append(Message(seq, now, subject, "", None, payload, None))
        else:
            records.append(Marker(seq, now, MarkerType.NOTE, {}))
    return records


@fuzz_pair(st.tuples(RECORDS, st.booleans()), quick=400, long=5_000)
def check_compaction(case: tuple[list[tuple[int, bytes, str, bool]], bool]) -> None:
    """Compaction of any records never raises, counts every message, renders and checkpoints."""
    steps, prune_ghosts = case
    records = _records(steps)
    options = CompactOptions(prune_ghosts=prune_ghosts, idle_ns=10**9)
    compactor = Compactor(options)
    for record in records:  # feed one by one, as the brief's contract is per record
        assert compactor.feed(record) is True
    stats = compactor.stats()
    messages = [record for record in records if isinstance(record, Message)]
    assert stats.messages == len(messages)
    objects = compactor.objects()
    assert len(objects) == stats.objects
    meta = snapshot_meta(objects, stats)
    render_yaml(objects, meta)
    render_json(objects, meta)
    render_meshsync(objects)
    for message in messages:
        extended_documents(message.payload, message.subject)
    restored = Compactor.from_bytes(compactor.to_bytes(), options)
    assert restored.stats() == stats
    # Split feeding (a checkpoint in the middle) ends in the same state as one pass.
    half = len(records) // 2
    first, _ = compact(records[:half], options)
    _, resumed_stats = compact(records, options, Compactor.from_bytes(first.to_bytes(), options))
    assert resumed_stats.objects == stats.objects


test_compaction_never_raises, test_compaction_never_raises_long = check_compaction


# -- deep nesting: orjson reads 1024 levels, writes 254, and YAML recurses in Python ----------


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _object_payload(depth: int, where: str) -> bytes:
    """An ADDED event whose object holds `depth`-deep arrays in `where` (spec text or a field)."""
    spec = '{"attribute":' + json.dumps(_nested(depth)) + "}" if where == "spec" else "{}"
    extra = _nested(depth) if where == "field" else "0"
    return (
        '{"ObjectType":"meshsync-data","EventType":"ADDED","Request":null,"Object":'
        '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"uid":"u1","name":"n"},'
        f'"spec":{spec},"extra":{extra}}}}}'
    ).encode()


@pytest.mark.parametrize("depth", [1025, 10_000])
def test_nesting_past_the_parser_limit_is_undecodable(depth: int) -> None:
    """Arrays nested past orjson's 1024 levels are an Undecodable payload, counted, not a crash."""
    payload = _nested(depth).encode()
    assert isinstance(decode(payload), Undecodable)
    _, stats = compact([Message(1, T0, CORE_SUBJECT, "", None, payload, None)])
    assert stats.undecodable == 1 and "not JSON" in stats.issues[0].reason


@pytest.mark.parametrize("depth", [300, 1000])
def test_a_dump_item_too_deep_to_re_encode_is_counted(depth: int) -> None:
    """A dump item nested past orjson's write limit is reported as undecodable, not a TypeError."""
    payload = (
        '{"ObjectType":"","EventType":"","Object":[{"apiVersion":"v1","kind":"X",'
        '"metadata":{"uid":"deep"},"x":' + _nested(depth) + "},"
        '{"apiVersion":"v1","kind":"X","metadata":{"uid":"fine"}}]}'
    ).encode()
    compactor, stats = compact([Message(1, T0, STORE_SUBJECT, "", None, payload, None)])
    assert stats.undecodable == 1 and "deep" in stats.issues[0].reason
    assert [obj.uid for obj in compactor.objects()] == ["fine"]


@pytest.mark.parametrize("where", ["spec", "field"])
@pytest.mark.parametrize("depth", [300, 1000])
def test_objects_too_deep_to_render_are_left_out_and_logged(depth: int, where: str) -> None:
    """Every snapshot format skips (and logs) an object nested deeper than its encoder goes."""
    deep = Message(1, T0, CORE_SUBJECT, "", None, _object_payload(depth, where), None)
    fine = Message(
        2, T0 + 1, CORE_SUBJECT, "", None, _object_payload(1, "spec").replace(b"u1", b"u2"), None
    )
    compactor, stats = compact([deep, fine])
    objects = compactor.objects()
    assert stats.objects == 2
    meta = snapshot_meta(objects, stats)
    with capture_logs() as logs:
        outputs = [render_yaml(objects, meta), render_json(objects, meta), render_meshsync(objects)]
        outputs += extended_documents(deep.payload, deep.subject, seq=1)
    assert all(b"u2" in output for output in outputs[:3])
    orjson.loads(outputs[1])  # still one valid JSON List
    skipped = [log for log in logs if log["event"] == "object_not_written"]
    assert all(log["uid"] == "u1" for log in skipped)


def test_huge_label_maps_decode_and_render() -> None:
    """An object with 10,000 labels decodes, compacts and renders in every format."""
    labels = [{"key": f"k{i}", "value": f"v{i}"} for i in range(10_000)]
    obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"uid": "u", "name": "p", "labels": labels},
    }
    payload = orjson.dumps({"ObjectType": "meshsync-data", "EventType": "ADDED", "Object": obj})
    compactor, stats = compact([Message(1, T0, CORE_SUBJECT, "", None, payload, None)])
    objects = compactor.objects()
    assert stats.objects == 1
    assert len(objects[0].manifest()["metadata"]["labels"]) == 10_000
    assert render_yaml(objects, snapshot_meta(objects, stats)).count(b"\n") > 10_000
