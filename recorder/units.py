"""Sizes, durations and URLs in settings: pure parsers and formatters with no knowledge of fields.

Parsers raise `BadValueError` with a reason only; the caller adds the field, the value and the
source, so the same parser serves the config file, the environment and the command line.
"""

from __future__ import annotations

import math
import re
from typing import Final

KiB: Final = 1024
MiB: Final = 1024 * KiB
GiB: Final = 1024 * MiB
MASK: Final = "***"
SIZE_HINT: Final = "must be a size like 64MiB, 512KiB or 1GB"
DURATION_HINT: Final = "must be a duration like 1s, 500ms, 15m, 1h or 7d"

_SIZE_UNITS: Final = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4}
_SIZE_UNITS_BIN: Final = {"kib": KiB, "mib": MiB, "gib": GiB, "tib": 1024 * GiB}
_SIZE_RE: Final = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)")
_DURATION_UNITS: Final = {
    "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9,
}  # fmt: skip
_DURATION_PART: Final = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)")
_USERINFO: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)([^@/\s:]*)(:[^@/\s]*)?@")


class BadValueError(ValueError):
    """A raw value that cannot be converted; the caller adds the field, the value and the source."""


def parse_size(value: object) -> int:
    """Return a byte count from an int or a string like `64MiB`, `512KiB`, `1GB` or `4096`."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    m = _SIZE_RE.fullmatch(value.strip().lower()) if isinstance(value, str) else None
    units = {**_SIZE_UNITS, **_SIZE_UNITS_BIN}
    if m is None or m[2] not in units:
        raise BadValueError(SIZE_HINT)
    from decimal import Decimal  # here: only configuration parses sizes

    size = Decimal(m[1]) * units[m[2]]  # Decimal: 1.1MB must be exactly 1100000
    if size != size.to_integral_value():
        raise BadValueError("must be a whole number of bytes")
    return int(size)


def parse_duration(value: object) -> float:
    """Return seconds from a number or a string like `1s`, `500ms`, `15m`, `1h`, `7d` or `1h30m`."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if math.isfinite(value) and value >= 0:
            return float(value)
        raise BadValueError("must be a finite number of seconds, not negative")
    if not isinstance(value, str):
        raise BadValueError(DURATION_HINT)
    text = value.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    if not re.fullmatch(f"(?:{_DURATION_PART.pattern})+", text):
        raise BadValueError(DURATION_HINT)
    return sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))


def format_size(size: int) -> int | str:
    """Render a byte count in the largest unit that divides it exactly (0 stays 0)."""
    units = [("TiB", 1024 * GiB), ("GiB", GiB), ("MiB", MiB), ("KiB", KiB)]
    for unit, mult in [*units, ("GB", 1000**3), ("MB", 1000**2), ("KB", 1000)]:
        if size and size % mult == 0:
            return f"{size // mult}{unit}"
    return size


def human_size(size: int) -> str:
    """A byte count for people, one way everywhere: `512 B`, `1.5 KiB`, `1.0 MiB`, `2.3 GiB`."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024:
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def format_duration(seconds: float) -> int | str:
    """Render seconds in the largest unit that divides them exactly, e.g. `1h` or `500ms`."""
    if seconds == 0:
        return 0
    for unit in ("d", "h", "m", "s", "ms", "us", "ns"):
        count = seconds / _DURATION_UNITS[unit]
        if abs(count - round(count)) < 1e-6 and round(count) >= 1:
            return f"{round(count)}{unit}"
    return f"{seconds}s"


def mask_url(text: str) -> str:
    """Replace the password (or a bare token) in any `scheme://user:pass@host` inside `text`."""

    def repl(m: re.Match[str]) -> str:
        return f"{m[1]}{m[2]}:{MASK}@" if m[3] is not None else f"{m[1]}{MASK}@"

    return _USERINFO.sub(repl, text)
