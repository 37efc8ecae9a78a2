"""Progress on the terminal: replay's sent of total, the recorded time reached and an ETA;
compact's segments read, then objects written.

Drawn on stderr, one line rewritten in place; never when stderr is not a terminal, nor with
--quiet (the caller decides, see `wanted`).
"""

import sys
import time
from typing import TYPE_CHECKING, TextIO

from recorder.timeparse import format_time

if TYPE_CHECKING:
    from typer._click._termui_impl import ProgressBar

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


class CompactProgress:
    """Two bars on stderr, one after the other: segments read, then objects written, each with
    its position and an ETA. The writing bar opens when the library says how many objects it
    will write; the reading bar (none for a merge, whose journals are read interleaved) closes
    then. Used as a context manager, so an error leaves the terminal on a fresh line.
    """

    def __init__(self, segments: int | None, stream: TextIO | None = None) -> None:
        self.segments = segments
        self.stream = stream or sys.stderr
        self._bar: ProgressBar[int] | None = None
        self._writing = False
        self._written = 0

    def __enter__(self) -> "CompactProgress":
        if self.segments is not None:
            self._open("reading segments", self.segments)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._close()

    def read(self, _segment: int) -> None:
        """Reading has reached the next segment."""
        if self._bar is not None and not self._writing:
            self._bar.update(1)

    def write(self, written: int, total: int) -> None:
        """`written` of the snapshot's `total` objects are written."""
        if not self._writing:
            self._close()
            self._writing = True
            self._open("writing objects", total)
        assert self._bar is not None
        self._bar.update(written - self._written)
        self._written = written

    def _open(self, label: str, length: int) -> None:
        import typer

        self._bar = typer.progressbar(
            length=length, label=label, show_pos=True, show_eta=True, file=self.stream
        )
        self._bar.__enter__()  # draws it at 0

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)  # ends its line
            self._bar = None
