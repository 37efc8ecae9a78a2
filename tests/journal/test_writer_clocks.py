"""The writer's two clocks: intervals on the monotonic one, stamps (and only stamps) on the wall."""

from __future__ import annotations

from pathlib import Path

from recorder.journal.maintenance import verify_journal
from recorder.journal.options import FsyncPolicy, WriterOptions
from recorder.journal.record import MarkerType
from recorder.journal.retention import RetentionPolicy, SteadyNow
from recorder.journal.segment import list_segments, summarize
from recorder.journal.writer import JournalWriter

from ._helpers import INSTANCE, FakeClock, items, markers, open_writer, records_of

SECOND = 10**9
HOUR = 3600 * SECOND
DAY = 24 * HOUR


def _clocks() -> tuple[FakeClock, FakeClock]:
    """A wall clock and a monotonic clock; `tick` moves both, a step moves the wall alone."""
    return FakeClock(), FakeClock(now=5 * SECOND)


def _tick(wall: FakeClock, monotonic: FakeClock, ns: int) -> None:
    wall.advance(ns)
    monotonic.advance(ns)


def _fsync_counting_writer(
    directory: Path, wall: FakeClock, monotonic: FakeClock
) -> tuple[JournalWriter, list[float]]:
    calls: list[float] = []
    writer = JournalWriter(
        directory,
        WriterOptions(fsync=FsyncPolicy.INTERVAL, fsync_interval_ns=SECOND),
        clock=wall,
        monotonic=monotonic,
        instance_id=INSTANCE,
        fsync_observer=calls.append,
    )
    writer.open()
    return writer, calls


def test_fsync_interval_is_kept_when_the_wall_clock_steps_back(tmp_path: Path) -> None:
    """A wall clock stepped back an hour neither stalls the interval fsync nor adds one."""
    wall, monotonic = _clocks()
    writer, calls = _fsync_counting_writer(tmp_path / "j", wall, monotonic)
    wall.advance(-HOUR)
    writer.append_messages(items(1, start_ns=wall.now))
    assert calls == []  # the step is not an interval
    monotonic.advance(SECOND)
    writer.append_messages(items(1, start_ns=wall.now))
    assert len(calls) == 1  # due one interval later, not an hour later
    writer.close()


def test_fsync_interval_is_kept_when_the_wall_clock_steps_forward(tmp_path: Path) -> None:
    """A wall clock stepped forward a day does not make an fsync due early."""
    wall, monotonic = _clocks()
    writer, calls = _fsync_counting_writer(tmp_path / "j", wall, monotonic)
    for _ in range(3):
        wall.advance(DAY)
        writer.append_messages(items(1, start_ns=wall.now))
    assert calls == []
    monotonic.advance(SECOND)
    writer.sync_if_due()
    assert len(calls) == 1
    writer.close()


def test_segment_age_follows_the_monotonic_clock_only(tmp_path: Path) -> None:
    """Rotation by age neither storms after a step forward nor stalls after a step back."""
    wall, monotonic = _clocks()
    writer = open_writer(tmp_path / "j", wall, monotonic, segment_max_age_ns=10 * SECOND)
    writer.append_messages(items(1, start_ns=wall.now))
    wall.advance(DAY)
    assert writer.rotate_if_old() is False  # no storm
    wall.advance(-DAY - HOUR)
    monotonic.advance(10 * SECOND)
    assert writer.rotate_if_old() is True  # no stall
    writer.append_messages(items(1, start_ns=wall.now))
    monotonic.advance(10 * SECOND - 1)
    assert writer.rotate_if_old() is False
    monotonic.advance(1)
    assert writer.rotate_if_old() is True
    writer.close()
    assert [s.number for s in list_segments(tmp_path / "j")] == [1, 2, 3]


def test_stamps_follow_the_wall_clock_and_footers_cover_a_step_back(tmp_path: Path) -> None:
    """Markers and segment headers carry the wall clock, stepped or not; the footer's time range
    spans the earliest and latest stamp, not the first and last record's."""
    wall, monotonic = _clocks()
    writer = open_writer(tmp_path / "j", wall, monotonic)
    start = wall.now
    writer.append_messages(items(2, start_ns=start))
    wall.advance(-HOUR)
    writer.append_marker(MarkerType.NOTE, {"text": "after the step"})
    writer.append_messages(items(2, start_ns=wall.now))
    writer.rotate()
    writer.close()
    first, second = list_segments(tmp_path / "j")
    footer = summarize(first).footer
    assert footer is not None
    assert (footer.first_time_ns, footer.last_time_ns) == (start - HOUR, start + 1_000)
    header = summarize(second).header
    assert header is not None and header.created_ns == start - HOUR
    note = [m for m in markers(records_of(tmp_path / "j")) if m.type is MarkerType.NOTE]
    assert [m.time_ns for m in note] == [start - HOUR]
    assert verify_journal(tmp_path / "j").clean


def _sealed_segments(writer: JournalWriter, wall: FakeClock, count: int) -> None:
    for _ in range(count):
        writer.append_messages(items(3, start_ns=wall.now))
        writer.rotate()
    writer.wait_background()


def test_retention_by_age_survives_the_wall_clock_stepping_a_day_ahead(tmp_path: Path) -> None:
    """A wall clock stepped forward a day deletes nothing by age; once the monotonic clock has
    seen the bound pass too, the old segments go."""
    wall, monotonic = _clocks()
    policy = RetentionPolicy(max_age_ns=HOUR)
    writer = open_writer(tmp_path / "j", wall, monotonic, retention=policy)
    _sealed_segments(writer, wall, 3)
    wall.advance(DAY)
    assert writer.apply_retention() == []
    assert len(list_segments(tmp_path / "j")) == 4
    monotonic.advance(HOUR + SECOND)
    assert len(writer.apply_retention()) == 3
    writer.close()


def test_retention_by_age_waits_out_a_step_back(tmp_path: Path) -> None:
    """After the wall clock steps back an hour, a segment is deleted an hour late, never early."""
    wall, monotonic = _clocks()
    policy = RetentionPolicy(max_age_ns=HOUR)
    writer = open_writer(tmp_path / "j", wall, monotonic, retention=policy)
    _sealed_segments(writer, wall, 1)
    wall.advance(-HOUR)
    _tick(wall, monotonic, HOUR + SECOND)
    assert writer.apply_retention() == []  # the wall says it is only a second old
    _tick(wall, monotonic, HOUR)
    assert len(writer.apply_retention()) == 1
    writer.close()


def test_steady_now_is_the_smaller_of_the_wall_and_the_started_wall_plus_elapsed() -> None:
    """SteadyNow ignores forward steps of the wall clock and follows backward ones."""
    wall, monotonic = _clocks()
    now = SteadyNow(wall, monotonic)
    start = wall.now
    _tick(wall, monotonic, SECOND)
    assert now() == start + SECOND
    wall.advance(DAY)
    assert now() == start + SECOND
    wall.advance(-DAY - HOUR)
    assert now() == start + SECOND - HOUR
