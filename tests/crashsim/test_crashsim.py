"""Power-loss states of real recorder runs, rebuilt from their logged file-system calls, recover."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from broker import Broker
from reports import merge_case
from run_helpers import recorders_for

from crashsim.checker import Totals, check_state, materialise
from crashsim.daemon import record_workload
from crashsim.oplog import Op, build_shim, read_log, shim_env
from crashsim.states import CrashState, crash_points, explore

REPORT_ENV = "CRASHSIM_REPORT"
WORKLOAD = Path(__file__).with_name("workload.py")
CLI_SAMPLE = 3  # states also run through the real CLI processes (each costs ~2 s of start-up)

Recording = Callable[[Path, dict[str, str]], None]


def _record(tmp: Path, run: Recording) -> tuple[str, list[Op]]:
    """Run `run(root, shim environment)`; returns the resolved root and the operations logged."""
    if shutil.which("cc") is None:
        pytest.skip("no C compiler for the LD_PRELOAD shim")
    library = build_shim(tmp)
    root = tmp / "root"
    root.mkdir()
    log = tmp / "ops.log"
    run(root, shim_env(library, root, log))
    return os.path.realpath(root), read_log(log)


def _explore(
    tmp: Path,
    name: str,
    run: Recording,
    *,
    between: int,
    per_point: int,
    checkpoint_states: bool = False,
) -> tuple[Totals, list[CrashState]]:
    seed = int(os.environ.get("CRASHSIM_SEED", random.randrange(1 << 32)))
    rng = random.Random(seed)
    root, ops = _record(tmp, run)
    journal = os.path.join(root, "journal")
    points = crash_points(ops, rng, between)
    totals = Totals()
    into = Path("/dev/shm" if Path("/dev/shm").is_dir() else tmp) / f"crashsim-{os.getpid()}"
    sample: list[CrashState] = []
    pruning = _checkpoint_phase(ops) if checkpoint_states else None
    cli_points = set(rng.sample(points, min(CLI_SAMPLE, len(points))))
    reference = None
    try:
        for model, state in explore(root, ops, points, rng, per_point):
            check_state(model, state, root, journal, into, totals)
            if pruning is not None and state.point >= pruning:
                # The journal was complete and durable when the compactions began, so every
                # state from then on must compact to the same objects, checkpoint or not.
                objects = _compacted(into / "journal", tmp / "check.yaml")
                reference = reference or objects
                totals.compactions += 1
                if objects != reference:
                    totals.failures.append(f"crash point {state.point}: compaction lost state")
            if state.point in cli_points and all(state.point != s.point for s in sample):
                sample.append(state)
    finally:
        shutil.rmtree(into, ignore_errors=True)
    _report(name, totals, len(points), seed)
    assert not totals.failures, f"seed {seed}: " + "\n".join(totals.failures[:20])
    assert totals.lost == 0 and totals.invented == 0, f"seed {seed}"
    return totals, sample


def _checkpoint_phase(ops: list[Op]) -> int:
    """Index of the first operation of the first `compact` process (it writes snapshot.yaml)."""
    pid = next(op.pid for op in ops if "snapshot.yaml" in op.path)
    return next(index for index, op in enumerate(ops) if op.pid == pid)


def _compacted(journal: Path, out: Path) -> list[str]:
    """The snapshot's documents (comment lines, which carry times and paths, left out)."""
    from recorder.compact.run import CompactRequest, run_compaction

    run_compaction(CompactRequest(directory=journal, out=out))
    lines = out.read_text().splitlines()
    return [line for line in lines if not line.startswith("#")]


def _report(name: str, totals: Totals, points: int, seed: int) -> None:
    """Merge this run's figures into the JSON report the README's figures come from."""
    path = Path(os.environ.get(REPORT_ENV, "build/reliability/crashsim.json"))
    figures = {
        "seed": seed,
        "crash_points": points,
        "crash_states": totals.states,
        "acknowledged_records_checked": totals.acknowledged,
        "lost": totals.lost,
        "invented": totals.invented,
        "compactions_compared": totals.compactions,
        "failures": len(totals.failures),
    }
    merge_case(path, name, figures)


