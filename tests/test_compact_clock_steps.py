"""`compact --until TIME` on a journal whose stamps go backwards: a cut in sequence order.

The rule: the state as of TIME is the journal's prefix up to the first record stamped after
TIME. Later records stamped earlier (the wall clock stepped back) are not folded in over the
ones left out, and a checkpoint never covers records it did not apply, so the next compaction
takes them all: nothing is skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_streams import human_lines

from recorder.cli import main
from recorder.demo.simulator import SimMessage, Simulator
from recorder.journal.options import WriterOptions
from recorder.journal.record import Incoming
from recorder.journal.writer import JournalWriter
from recorder.log import reset_logging
from recorder.timeparse import format_time

SECOND = 10**9
HOUR = 3600 * SECOND
T0 = 1_700_000_000 * SECOND
COUNT = 1200
STEP_AT = 800  # messages before the wall clock steps back an hour
CUT_AT = 400  # --until lies just before this message's stamp


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI points logging at capsys' stderr, which is gone after the test."""
    yield
    reset_logging()


class _Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def _stamped(messages: list[SimMessage]) -> list[Incoming]:
    """Ten milliseconds apart from T0; from STEP_AT on, an hour earlier."""
    return [
        Incoming(
            T0 + index * SECOND // 100 - (HOUR if index >= STEP_AT else 0),
            message.subject,
            "",
            None,
            message.payload,
            None,
        )
        for index, message in enumerate(messages)
    ]


def _journal(directory: Path, incoming: list[Incoming]) -> None:
    """One run, a segment per 300 messages; markers stamped like the messages around them."""
    clock = _Clock(incoming[0].time_ns)
    writer = JournalWriter(directory, WriterOptions(), clock=clock)
    writer.open()
    for start in range(0, len(incoming), 300):
        if start:
            writer.rotate()
        batch = incoming[start : start + 300]
        writer.append_messages(batch)
        clock.now = min(clock.now, batch[-1].time_ns)
    writer.close()


def _compact(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[list[str], Path]:
    """Run `recorder compact --format json`; its summary lines and the snapshot's base path."""
    out = Path(str(args[0]) + ".json")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(
            ["--log-format", "console", "compact", "--format", "json", "--out", str(out)]
            + [str(arg) for arg in args]
        )
    err = capsys.readouterr().err
    assert exit_info.value.code in (0, None), err
    return human_lines(err), out


def _items(out: Path) -> list[object]:
    """Every object of the snapshot (one file per cluster when there are several)."""
    files = [out] if out.exists() else sorted(out.parent.glob(out.stem + ".*.json"))
    assert files, out
    return [item for path in files for item in json.loads(path.read_bytes())["items"]]


def test_until_time_cuts_at_the_first_record_stamped_after_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With stamps that step back, `--until TIME` gives the state of the prefix before the first
    record stamped after TIME, not a pick of records stamped before it from all over the journal,
    and says where it stopped."""
    incoming = _stamped(list(Simulator(7).events(COUNT)))
    _journal(tmp_path / "stepping", incoming)
    _journal(tmp_path / "prefix", incoming[:CUT_AT])
    until = format_time(incoming[CUT_AT].time_ns - 1)
    summary, cut = _compact(capsys, tmp_path / "stepping", "--until", until)
    _, prefix = _compact(capsys, tmp_path / "prefix")
    assert _items(cut) == _items(prefix)
    stopped = [line for line in summary if line.startswith("--until: stopped before seq")]
    assert stopped == [
        f"--until: stopped before seq {CUT_AT + 2}, stamped {format_time(incoming[CUT_AT].time_ns)}"
    ]


def test_a_checkpoint_up_to_a_time_leaves_nothing_behind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A checkpoint made with `--until TIME` on stamps that step back, then continued without a
    bound, ends in the same state as one compaction of the whole journal: no record skipped."""
    incoming = _stamped(list(Simulator(7).events(COUNT)))
    _journal(tmp_path / "stepping", incoming)
    until = format_time(incoming[CUT_AT].time_ns - 1)
    _compact(capsys, tmp_path / "stepping", "--until", until, "--checkpoint")
    summary, resumed = _compact(capsys, tmp_path / "stepping", "--checkpoint")
    assert any("resuming after seq" in line for line in summary)
    _journal(tmp_path / "whole", incoming)
    _, whole = _compact(capsys, tmp_path / "whole")
    assert _items(resumed) == _items(whole)
