"""Times on the command line: RFC 3339 (with nanoseconds) or relative to now, as UTC nanoseconds."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

_RELATIVE: Final = re.compile(r"^([+-])?(\d+(?:\.\d+)?)(ns|us|ms|s|m|h|d|w)$")
_UNIT_NS: Final = {
    "ns": 1,
    "us": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
    "w": 604_800_000_000_000,
}
_FRACTION: Final = re.compile(r"\.(\d+)")


def parse_time(text: str, now_ns: int) -> int:
    """`2026-11-22T10:00:00.123456789Z`, `now`, or relative (`-15m`, `2h` ago); raises ValueError."""
    text = text.strip()
    if text == "now":
        return now_ns
    relative = _RELATIVE.match(text)
    if relative:
        sign, amount, unit = relative.groups()
        delta = int(float(amount) * _UNIT_NS[unit])
        return now_ns + delta if sign == "+" else now_ns - delta
    return _parse_rfc3339(text)


def _parse_rfc3339(text: str) -> int:
    # datetime keeps microseconds only: carry the full fraction aside and add it back as ns.
    fraction = _FRACTION.search(text)
    nanos = 0
    if fraction:
        digits = fraction.group(1)
        nanos = int(digits[:9].ljust(9, "0"))
        text = text[: fraction.start()] + text[fraction.end() :]
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise ValueError(
            f"not a time: {text!r} (use RFC 3339 like 2026-11-22T10:00:00Z, or relative like -15m)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1_000_000_000 + nanos


def format_time(time_ns: int) -> str:
    """RFC 3339 in UTC with all nine fraction digits."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"
