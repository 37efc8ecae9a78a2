"""Soak: a steady, realistic stream for a bounded time with rotation and retention active.

Flat memory means: after a warm-up, the median RSS of the last third of the samples is within
20% of the median of the first third. No fd leak means: after the warm-up the open file count
never moves more than a few (a segment being rotated, a socket being accepted). Disk use stays
within the retention bound plus one segment (the active one, which retention never deletes).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from broker import NatsServer
from faults import CountingPublisher, dir_bytes, env_int, fd_count, median, rss_bytes
from polling import wait_until
from run_helpers import Recorders, run_cli

from recorder.demo.simulator import Simulator
from recorder.journal.segment import list_segments
from recorder.meshsync import CORE_SUBJECT, REQUEST_SUBJECT, STORE_SUBJECT

SUBJECTS = [CORE_SUBJECT, REQUEST_SUBJECT, STORE_SUBJECT]
SEGMENT_MAX = 256 * 1024
RETENTION_MAX = 2 * 1024 * 1024
SOAK_LONG = env_int("RELIABILITY_SOAK_SECONDS_LONG", 600)
RATE_PER_S = 400  # a busy cluster's MeshSync stream; a realistic mix from the simulator


@pytest.mark.parametrize(
    "seconds",
    [
        pytest.param(env_int("RELIABILITY_SOAK_SECONDS", 60), id="default"),
        pytest.param(
            SOAK_LONG,
            id="long",
            marks=[pytest.mark.slow, pytest.mark.timeout(SOAK_LONG + 300)],
        ),
    ],
)
def test_soak_with_rotation_and_retention_keeps_memory_fds_and_disk_bounded(
    nats_server_factory: Callable[..., NatsServer],
    recorders: Recorders,
    tmp_path: Path,
    figures: Callable[..., None],
    seconds: int,
) -> None:
    """Under a steady simulated MeshSync stream with small segments and a byte retention bound, the recorder's memory stays flat, its file descriptors do not leak, the journal stays within the retention bound plus one segment, nothing is dropped, and the journal verifies clean at the end."""
    server = nats_server_factory()
    journal = tmp_path / "journal"
    recorder = recorders.start(
        journal,
        server.url,
        subjects=SUBJECTS,
        env={
            "RECORDER_JOURNAL_SEGMENT_MAX_BYTES": str(SEGMENT_MAX),
            "RECORDER_JOURNAL_RETENTION_MAX_BYTES": str(RETENTION_MAX),
        },
    )
    recorder.wait_ready()
    stream = list(Simulator(7).stream(5000))
    warmup = max(10, seconds // 6)
    rss: list[int] = []
    fds: list[int] = []
    disk: list[int] = []
    with CountingPublisher(
        server.url,
        lambda n: stream[n % len(stream)][0],
        rate_per_s=RATE_PER_S,
        payload=lambda n: stream[n % len(stream)][1],
    ) as publisher:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(1)
            assert recorder.alive(), recorder.stderr()[-2000:]
            rss.append(rss_bytes(recorder.pid))
            fds.append(fd_count(recorder.pid))
            disk.append(dir_bytes(journal))
        sent = publisher.stop()
    wait_until(lambda: recorder.written() == sent, 15, "every published message written")
    samples = recorder.metrics()
    assert recorder.stop() == 0

    steady_rss, steady_fds = rss[warmup:], fds[warmup:]
    third = max(1, len(steady_rss) // 3)
    first_rss, last_rss = median(steady_rss[:third]), median(steady_rss[-third:])
    assert last_rss <= 1.2 * first_rss, (
        f"RSS grew: {first_rss / 2**20:.1f} -> {last_rss / 2**20:.1f} MiB"
    )
    assert max(steady_fds) - min(steady_fds) <= 3 and steady_fds[-1] <= steady_fds[0] + 2, fds
    assert max(disk) <= RETENTION_MAX + SEGMENT_MAX, max(disk)
    assert (
        sum(
            v
            for k, v in samples.items()
            if k.startswith("meshsync_recorder_messages_dropped_total")
        )
        == 0
    )
    segments = list_segments(journal)
    assert segments[0].number > 1, "retention never deleted a segment"
    verified = run_cli("verify", str(journal))
    assert verified.returncode == 0, verified.stdout.decode()
    figures(
        seconds=seconds,
        rate_per_s=RATE_PER_S,
        published=sent,
        written=int(recorder_written(samples)),
        rss_first_third_median_mib=round(first_rss / 2**20, 1),
        rss_last_third_median_mib=round(last_rss / 2**20, 1),
        rss_max_mib=round(max(rss) / 2**20, 1),
        fds_min=min(steady_fds),
        fds_max=max(steady_fds),
        disk_max_bytes=max(disk),
        disk_bound_bytes=RETENTION_MAX + SEGMENT_MAX,
        segments_rotated=segments[-1].number - 1,
        segments_deleted_by_retention=segments[0].number - 1,
    )


def recorder_written(samples: dict[str, float]) -> float:
    return sum(
        v for k, v in samples.items() if k.startswith("meshsync_recorder_messages_written_total{")
    )
