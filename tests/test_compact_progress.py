"""`recorder compact` progress: segments read, then objects written, on a terminal only."""

from __future__ import annotations

import itertools
import json
import os
import select
import subprocess
import sys
from pathlib import Path

import pytest
from test_compact_cli import simulate, write_journal

from recorder.compact import run
from recorder.compact.run import CompactRequest, run_compaction

SCRIPT = str(Path(sys.executable).with_name("recorder"))
WAIT_S = 120.0  # a bound on a hung child, never a measurement


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two clusters' MeshSync traffic in three sealed segments."""
    directory = tmp_path_factory.mktemp("progress") / "journal"
    _sim, messages = simulate(900)
    write_journal(directory, messages, per_segment=300)
    return directory


def read_terminal(primary: int) -> bytes:
    """Everything written to a pseudo-terminal until its last writer closes it."""
    shown = bytearray()
    while True:
        ready, _, _ = select.select([primary], [], [], WAIT_S)
        assert ready, f"nothing on the terminal for {WAIT_S} s: {bytes(shown)!r}"
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # EIO: every writer has closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    return bytes(shown)


def compact(*args: str | Path, stderr_on_terminal: bool) -> tuple[int, dict[str, object], str]:
    """Run the console script with `-o json`; (exit code, its document, what stderr showed)."""
    argv = [SCRIPT, "compact", *map(str, args), "-o", "json"]
    if not stderr_on_terminal:
        done = subprocess.run(argv, capture_output=True, timeout=WAIT_S, check=False)
        return done.returncode, json.loads(done.stdout), done.stderr.decode()
    primary, secondary = os.openpty()
    try:
        with subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=secondary
        ) as process:
            os.close(secondary)
            shown = read_terminal(primary)
            out = process.stdout.read() if process.stdout else b""
            code = process.wait(timeout=WAIT_S)
    finally:
        os.close(primary)
    return code, json.loads(out), shown.decode()


def test_a_terminal_sees_reading_then_writing_with_positions(journal: Path, tmp_path: Path) -> None:
    """On a terminal, the segments read and then the objects written are drawn, each to its end."""
    code, document, shown = compact(journal, "--out", tmp_path / "s.yaml", stderr_on_terminal=True)
    assert code == 0, shown
    written = document["objects"]["written"]  # type: ignore[index]
    assert written > 0
    assert "reading segments" in shown
    assert "3/3" in shown
    assert shown.index("reading segments") < shown.index("writing objects")
    assert f"{written}/{written}" in shown


def test_a_merge_shows_the_writing_phase(journal: Path, tmp_path: Path) -> None:
    """Merged journals have no reading bar (their records interleave), but writing is shown."""
    code, document, shown = compact(
        journal, journal, "--format", "json", "--out", tmp_path / "s.json", stderr_on_terminal=True
    )
    assert code == 0, shown
    written = document["objects"]["written"]  # type: ignore[index]
    assert "reading segments" not in shown
    assert "writing objects" in shown and f"{written}/{written}" in shown


@pytest.mark.parametrize(
    ("quiet", "terminal"), [(True, True), (False, False)], ids=["quiet", "pipe"]
)
def test_no_progress_with_quiet_or_off_a_terminal(
    journal: Path, tmp_path: Path, quiet: bool, terminal: bool
) -> None:
    """`--quiet` on a terminal, or stderr on a pipe: no bar, no carriage return."""
    flags = ["--quiet"] if quiet else []
    code, _, shown = compact(
        journal, "--out", tmp_path / "s.yaml", *flags, stderr_on_terminal=terminal
    )
    assert code == 0, shown
    assert "segments" not in shown
    assert "writing" not in shown
    assert "\r" not in shown.replace("\r\n", "\n")  # a terminal turns each \n into \r\n


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
