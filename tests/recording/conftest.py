"""A writer thread on a real journal, driven in-process with plain values: no broker, no child."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from recorder.journal.options import FsyncPolicy, WriterOptions
from recorder.journal.writer import JournalWriter
from recorder.recording.intake import Intake
from recorder.recording.metrics import Metrics
from recorder.recording.pump import Pump, PumpOptions

from ._helpers import JOIN_S, UNBOUNDED_BYTES, Rig


@pytest.fixture
def make_rig(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    """Build rigs whose threads are not started yet; any left running are stopped at the end."""
    rigs: list[Rig] = []

    def make(
        directory: Path | None = None,
        *,
        limit: int = 1000,
        fsync: FsyncPolicy = FsyncPolicy.ALWAYS,
        options: PumpOptions | None = None,
    ) -> Rig:
        directory = directory or tmp_path / "journal"
        metrics = Metrics()
        writer = JournalWriter(
            directory, WriterOptions(fsync=fsync), fsync_observer=metrics.observe_fsync
        )
        writer.open()
        intake = Intake(limit, UNBOUNDED_BYTES)
        rig = Rig(directory, writer, intake, metrics, Pump(writer, intake, metrics, options))
        rigs.append(rig)
        return rig

    try:
        yield make
    finally:
        for rig in rigs:
            if rig.pump.is_alive():
                rig.pump.stop()
                rig.pump.join(JOIN_S)
            elif rig.pump.ident is None:  # never started: the writer is still ours to close
                rig.writer.close()
