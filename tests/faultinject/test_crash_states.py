"""Power-loss states of a journal that ran into fsync and write errors: no record twice, none lost.

The writer cuts a failed segment back to its last fsync, and writes the unsynced records again
into a fresh segment only after an fsync made that cut durable. The crash simulator (its logging
shim stacked under the fault shim, so a failed call is never logged as done) rebuilds every state
a power loss could leave around those steps; in each, recovery must keep every fsynced record and
no sequence number may appear twice (the old segment's copy and the rewritten one).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from crashsim.test_crashsim import _explore

from faultinject.faultfs import FaultyDisk

WORKLOAD = Path(__file__).with_name("workload.py")


@pytest.mark.parametrize(
    ("call", "errno_name"),
    [("fsync", "EIO"), ("writev", "ENOSPC")],
    ids=["fsync-EIO", "writev-ENOSPC"],
)
def test_crash_states_around_a_fault_keep_every_fsynced_record_once(
    faultfs_library: Path, tmp_path: Path, call: str, errno_name: str
) -> None:
    """At every fsync boundary of a writer that faults mid-run (and random points between), the recovered journal holds every fsynced record once and repeats no sequence number."""
    disk = FaultyDisk(
        faultfs_library, tmp_path / "unused", tmp_path / "faults", tmp_path / "injected"
    )

    def run(root: Path, shim: dict[str, str]) -> None:
        journal = root / "journal"
        faults = FaultyDisk(faultfs_library, journal, disk.control, disk.counts)
        env = {**os.environ, **shim, **faults.env()}
        # The fault shim first: a call it fails never reaches the logging shim.
        env["LD_PRELOAD"] = f"{faultfs_library} {shim['LD_PRELOAD']}"
        subprocess.run(
            [sys.executable, str(WORKLOAD), str(journal), "60", call, errno_name, "20", "35"],
            env=env,
            check=True,
        )

    totals, _sample = _explore(
        tmp_path, f"writer-{call}-{errno_name}", run, between=100, per_point=3
    )
    assert disk.injected()[call] > 0
    assert totals.states >= 250
