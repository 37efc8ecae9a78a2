"""Record the real daemon under the shim: `recorder run` fed by a publisher, then compactions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))

from meshsync_samples import sample, sample_names
from polling import wait_until
from run_helpers import Outgoing, Recorders, publish, read_records

from recorder.meshsync import CORE_SUBJECT


def sample_payloads() -> list[bytes]:
    """The real MeshSync resource events."""
    return [sample(name) for name in sample_names() if name.startswith("core-")]


def messages(count: int, start: int) -> list[Outgoing]:
    payloads = sample_payloads()
    return [
        Outgoing(CORE_SUBJECT, payloads[i % len(payloads)]) for i in range(start, start + count)
    ]


def settings(policy: str) -> dict[str, str]:
    """Small segments so it rotates, zstd, retention by count, and the given fsync policy."""
    return {
        "RECORDER_JOURNAL_SEGMENT_MAX_BYTES": "4096",
        "RECORDER_JOURNAL_COMPRESSION": "zstd",
        "RECORDER_JOURNAL_RETENTION_MAX_SEGMENTS": "4",
        "RECORDER_FSYNC": policy,
        "RECORDER_JOURNAL_FSYNC_INTERVAL": "0.05s",
    }


def run_daemon(
    recorders: Recorders, journal: Path, url: str, env: dict[str, str], count: int, *, kill: bool
) -> None:
    """One `recorder run`: publish `count` messages, wait until journaled, then kill or stop."""
    recorder = recorders.start(journal, url, subjects=[CORE_SUBJECT], env=env)
    recorder.wait_ready()
    already = recorder.written()
    publish(url, messages(count, already))
    recorder.wait_written(already + count)
    if kill:
        recorder.kill()
    else:
        assert recorder.stop() == 0, recorder.stderr()


def record_workload(recorders: Recorders, root: Path, url: str, shim: dict[str, str]) -> Path:
    """Daemon killed (fsync always), repaired, restarted (interval) and killed, restarted and
    stopped (recovering the kill itself), then a compaction and a checkpointed, pruning one."""
    journal = root / "journal"
    env = {**os.environ, **shim}
    recorder = [sys.executable, "-m", "recorder"]
    run_daemon(recorders, journal, url, {**shim, **settings("always")}, 60, kill=True)
    subprocess.run([*recorder, "repair", str(journal)], env=env, check=True, capture_output=True)
    run_daemon(recorders, journal, url, {**shim, **settings("interval")}, 60, kill=True)
    run_daemon(recorders, journal, url, {**shim, **settings("always")}, 30, kill=False)
    snapshot = str(root / "snapshot.yaml")
    for args in (
        ["compact", str(journal), "--out", snapshot],
        ["compact", str(journal), "--checkpoint", "--prune", "--out", snapshot],
    ):
        subprocess.run([*recorder, *args], env=env, check=True, capture_output=True)
    wait_until(lambda: read_records(journal), 5, "records in the journal")
    return journal
