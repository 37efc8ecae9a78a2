"""The MeshSync message model: decode one NATS payload into object events, boundaries or neither.

Decoding is lazy on purpose: one `orjson.loads` per payload, after which only the envelope and the
metadata that deduplication needs are looked at. The nested JSON strings (`spec.attribute`,
`ownerReferences`, `data`, ...) stay strings until an object is rendered (see `recorder.manifest`).
`decode` never raises: anything it cannot use comes back as `Undecodable` with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import orjson

CORE_SUBJECT: Final = "meshery.meshsync.core"
REQUEST_SUBJECT: Final = "meshery.meshsync.request"
STORE_SUBJECT: Final = "meshery-server.meshsync.store"

ADDED: Final = "ADDED"
MODIFIED: Final = "MODIFIED"
DELETED: Final = "DELETED"
_STATE_EVENTS: Final = frozenset((ADDED, MODIFIED, DELETED))

RESYNC_DISCOVERY: Final = "resync-discovery"
INFORMER_STORE: Final = "informer-store"
_BOUNDARY_ENTITIES: Final = frozenset((RESYNC_DISCOVERY, INFORMER_STORE))

# Where the object sits in a stored payload: the envelope's "Object", the docs shape's "object",
# or "" when the payload is the object itself (a dump item re-encoded on its own).
ENVELOPE: Final = "Object"
DOCS: Final = "object"
BARE: Final = ""

_ENVELOPE_KEYS: Final = ("ObjectType", "EventType", "Request", "Object")


class ObjectEvent(NamedTuple):
    """One sighting of one object: ADDED, MODIFIED or DELETED (dump items arrive as ADDED).

    A NamedTuple rather than a frozen dataclass because one is built per event on the benchmarked
    dedup path, where a frozen dataclass costs about four times as much to construct.
    """

    type: str
    cluster_id: str
    uid: str
    api_version: str
    kind: str
    namespace: str
    name: str
    resource_version: str
    obj: dict[str, Any]
    wrapper: str
    from_dump: bool = False


@dataclass(frozen=True, slots=True)
class DumpBatch:
    """An informer-store reply: up to five objects, each a sighting, plus reasons for bad items."""

    events: tuple[ObjectEvent, ...]
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Boundary:
    """A control request that starts a full re-list (`resync-discovery` or `informer-store`)."""

    entity: str
    reply: str = ""


@dataclass(frozen=True, slots=True)
class NotState:
    """A well-formed message that carries no cluster state (meta replies, log streams, ...)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Undecodable:
    """A payload that cannot be used, and why."""

    reason: str


Decoded = ObjectEvent | DumpBatch | Boundary | NotState | Undecodable


def request_payload(entity: str, reply: str | None = None) -> bytes:
    """A control request as Meshery sends it on REQUEST_SUBJECT, in Go's json.Marshal layout."""
    request = {"Entity": entity, "Payload": {"Reply": reply} if reply is not None else None}
    return orjson.dumps({"ObjectType": "", "EventType": "", "Request": request, "Object": None})


def decode(payload: bytes | memoryview, subject: str = CORE_SUBJECT) -> Decoded:
    """Classify one payload received on `subject`; never raises."""
    try:
        doc = orjson.loads(payload)
    except ValueError as exc:  # orjson.JSONDecodeError, including invalid UTF-8
        return Undecodable(f"not JSON: {exc}")
    if type(doc) is not dict:
        return Undecodable(f"not a JSON object but {type(doc).__name__}")
    # Fast path for the bulk of the traffic: one object event on core.
    if doc.get("ObjectType") == "meshsync-data":
        event_type = doc.get("EventType")
        obj = doc.get("Object")
        if type(obj) is dict and type(event_type) is str and event_type in _STATE_EVENTS:
            return _event(obj, event_type, ENVELOPE, obj.get("cluster_id", ""))
    if "ObjectType" in doc or "Object" in doc:
        return _envelope(doc, subject)
    if "object" in doc and "type" in doc:
        return _docs(doc)
    return _other_casing(doc, subject)


