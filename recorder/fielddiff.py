"""Field-level differences between two JSON documents (manifests), as path -> old/new.

Shared by `history` (between versions of one object) and `diff` (between two states), so both
describe a change the same way: `spec.replicas`, `spec.template.spec.containers[0].image`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FieldChange:
    path: str
    op: str  # added, removed, changed
    old: Any = None
    new: Any = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "op": self.op}
        if self.op != "added":
            out["old"] = self.old
        if self.op != "removed":
            out["new"] = self.new
        return out


def field_changes(old: Any, new: Any, ignore: frozenset[str] = frozenset()) -> list[FieldChange]:
    """Every leaf that differs, in document order; `ignore` holds paths left out (e.g.
    `metadata.resourceVersion`, which changes with every version by definition)."""
    found: list[FieldChange] = []
    _walk("", old, new, ignore, found)
    return found


def _walk(path: str, old: Any, new: Any, ignore: frozenset[str], found: list[FieldChange]) -> None:
    if path in ignore:
        return
    if type(old) is dict and type(new) is dict:
        for key in {**old, **new}:
            child = f"{path}.{key}" if path else str(key)
            if key not in new:
                if child not in ignore:
                    found.append(FieldChange(child, "removed", old=old[key]))
            elif key not in old:
                if child not in ignore:
                    found.append(FieldChange(child, "added", new=new[key]))
            else:
                _walk(child, old[key], new[key], ignore, found)
        return
    if type(old) is list and type(new) is list:
        for index in range(max(len(old), len(new))):
            child = f"{path}[{index}]"
            if index >= len(new):
                found.append(FieldChange(child, "removed", old=old[index]))
            elif index >= len(old):
                found.append(FieldChange(child, "added", new=new[index]))
            else:
                _walk(child, old[index], new[index], ignore, found)
        return
    if old != new or type(old) is not type(new):
        found.append(FieldChange(path, "changed", old=old, new=new))
