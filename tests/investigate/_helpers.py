"""Running the CLI in this process, and the ground truth of what was published."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from recorder.cli import main
from recorder.demo.simulator import SimMessage, Simulator
from recorder.meshsync import ObjectEvent, decode, events_of


@dataclass(frozen=True)
class Recorded:
    """A journal a real recorder wrote, the simulator that made its traffic, and that traffic."""

    directory: Path
    sim: Simulator
    messages: list[SimMessage]


def cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """Run `recorder ARGS...`; (exit code, stdout, stderr without JSON log lines)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["--log-format", "json", *map(str, args)])
    captured = capsys.readouterr()
    code = exit_info.value.code
    err = "\n".join(line for line in captured.err.splitlines() if not line.startswith("{"))
    return (code if isinstance(code, int) else 0), captured.out, err


def published_events(messages: Iterable[SimMessage]) -> list[ObjectEvent]:
    """Every object event the published messages carried, in order."""
    return [event for m in messages for event in events_of(decode(m.payload, m.subject))]
