"""Types of the C extension built from _yamlemit.c (optional: see setup.py)."""

from typing import Any

def dump(document: Any, sort_keys: bool = False, /) -> bytes | None: ...