def _writer_run(count: int, policy: str) -> Recording:
    def run(root: Path, shim: dict[str, str]) -> None:
        env = {**os.environ, **shim}
        journal = str(root / "journal")
        subprocess.run(
            [sys.executable, str(WORKLOAD), journal, str(count), policy], env=env, check=True
        )
        subprocess.run(
            [
                sys.executable,
                "-m",
                "recorder",
                "compact",
                journal,
                "--checkpoint",
                "--prune",
                "--out",
                str(root / "snapshot.yaml"),
            ],
            env=env,
            check=True,
            capture_output=True,
        )

    return run


@dataclass(frozen=True)
class Size:
    """How much a crash-state run records and explores, and the states it must reach."""

    suffix: str  # appended to the workload's name in the report
    between: int  # random crash points added to every fsync boundary
    per_point: int  # states sampled at each point
    min_states: int
    messages: int = 0  # records the writer workload appends (the daemon's workload is fixed)


WRITER_SIZES = [
    pytest.param(Size("", 100, 3, 250, messages=60), id="default"),
    pytest.param(
        Size("-long", 2000, 6, 10_000, messages=300), id="ten-thousand", marks=pytest.mark.slow
    ),
]
DAEMON_SIZES = [
    pytest.param(Size("", 200, 2, 500), id="default"),
    pytest.param(Size("-long", 4000, 4, 10_000), id="ten-thousand", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("size", WRITER_SIZES)
@pytest.mark.parametrize("policy", ["always", "interval"])
def test_writer_states_keep_every_fsynced_record(tmp_path: Path, policy: str, size: Size) -> None:
    """At every fsync boundary of a rotating, compressing, pruned journal, nothing acked is lost."""
    totals, _sample = _explore(
        tmp_path,
        f"writer-{policy}{size.suffix}",
        _writer_run(size.messages, policy),
        between=size.between,
        per_point=size.per_point,
    )
    assert totals.states >= size.min_states


@pytest.mark.parametrize("size", DAEMON_SIZES)
def test_daemon_states_keep_every_fsynced_record(
    tmp_path: Path, nats_server: Broker, size: Size
) -> None:
    """The real daemon, killed, restarted and compacted: every crash state recovers losslessly."""

    def run(root: Path, shim: dict[str, str]) -> None:
        with recorders_for(tmp_path) as recorders:
            record_workload(recorders, root, nats_server.url, shim)

    totals, sample = _explore(
        tmp_path,
        f"daemon{size.suffix}",
        run,
        between=size.between,
        per_point=size.per_point,
        checkpoint_states=True,
    )
    assert totals.states >= size.min_states
    assert len(sample) == CLI_SAMPLE
    _check_through_cli(sample, os.path.realpath(tmp_path / "root"), tmp_path / "cli")


def _check_through_cli(sample: list[CrashState], root: str, into: Path) -> None:
    """A few states through the real processes: repair-free recovery by `run` is done in-process,
    so here `verify`, `compact` and `replay --dry-run` must succeed on the recovered journal."""
    from recorder.journal.writer import JournalWriter

    for state in sample:
        materialise(state, root, into)
        journal = into / "journal"
        if not journal.is_dir():
            continue
        writer = JournalWriter(journal)
        writer.open()
        writer.close()
        for args in (
            ["verify", str(journal)],
            ["compact", str(journal), "--out", "-"],
            ["replay", str(journal), "--dry-run", "--speed", "max"],
        ):
            result = subprocess.run(
                [sys.executable, "-m", "recorder", *args], capture_output=True, check=False
            )
            assert result.returncode == 0, (
                f"crash point {state.point}: {args[0]}: {result.stderr!r}"
            )
