"""Time filters on a journal whose stamps go backwards: every record in the bounds, none skipped.

The rule: `--since`/`--until` (dump, replay) select each record by its own stamp, wherever it
lies in the journal, and return them in sequence order; a sealed segment is skipped only when
its footer's earliest and latest stamp show none of its records can match.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from recorder.cli import main
from recorder.journal.maintenance import verify_journal
from recorder.journal.query import Query
from recorder.journal.record import Message, Record
from recorder.journal.segment import list_segments, summarize
from recorder.log import reset_logging
from recorder.timeparse import format_time

from ._helpers import T0, FakeClock, items, open_writer, read_all, records_of, seqs

SECOND = 10**9
HOUR = 3600 * SECOND
DAY = 24 * HOUR


def _write_stepping_journal(directory: Path, *, crash: bool = False) -> None:
    """Segment 1 holds five messages a second apart from T0, then five more after the wall
    clock stepped back an hour; segment 2 five more; segment 3 five after a step a day ahead.
    With `crash`, the writer dies before sealing segment 1 (recovery seals it on reopening)."""
    wall = FakeClock()
    writer = open_writer(directory, wall, FakeClock())

    def burst() -> None:
        for _ in range(5):
            writer.append_messages(items(1, start_ns=wall.now))
            wall.advance(SECOND)

    burst()
    wall.advance(-HOUR)
    burst()
    if crash:
        writer.abandon()
        writer = open_writer(directory, wall, FakeClock())
    writer.rotate()
    burst()
    writer.rotate()
    wall.advance(DAY)
    burst()
    writer.close()


@pytest.fixture(scope="module")
def stepping_journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("stepping") / "j"
    _write_stepping_journal(directory)
    return directory


def _expected(directory: Path, query: Query) -> list[Record]:
    """The reference: every record of the journal, filtered one by one, in write order."""
    return [r for r in records_of(directory) if query.admits(r.seq, r.time_ns)]


# Bounds at, just before and just after every stamp the journal holds, and far outside.
_STAMPS = [T0 + offset + n * SECOND for offset in (0, -HOUR, DAY - HOUR) for n in range(-1, 22)]
_BOUNDS = st.none() | st.sampled_from(_STAMPS).flatmap(lambda t: st.sampled_from([t - 1, t, t + 1]))


@settings(max_examples=200, deadline=None)
@given(since=_BOUNDS, until=_BOUNDS)
def test_time_bounds_select_each_record_by_its_stamp_in_any_order(
    stepping_journal: Path, since: int | None, until: int | None
) -> None:
    """Whatever the bounds, the reader returns exactly the records stamped within them, in
    sequence order, though the stamps step back an hour and forward a day."""
    query = Query(since_ns=since, until_ns=until)
    got = records_of(stepping_journal, query=query)
    assert got == _expected(stepping_journal, query)
    assert seqs(got) == sorted(seqs(got))


def test_a_segment_holding_both_sides_of_a_step_is_never_pruned_by_its_footer(
    stepping_journal: Path,
) -> None:
    """The footer of a segment across a step back spans its earliest and latest stamp, so a
    bound between the two sides still reads it; a bound past the whole span prunes it."""
    first = list_segments(stepping_journal)[0]
    footer = summarize(first).footer
    assert footer is not None
    assert (footer.first_time_ns, footer.last_time_ns) == (
        T0 - HOUR + 5 * SECOND,
        T0 + 4 * SECOND,
    )
    records, _ = read_all(stepping_journal, query=Query(since_ns=T0 + 4 * SECOND))
    assert records[0][0].segment == 1 and records[0][1].time_ns == T0 + 4 * SECOND
    _, stats = read_all(stepping_journal, query=Query(since_ns=T0 + 5 * SECOND, until_ns=T0 + HOUR))
    assert stats.segments_skipped == 3  # nothing of the journal lies in that hour


def test_recovery_seals_a_crashed_segment_with_its_earliest_and_latest_stamp(
    tmp_path: Path,
) -> None:
    """A segment left unsealed across a step back is sealed at restart with a footer spanning
    all its stamps, so no time filter skips its records and verify finds nothing wrong."""
    directory = tmp_path / "j"
    with capture_logs():
        _write_stepping_journal(directory, crash=True)
    footer = summarize(list_segments(directory)[0]).footer
    assert footer is not None
    assert (footer.first_time_ns, footer.last_time_ns) == (T0 - HOUR + 5 * SECOND, T0 + 4 * SECOND)
    for since in (T0, T0 + 4 * SECOND, T0 - HOUR + 5 * SECOND):
        query = Query(since_ns=since, until_ns=since + SECOND)
        assert records_of(directory, query=query) == _expected(directory, query)
        assert _expected(directory, query)
    assert verify_journal(directory).clean


@pytest.fixture
def _restore_logging() -> Iterator[None]:
    """The CLI points logging at capsys' stderr, which is gone after the test."""
    yield
    reset_logging()


@pytest.mark.usefixtures("_restore_logging")
def test_dump_until_a_time_before_the_step_returns_the_records_stamped_after_it(
    stepping_journal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`recorder dump --until` half an hour before T0 prints the ten messages written after the
    step back (they come later in the journal than messages stamped T0 and on), no others."""
    capsys.readouterr()
    until = format_time(T0 - HOUR // 2)
    with pytest.raises(SystemExit) as exit_info:
        main(["--log-format", "json", "dump", str(stepping_journal), "--until", until])
    assert exit_info.value.code in (0, None)
    lines = capsys.readouterr().out.splitlines()
    query = Query(until_ns=T0 - HOUR // 2)
    expected = [r for r in _expected(stepping_journal, query) if isinstance(r, Message)]
    assert len(lines) == len(expected) == 10
    assert [json.loads(line)["seq"] for line in lines] == seqs(expected)
