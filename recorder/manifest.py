"""MeshSync objects <-> Kubernetes manifests.

`to_manifest` turns MeshSync's `KubernetesResource` wire form (labels as key/value arrays, spec and
status as JSON text, MeshSync-only fields) into a manifest `kubectl apply` accepts; `to_meshsync`
is its inverse for the fields MeshSync can carry, so a snapshot can be replayed as ADDED events.

The cluster id, which Kubernetes has no field for, is kept as the annotation `meshery.io/cluster-id`
(`CLUSTER_ANNOTATION`); `to_meshsync` moves it back to the top-level `cluster_id`.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

CLUSTER_ANNOTATION: Final = "meshery.io/cluster-id"

# Kept as they are; everything else in MeshSync's metadata is handled below or dropped.
_META_PLAIN: Final = (
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
_META_JSON: Final = ("ownerReferences", "finalizers")
_TOP_JSON: Final = ("data", "binaryData", "stringData")
# MeshSync's own wire order (pkg/model/model.go), which `to_meshsync` reproduces.
_META_ORDER: Final = (
    *_META_PLAIN,
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "clusterName",
    "managedFields",
)

# Go's json.Marshal escapes these for HTML safety; orjson does not.
_GO_ESCAPES: Final = (
    (b"&", b"\\u0026"),
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)


def go_json(value: Any, *, sort_keys: bool = False) -> bytes:
    """Compact JSON as Go's json.Marshal writes it (HTML characters escaped)."""
    data = orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort_keys else 0)
    for raw, escaped in _GO_ESCAPES:
        if raw in data:
            data = data.replace(raw, escaped)
    return data


def parse_json_text(text: Any) -> Any:
    """A nested JSON string as a structure, or the text unchanged when it does not parse."""
    if not isinstance(text, str):
        return text
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def unescape_value(value: str) -> str:
    """Undo MeshSync's label/annotation quirk: values arrive as JSON string contents, still escaped."""
    if "\\" not in value:
        return value
    try:
        decoded = orjson.loads('"' + value + '"')
    except orjson.JSONDecodeError:
        return value
    return decoded if isinstance(decoded, str) else value


def _pairs_to_map(pairs: Any) -> dict[str, str]:
    if isinstance(pairs, dict):  # the docs shape already has maps
        return {str(k): "" if v is None else str(v) for k, v in pairs.items()}
    result: dict[str, str] = {}
    if isinstance(pairs, list):
        for pair in pairs:
            if isinstance(pair, dict) and isinstance(pair.get("key"), str):
                value = pair.get("value")
                result[pair["key"]] = unescape_value(value) if isinstance(value, str) else ""
    return result


def _attribute(part: Any) -> Any:
    """spec/status: {"id", "attribute": JSON text} -> the structure (raw text if unparsable)."""
    if isinstance(part, dict):
        if "attribute" in part:
            return parse_json_text(part["attribute"])
        return None
    return part


def to_manifest(obj: dict[str, Any], cluster_id: str = "", *, meshsync_form: bool = True) -> Any:
    """A Kubernetes manifest dict from a MeshSync object (or from the docs shape when not meshsync_form)."""
    if not meshsync_form:
        return _docs_manifest(obj, cluster_id)
    meta_in = obj.get("metadata")
    meta_in = meta_in if isinstance(meta_in, dict) else {}
    meta: dict[str, Any] = {}
    for key in _META_PLAIN:
        if key in meta_in:
            meta[key] = meta_in[key]
    labels = _pairs_to_map(meta_in.get("labels"))
    if labels:
        meta["labels"] = labels
    annotations = _pairs_to_map(meta_in.get("annotations"))
    if cluster_id:
        annotations[CLUSTER_ANNOTATION] = cluster_id
    if annotations:
        meta["annotations"] = annotations
    for key in _META_JSON:
        if key in meta_in:
            meta[key] = parse_json_text(meta_in[key])
    if "clusterName" in meta_in:
        meta["clusterName"] = meta_in["clusterName"]
    if "managedFields" in meta_in:
        meta["managedFields"] = parse_json_text(meta_in["managedFields"])

    manifest: dict[str, Any] = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind")}
    manifest["metadata"] = meta
    for part in ("spec", "status"):
        value = _attribute(obj.get(part))
        if value is not None:
            manifest[part] = value
    for key in _TOP_JSON:
        if key in obj:
            manifest[key] = parse_json_text(obj[key])
    if "immutable" in obj:
        manifest["immutable"] = obj["immutable"] in ("true", True)
    if "type" in obj:
        manifest["type"] = obj["type"]
    return manifest


