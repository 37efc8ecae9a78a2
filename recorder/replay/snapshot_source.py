"""Replay's source when it starts from a snapshot file: the manifests a snapshot holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from recorder.errors import UsageError

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_snapshot(path: Path) -> list[dict[str, Any]]:
    """The manifests of a YAML (multi-document) or JSON (`v1` `List`) snapshot."""
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
    bad = [
        i
        for i, doc in enumerate(documents)
        if not isinstance(doc, dict)
        or "kind" not in doc
        or not isinstance(doc.get("metadata", {}), dict)
    ]
    if bad:
        raise UsageError(f"snapshot {path}: document {bad[0] + 1} is not a Kubernetes object")
    return documents
