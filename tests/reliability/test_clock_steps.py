"""The wall clock steps back an hour and forward a day under a recording daemon.

The daemon runs with clockstep.c preloaded: its CLOCK_REALTIME is the real time plus an offset
this test changes at run time, while CLOCK_MONOTONIC is left alone. Each phase lasts until the
daemon has made a set number of interval fsyncs and age rotations (a stall fails the bounded
wait); the counts are then held against what the interval and the age allow in the time the
phase took (a storm fails that). The figures go to build/reliability/clocks.json.
"""

from __future__ import annotations

import itertools
import json
import os
import struct
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import shims
from broker import NatsServer
from run_helpers import (
    BackgroundPublisher,
    RecorderProcess,
    Recorders,
    messages_of,
    read_records,
    run_cli,
    wait_until,
)

from recorder.journal.segment import list_segments

SUBJECT = "meshery.meshsync.core"
SHIM_SOURCE = Path(__file__).with_name("clockstep.c")
REPORT = Path(
    os.environ.get(
        "CLOCKS_REPORT", Path(__file__).resolve().parents[2] / "build/reliability/clocks.json"
    )
)
SECOND = 10**9
HOUR_S = 3600
DAY_S = 24 * HOUR_S
FSYNC_INTERVAL_S = 0.2
SEGMENT_MAX_AGE_S = 1.0
RETENTION_MAX_AGE_S = 2 * HOUR_S  # longer than the step back: nothing is old enough to go
FSYNCS_PER_PHASE = 10
ROTATIONS_PER_PHASE = 3
PHASE_TIMEOUT_S = 90.0  # a stall (an hour, a day) runs into it; a loaded machine does not
STEPS = (("before any step", 0), ("stepped back 1 h", -HOUR_S), ("stepped forward 1 day", DAY_S))


@dataclass
class Phase:
    label: str
    wall_offset_s: int
    elapsed_s: float
    fsyncs: int
    fsync_intervals: float  # how many fsync intervals the phase lasted
    rotations: int
    segment_ages: float  # how many segment_max_age spans the phase lasted
    last_message_age_s: float  # /metrics at the phase's end: measured on the monotonic clock
    messages_stamped: int = 0  # journaled messages whose stamp lies in this phase's shifted time

    @property
    def fsyncs_per_interval(self) -> float:
        return round(self.fsyncs / self.fsync_intervals, 3)


