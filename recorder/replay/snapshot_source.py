"""Replay's source when it starts from a snapshot file: the manifests a snapshot holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from recorder.errors import UsageError
from recorder.manifest import is_meshsync_form

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_snapshot(path: Path) -> list[dict[str, Any]]:
    """The objects of a YAML (multi-document) or JSON (`v1` `List`) snapshot.

    Kubernetes manifests, or MeshSync objects as `compact --format meshsync` writes them.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read snapshot {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"snapshot {path} is not UTF-8 text (byte {exc.start})") from None
    documents: list[Any] = []
    try:
        documents.extend(doc for doc in yaml.load_all(text, Loader=_Loader) if doc is not None)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(
            f"snapshot {path}: document {len(documents) + 1} is not YAML or JSON{where}: {problem}"
        ) from None
    if (
        len(documents) == 1
        and isinstance(documents[0], dict)
        and documents[0].get("kind") == "List"
    ):
        documents = list(documents[0].get("items") or [])
    for index, doc in enumerate(documents, start=1):
        problem = _not_an_object(doc)
        if problem:
            raise UsageError(f"snapshot {path}: document {index} {problem}")
    return documents


def _not_an_object(doc: Any) -> str | None:
    """Why `doc` is neither a Kubernetes manifest nor a MeshSync object, or None when it is one."""
    if not isinstance(doc, dict) or "kind" not in doc:
        return "is not a Kubernetes object"
    meta = doc.get("metadata", {})
    if not isinstance(meta, dict):
        return "is not a Kubernetes object (metadata is not a map)"
    # MeshSync ships labels and annotations as lists of key/value pairs, manifests as maps.
    expected: type = list if is_meshsync_form(doc) else dict
    shape = "list" if expected is list else "map"
    for key in ("labels", "annotations"):
        if meta.get(key) is not None and not isinstance(meta[key], expected):
            return f"has metadata.{key} that is not a {shape}"
    return None
