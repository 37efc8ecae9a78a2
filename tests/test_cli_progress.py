"""Progress on a terminal: what the replay line says, and the ETA it works out."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import pytest

from recorder.cli.progress import ReplayProgress, format_eta, wanted
from recorder.cli.replay_command import _progress
from recorder.journal.record import Incoming
from recorder.journal.writer import JournalWriter
from recorder.meshsync import CORE_SUBJECT
from recorder.replay.run import ReplayStats, Selection

T0 = 1_795_000_000 * 10**9


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def stats(sent: int, at_s: float) -> ReplayStats:
    result = ReplayStats(sent=sent, last_seq=sent + 1)
    result.first_time_ns = T0
    result.last_time_ns = T0 + int(at_s * 1e9)
    return result


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0, "0s"), (42.4, "42s"), (185, "3m05s"), (7620, "2h07m")]
)
def test_eta_is_short_and_readable(seconds: float, shown: str) -> None:
    """Seconds, minutes and seconds, or hours and minutes."""
    assert format_eta(seconds) == shown


def test_eta_at_a_speed_comes_from_the_recorded_time_left() -> None:
    """At --speed 10, 600 recorded seconds still ahead take a minute, however fast it went so far."""
    progress = ReplayProgress(total=100, end_ns=T0 + 900 * 10**9, speed=10.0, started=0.0)
    line = progress.line(stats(sent=50, at_s=300), now=5.0)
    assert line == "sent 50 of 100 (seq 51), at 2026-11-18T11:11:40.000000000Z, ETA 1m00s"


def test_eta_flat_out_comes_from_the_rate_so_far() -> None:
    """With --speed max, 30 sent in 3 s with 60 to go is 6 s more."""
    progress = ReplayProgress(total=90, speed=None, started=0.0)
    assert progress.line(stats(sent=30, at_s=1), now=3.0).endswith("ETA 6s")


def test_no_total_and_no_eta_when_neither_can_be_known() -> None:
    """Filtered, flat out: the line says what was sent and where, nothing it would have to guess."""
    progress = ReplayProgress(total=None, speed=None, started=0.0)
    assert progress.line(stats(sent=7, at_s=0), now=1.0) == (
        "sent 7 (seq 8), at 2026-11-18T11:06:40.000000000Z"
    )


def test_redrawn_in_place_at_most_ten_times_a_second() -> None:
    """Each draw rewrites the line (carriage return, clear to end); calls in between are dropped."""
    stream = _Terminal()
    progress = ReplayProgress(total=3, speed=None, stream=stream)
    progress(stats(sent=1, at_s=0))
    progress(stats(sent=2, at_s=0))  # within 0.1 s of the first: not drawn
    progress.finish()
    assert stream.getvalue().count("\r") == 1
    assert stream.getvalue().startswith("\rsent 1 of 3 (seq 2)")
    assert stream.getvalue().endswith("\033[K\n")


def test_only_a_terminal_without_quiet_gets_progress() -> None:
    """A pipe or a file never gets a progress line, nor does a terminal with --quiet."""
    assert wanted(False, _Terminal())
    assert not wanted(True, _Terminal())
    assert not wanted(False, io.StringIO())


def test_replay_progress_ends_at_the_last_segment_with_messages(tmp_path: Path) -> None:
    """A recorder restarted a day later and stopped at once leaves a segment of markers only:
    the ETA at a speed runs to the last message's time, not to a day later."""
    first = JournalWriter(tmp_path, clock=lambda: T0)
    first.open()
    first.append_messages(
        [Incoming(T0 + i * 10**9, CORE_SUBJECT, "", None, b"{}", None) for i in range(10)]
    )
    first.close()
    later = JournalWriter(tmp_path, clock=lambda: T0 + 86_400 * 10**9)
    later.open()
    later.close()
    progress = _progress(iter(()), tmp_path, Selection(), SimpleNamespace(speed=1.0))  # type: ignore[arg-type]
    assert progress.total == 10
    assert progress.end_ns == T0 + 9 * 10**9