class WallClock:
    """The offset file the shim maps: writing it steps the daemon's wall clock at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.write_bytes(struct.pack("q", 0))

    def step_to(self, offset_s: int) -> None:
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.pwrite(fd, struct.pack("q", offset_s * SECOND), 0)
        finally:
            os.close(fd)


def _build_shim(out_dir: Path) -> Path:
    return shims.build_shim(SHIM_SOURCE, out_dir)


def _counters(recorder: RecorderProcess) -> tuple[int, int]:
    samples = recorder.metrics()
    return (
        int(samples["meshsync_recorder_fsync_seconds_count"]),
        int(samples["meshsync_recorder_active_segment"]),
    )


def _run_phase(recorder: RecorderProcess, label: str, offset_s: int) -> Phase:
    """Wait until the daemon has fsynced and rotated enough times under this wall clock."""
    started = time.monotonic()
    fsyncs, segment = _counters(recorder)

    def enough() -> tuple[int, int] | None:
        now = _counters(recorder)
        done = now[0] - fsyncs >= FSYNCS_PER_PHASE and now[1] - segment >= ROTATIONS_PER_PHASE
        return now if done else None

    end = wait_until(enough, PHASE_TIMEOUT_S, f"fsyncs and rotations {label}", interval=0.05)
    elapsed = time.monotonic() - started
    return Phase(
        label,
        offset_s,
        round(elapsed, 3),
        end[0] - fsyncs,
        round(elapsed / FSYNC_INTERVAL_S, 3),
        end[1] - segment,
        round(elapsed / SEGMENT_MAX_AGE_S, 3),
        recorder.metrics()["meshsync_recorder_last_message_age_seconds"],
    )


def _stamped_in(stamps: list[int], since_ns: int, until_ns: int) -> int:
    return sum(1 for stamp in stamps if since_ns <= stamp < until_ns)


def _report(phases: list[Phase], results: dict[str, Any]) -> None:
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "shim": "LD_PRELOAD clock_gettime(CLOCK_REALTIME) + offset; CLOCK_MONOTONIC untouched",
        "fsync_interval_s": FSYNC_INTERVAL_S,
        "segment_max_age_s": SEGMENT_MAX_AGE_S,
        "retention_max_age_s": RETENTION_MAX_AGE_S,
        "clock_steps": [
            {"to": phase.label, "step_s": phase.wall_offset_s - previous.wall_offset_s}
            for previous, phase in itertools.pairwise(phases)
        ],
        "phases": [
            {**asdict(phase), "fsyncs_per_interval": phase.fsyncs_per_interval} for phase in phases
        ],
        **results,
    }
    REPORT.write_text(json.dumps(report, indent=2) + "\n")


def test_wall_clock_steps_change_neither_fsyncs_nor_rotations_nor_retention(
    nats_server: NatsServer,
    recorders: Recorders,
    tmp_path: Path,
) -> None:
    """While `recorder run` records from a real broker, its wall clock steps back an hour and then forward a day: interval fsyncs and age rotations go on at their pace (no stall, no storm), retention deletes nothing, each message is stamped with the stepped clock, and every published message is journaled exactly once."""
    library = _build_shim(tmp_path)
    wall = WallClock(tmp_path / "wall-offset")
    journal = tmp_path / "journal"
    recorder = recorders.start(
        journal,
        nats_server.url,
        subjects=[SUBJECT],
        fsync="interval",
        env={
            "LD_PRELOAD": str(library),
            "CLOCKSTEP_FILE": str(wall.path),
            "RECORDER_JOURNAL_FSYNC_INTERVAL": f"{FSYNC_INTERVAL_S}s",
            "RECORDER_JOURNAL_SEGMENT_MAX_AGE": f"{SEGMENT_MAX_AGE_S}s",
            "RECORDER_JOURNAL_RETENTION_MAX_AGE": f"{RETENTION_MAX_AGE_S}s",
        },
    )
    recorder.wait_ready()
    phases: list[Phase] = []
    starts: list[int] = []  # the test's own (unshifted) wall time at which each phase began
    with BackgroundPublisher(nats_server.url, SUBJECT, rate_per_s=200) as publisher:
        for label, offset_s in STEPS:
            wall.step_to(offset_s)
            starts.append(time.time_ns())
            phases.append(_run_phase(recorder, label, offset_s))
        sent = publisher.stop()
        recorder.wait_written(sent, timeout=30)
        assert recorder.stop() == 0, recorder.stderr()
    bounds = [*starts, time.time_ns()]

    records = read_records(journal)
    payloads = [int(message.payload) for message in messages_of(records)]
    stamps = [message.time_ns for message in messages_of(records)]
    for index, phase in enumerate(phases):
        shift = phase.wall_offset_s * SECOND
        phase.messages_stamped = _stamped_in(
            stamps, bounds[index] + shift, bounds[index + 1] + shift
        )
    numbers = [segment.number for segment in list_segments(journal)]
    deleted = [event for event in recorder.events() if event.get("event") == "segment_deleted"]
    verify = run_cli("verify", str(journal))
    results = {
        "published": sent,
        "journaled": len(payloads),
        "lost": len(set(range(sent)) - set(payloads)),
        "duplicates": len(payloads) - len(set(payloads)),
        "segments": len(numbers),
        "segments_deleted": len(deleted),
        "verify_clean": verify.returncode == 0,
    }
    _report(phases, results)

    assert sorted(payloads) == list(range(sent))
    assert deleted == [] and numbers == list(range(1, len(numbers) + 1))
    assert verify.returncode == 0, verify.stdout.decode() + verify.stderr.decode()
    for phase in phases:
        # At most one fsync per interval, plus the one that seals each rotated segment; at most
        # one rotation per segment age. The phase's span as the test saw it contains the
        # daemon's, so these bounds hold however loaded the machine is.
        assert phase.fsyncs <= int(phase.fsync_intervals) + 1 + phase.rotations, phase
        assert phase.rotations <= int(phase.segment_ages) + 1, phase
        assert phase.messages_stamped > 0, phase  # the step reached the daemon's stamps
        assert 0 <= phase.last_message_age_s < 30, phase