def _docs_manifest(obj: dict[str, Any], cluster_id: str) -> dict[str, Any]:
    """The docs shape is already a Kubernetes object: only put apiVersion/kind first and tag it."""
    manifest: dict[str, Any] = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind")}
    meta_in = obj.get("metadata")
    meta = dict(meta_in) if isinstance(meta_in, dict) else {}
    for key in ("labels", "annotations"):
        if key in meta:
            meta[key] = _pairs_to_map(meta[key])
    meta.pop("cluster_id", None)
    meta.pop("id", None)
    if cluster_id:
        meta["annotations"] = {**meta.get("annotations", {}), CLUSTER_ANNOTATION: cluster_id}
    manifest["metadata"] = meta
    for key, value in obj.items():
        if key not in manifest and key not in ("id", "model", "cluster_id"):
            manifest[key] = value
    return manifest


# -- the reverse: manifest -> MeshSync ------------------------------------------------------


def _go_text(value: Any) -> str:
    """JSON text as MeshSync embeds it: Go-encoded with sorted keys."""
    return go_json(value, sort_keys=True).decode()


def _escaped_value(value: str) -> str:
    """The raw JSON string contents MeshSync ships for a label or annotation value."""
    return go_json(value).decode()[1:-1]


def _pairs(kind: str, mapping: dict[str, str]) -> list[dict[str, str]]:
    pairs = []
    for key, value in mapping.items():
        pair = {"id": "", "unique_id": "", "kind": kind}
        if key:
            pair["key"] = key
        if value:
            pair["value"] = _escaped_value(value)
        pairs.append(pair)
    return pairs


def to_meshsync(manifest: dict[str, Any]) -> dict[str, Any]:
    """MeshSync's KubernetesResource form of a manifest, keys in wire order."""
    meta_in = dict(manifest.get("metadata") or {})
    annotations = dict(meta_in.get("annotations") or {})
    cluster_id = annotations.pop(CLUSTER_ANNOTATION, "")
    meta: dict[str, Any] = {"id": ""}
    for key in _META_ORDER:
        if key not in meta_in:
            continue
        value = meta_in[key]
        if key == "labels":
            if value:
                meta[key] = _pairs("label", value)
        elif key == "annotations":
            if annotations:
                meta[key] = _pairs("annotation", annotations)
        elif key in (*_META_JSON, "managedFields"):
            meta[key] = value if isinstance(value, str) else _go_text(value)
        else:
            meta[key] = value
    if "uid" not in meta:
        meta["uid"] = ""
    meta["cluster_id"] = ""

    obj: dict[str, Any] = {
        "id": "",
        "apiVersion": manifest.get("apiVersion", ""),
        "kind": manifest.get("kind", ""),
        "model": "",
        "metadata": meta,
    }
    for part in ("spec", "status"):
        if part in manifest:
            value = manifest[part]
            obj[part] = {
                "id": "",
                "attribute": value if isinstance(value, str) else _go_text(value),
            }
    obj["cluster_id"] = cluster_id
    obj["pattern_resource"] = None
    obj["component_metadata"] = _component_metadata(manifest)
    if manifest.get("immutable"):
        obj["immutable"] = "true"
    for key in _TOP_JSON:
        if key in manifest:
            value = manifest[key]
            obj[key] = value if isinstance(value, str) else _go_text(value)
    if "type" in manifest:
        obj["type"] = manifest["type"]
    return obj


def _component_metadata(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """MeshSync adds connection capabilities to Services (pkg/model/process.go); nothing else."""
    if manifest.get("kind") != "Service" or not isinstance(manifest.get("spec"), dict):
        return None
    spec = manifest["spec"]
    ip = spec.get("clusterIP")
    urls = [
        f"{ip}:{port['port']}"
        for port in spec.get("ports") or []
        if ip and isinstance(port, dict) and "port" in port
    ]
    return {"capabilities": {"connection": True, "urls": urls}}


def is_meshsync_form(document: dict[str, Any]) -> bool:
    """True for MeshSync's KubernetesResource form (top-level `id` and `cluster_id`, as
    `compact --format meshsync` and its `-extended` file hold it); a manifest has neither."""
    return "cluster_id" in document and "id" in document


def envelope(obj: dict[str, Any], event_type: str = "ADDED") -> bytes:
    """The payload MeshSync publishes on meshery.meshsync.core for one object."""
    return (
        b'{"ObjectType":"meshsync-data","EventType":"'
        + event_type.encode()
        + b'","Request":null,"Object":'
        + go_json(obj)
        + b"}"
    )


def added_envelope(manifest: dict[str, Any]) -> bytes:
    """An ADDED message carrying a snapshot document as MeshSync would send it.

    A manifest is converted to MeshSync's form; a document already in that form is sent as it is.
    """
    obj = manifest if is_meshsync_form(manifest) else to_meshsync(manifest)
    return envelope(obj, "ADDED")