def _envelope(doc: dict[str, Any], subject: str) -> Decoded:
    object_type = doc.get("ObjectType")
    event_type = doc.get("EventType")
    obj = doc.get("Object")
    # Both are strings or null on the wire; anything else (even unhashable) is a foreign shape.
    if not (object_type is None or type(object_type) is str):
        return Undecodable("ObjectType is not a string")
    if not (event_type is None or type(event_type) is str):
        return Undecodable("EventType is not a string")
    if object_type == "meshsync-data":
        if event_type in _STATE_EVENTS:
            if type(obj) is dict:
                return _event(obj, event_type, ENVELOPE, obj.get("cluster_id", ""))
            return Undecodable("meshsync-data event without an object")
        if not event_type and type(obj) is list:
            return _dump(obj)
        return NotState(f"meshsync-data with event type {event_type!r}")
    request = doc.get("Request")
    if request is not None:
        return _request(request)
    if not object_type and not event_type and type(obj) is list:
        return _dump(obj)
    if subject == CORE_SUBJECT and object_type:
        return NotState(f"object type {object_type!r} on {CORE_SUBJECT}")
    if not object_type and isinstance(obj, str):
        return NotState("meshsync-meta reply")
    return NotState(f"object type {object_type!r}")


def _request(request: Any) -> Decoded:
    if type(request) is not dict:
        return Undecodable("Request is not an object")
    entity = request.get("Entity")
    if not isinstance(entity, str):
        return Undecodable("Request without an Entity")
    if entity in _BOUNDARY_ENTITIES:
        payload = request.get("Payload")
        reply = payload.get("Reply") if isinstance(payload, dict) else None
        return Boundary(entity, reply if isinstance(reply, str) else "")
    return NotState(f"{entity} request")


def _docs(doc: dict[str, Any]) -> Decoded:
    event_type = doc.get("type")
    obj = doc.get("object")
    if type(event_type) is not str or event_type not in _STATE_EVENTS:
        return NotState(f"docs-shape event type {event_type!r}")
    if type(obj) is not dict:
        return Undecodable("docs-shape event without an object")
    return _event(obj, event_type, DOCS, doc.get("cluster_id", ""))


def _dump(items: list[Any]) -> DumpBatch:
    events: list[ObjectEvent] = []
    errors: list[str] = []
    for index, item in enumerate(items):
        if type(item) is not dict:
            errors.append(f"dump item {index} is not an object")
            continue
        event = _event(item, ADDED, BARE, item.get("cluster_id", ""), from_dump=True)
        if type(event) is ObjectEvent:
            events.append(event)
        else:
            errors.append(f"dump item {index}: {event.reason}")  # type: ignore[union-attr]
    return DumpBatch(tuple(events), tuple(errors))


def _event(
    obj: dict[str, Any],
    event_type: str,
    wrapper: str,
    cluster_id: Any,
    *,
    from_dump: bool = False,
) -> ObjectEvent | Undecodable:
    meta = obj.get("metadata")
    if type(meta) is not dict:
        return Undecodable("object without metadata")
    get = meta.get
    uid = get("uid")
    if type(uid) is not str:
        return Undecodable("object without metadata.uid")
    api_version = obj.get("apiVersion", "")
    kind = obj.get("kind", "")
    namespace = get("namespace", "")
    name = get("name", "")
    version = get("resourceVersion", "")
    # One combined check keeps the common case to a single branch.
    if not (
        type(api_version) is str
        and type(kind) is str
        and type(namespace) is str
        and type(name) is str
        and type(version) is str
        and type(cluster_id) is str
    ):
        return Undecodable("apiVersion, kind, metadata or cluster_id is not a string")
    if not uid and not name:
        return Undecodable("object with neither metadata.uid nor metadata.name")
    return ObjectEvent(
        event_type,
        cluster_id,
        uid,
        api_version,
        kind,
        namespace,
        name,
        version,
        obj,
        wrapper,
        from_dump,
    )


def _other_casing(doc: dict[str, Any], subject: str) -> Decoded:
    """Go decodes field names case-insensitively, so a foreign publisher may write `objectType`."""
    folded = {str(key).lower(): value for key, value in doc.items()}
    if any(key.lower() in folded for key in _ENVELOPE_KEYS):
        canonical = {key: folded.get(key.lower()) for key in _ENVELOPE_KEYS}
        return _envelope(canonical, subject)
    return Undecodable("neither a MeshSync envelope nor the docs event shape")


def events_of(decoded: Decoded) -> tuple[ObjectEvent, ...]:
    """The object events a decoded message carries (none for boundaries and non-state)."""
    if type(decoded) is ObjectEvent:
        return (decoded,)
    if isinstance(decoded, DumpBatch):
        return decoded.events
    return ()


def load_object(raw: bytes, wrapper: str) -> dict[str, Any]:
    """The object dict from a stored payload (see ENVELOPE, DOCS, BARE)."""
    doc = orjson.loads(raw)
    obj = doc[wrapper] if wrapper else doc
    if not isinstance(obj, dict):
        raise ValueError("stored payload does not hold an object")
    return obj
