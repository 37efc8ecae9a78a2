"""Progress on the terminal for replay: sent of total, the recorded time reached, and an ETA.

Drawn on stderr, one line rewritten in place, at most ten times a second; never when stderr is
not a terminal, nor with --quiet (the caller decides, see `wanted`).
"""

import sys
import time
from typing import TYPE_CHECKING, TextIO

from recorder.timeparse import format_time

if TYPE_CHECKING:
    from recorder.replay.run import ReplayStats

REDRAW_S = 0.1


def wanted(quiet: bool, stream: TextIO | None = None) -> bool:
    """Progress only for a person watching: a terminal, and no --quiet."""
    stream = stream or sys.stderr
    try:
        return not quiet and stream.isatty()
    except (AttributeError, ValueError):  # None (started with stderr closed), or closed
        return False


def format_eta(seconds: float) -> str:
    """`42s`, `3m05s` or `2h07m`: precise enough to plan a coffee by."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class ReplayProgress:
    """`sent N of T (seq S), at <recorded time>, ETA 1m05s`.

    The ETA at a `--speed` comes from the recorded time still ahead divided by the speed, which
    holds however bursty the recording is; flat out it comes from the rate so far. (A plain
    class: dataclasses would cost every command's start-up an import.)
    """

    def __init__(
        self,
        total: int | None = None,  # messages to send, when known without reading them all
        end_ns: int | None = None,  # recorded time of the last message to send
        speed: float | None = None,  # None: --speed max
        stream: TextIO | None = None,
        started: float | None = None,
    ) -> None:
        self.total = total
        self.end_ns = end_ns
        self.speed = speed
        self.stream = stream or sys.stderr
        self.started = time.monotonic() if started is None else started
        self.drawn_at = 0.0

    def __call__(self, stats: "ReplayStats") -> None:
        now = time.monotonic()
        if now - self.drawn_at < REDRAW_S:
            return
        self.drawn_at = now
        self.stream.write("\r" + self.line(stats, now) + "\033[K")
        self.stream.flush()

    def line(self, stats: "ReplayStats", now: float) -> str:
        sent = f"sent {stats.sent}" + (f" of {self.total}" if self.total else "")
        parts = [sent + (f" (seq {stats.last_seq})" if stats.last_seq is not None else "")]
        if stats.last_time_ns:
            parts.append(f"at {format_time(stats.last_time_ns)}")
        eta = self.eta(stats, now)
        if eta is not None:
            parts.append(f"ETA {format_eta(eta)}")
        return ", ".join(parts)

    def eta(self, stats: "ReplayStats", now: float) -> float | None:
        if self.speed is not None and self.end_ns and stats.last_time_ns:
            return (self.end_ns - stats.last_time_ns) / 1e9 / self.speed
        elapsed = now - self.started
        if self.total and stats.sent and elapsed > 0:
            return (self.total - stats.sent) / (stats.sent / elapsed)
        return None

    def finish(self) -> None:
        self.stream.write("\n")
        self.stream.flush()
