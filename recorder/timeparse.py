"""Times on the command line: RFC 3339 (with nanoseconds) or relative to now, as UTC nanoseconds."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

from recorder.units import BadValueError, parse_duration

_FRACTION: Final = re.compile(r"\.(\d+)")


def parse_time(text: str, now_ns: int) -> int:
    """`2026-11-22T10:00:00.123456789Z`, `now`, or relative (`-15m`, `2h` ago); raises ValueError."""
    text = text.strip()
    if text == "now":
        return now_ns
    sign, amount = (text[0], text[1:]) if text[:1] in "+-" else ("-", text)
    if amount[-1:].isalpha():  # a unit: relative, in the same syntax as config durations
        try:
            delta = int(parse_duration(amount) * 1e9)
        except BadValueError:
            pass
        else:
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
