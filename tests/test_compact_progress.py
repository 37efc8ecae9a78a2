"""compact's progress reports as the library makes them (the bars on a terminal: see
tests/integration/test_cli_progress_tty.py)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from test_compact_cli import simulate, write_journal

from recorder.compact import run
from recorder.compact.run import CompactRequest, run_compaction


def two_cluster_journal(directory: Path) -> Path:
    """Two clusters' MeshSync traffic in three sealed segments: a snapshot of some 80 objects."""
    _sim, messages = simulate(900)
    write_journal(directory, messages, per_segment=300)
    return directory


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return two_cluster_journal(tmp_path_factory.mktemp("progress") / "journal")


@pytest.mark.parametrize("fmt", ["yaml", "json", "meshsync"])
def test_writing_progress_counts_every_object_in_batches(
    journal: Path, tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The library reports (written, total) from 0 to the total, never backwards, a batch apart."""
    monkeypatch.setattr(run, "WRITE_PROGRESS_EVERY", 16)  # several batches of a small snapshot
    told: list[tuple[int, int]] = []
    out = tmp_path / ("snaps" if fmt == "meshsync" else f"s.{fmt}")
    result = run_compaction(
        CompactRequest(journal, format=fmt, out=out),  # type: ignore[arg-type]
        writing=lambda written, total: told.append((written, total)),
    )
    total = result.objects_written
    assert total > 3 * 16
    assert told[0] == (0, total)
    assert told[-1] == (total, total)
    assert {t for _, t in told} == {total}
    steps = [b[0] - a[0] for a, b in itertools.pairwise(told)]
    assert all(0 <= step <= 16 for step in steps)
    assert len(told) > total // 16
