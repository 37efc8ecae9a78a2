"""Power-loss states of real recorder runs, rebuilt from their logged file-system calls, recover."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from crashsim.checker import Totals, check_state
from crashsim.oplog import build_shim, read_log, shim_env
from crashsim.states import crash_points, explore

REPORT_ENV = "CRASHSIM_REPORT"
WORKLOAD = Path(__file__).with_name("workload.py")


def _record(tmp: Path, count: int, policy: str) -> tuple[str, str, list]:
    if shutil.which("cc") is None:
        pytest.skip("no C compiler for the LD_PRELOAD shim")
    library = build_shim(tmp)
    root = tmp / "root"
    root.mkdir()
    log = tmp / "ops.log"
    env = {**os.environ, **shim_env(library, root, log)}
    journal = root / "journal"
    subprocess.run(
        [sys.executable, str(WORKLOAD), str(journal), str(count), policy], env=env, check=True
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "recorder",
            "compact",
            str(journal),
            "--checkpoint",
            "--prune",
            "--out",
            str(root / "snapshot.yaml"),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    real_root = os.path.realpath(root)
    return real_root, os.path.join(real_root, "journal"), read_log(log)


def _explore(tmp: Path, count: int, policy: str, between: int, per_point: int) -> Totals:
    seed = int(os.environ.get("CRASHSIM_SEED", random.randrange(1 << 32)))
    rng = random.Random(seed)
    root, journal, ops = _record(tmp, count, policy)
    points = crash_points(ops, rng, between)
    totals = Totals()
    into = Path("/dev/shm" if Path("/dev/shm").is_dir() else tmp) / f"crashsim-{os.getpid()}"
    try:
        for model, state in explore(root, ops, points, rng, per_point):
            check_state(model, state, root, journal, into, totals)
    finally:
        shutil.rmtree(into, ignore_errors=True)
    _report(policy, totals, len(points))
    assert not totals.failures, f"seed {seed}: " + "\n".join(totals.failures[:20])
    assert totals.lost == 0 and totals.invented == 0, f"seed {seed}"
    return totals


def _report(name: str, totals: Totals, points: int) -> None:
    path = Path(os.environ.get(REPORT_ENV, "build/reliability/crashsim.json"))
    path.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(path.read_text()) if path.exists() else {}
    results[name] = {
        "crash_points": points,
        "crash_states": totals.states,
        "acknowledged_records_checked": totals.acknowledged,
        "lost": totals.lost,
        "invented": totals.invented,
        "failures": len(totals.failures),
    }
    path.write_text(json.dumps(results, indent=2) + "\n")


@pytest.mark.parametrize("policy", ["always", "interval"])
def test_every_fsync_point_recovers(tmp_path: Path, policy: str) -> None:
    """At every fsync boundary of a rotating, compressing, pruned journal, nothing acked is lost."""
    totals = _explore(tmp_path, 60, policy, between=100, per_point=3)
    assert totals.states >= 250


@pytest.mark.slow
def test_ten_thousand_crash_states(tmp_path: Path) -> None:
    """The long run: at least 10,000 crash states, none loses or invents a record."""
    totals = _explore(tmp_path, 300, "always", between=2000, per_point=6)
    assert totals.states >= 10_000
