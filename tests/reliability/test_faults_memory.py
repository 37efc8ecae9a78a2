"""Memory stays bounded under any flood: 1 MiB messages far faster than the disk, and a wildcard
subscription over thousands of distinct subjects."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import run_helpers
from broker import NatsServer
from faults import default_and_long, env_float, report_figures, slow_fsync_launcher
from run_helpers import (
    Outgoing,
    RecorderProcess,
    Recorders,
    connect,
    markers_of,
    messages_of,
    publish,
    read_records,
    wait_until,
)

from recorder.config import Config
from recorder.journal.maintenance import verify_journal
from recorder.journal.record import MarkerType
from recorder.recording.metrics import OTHER_SUBJECTS, SUBJECT_SERIES_MAX

MiB = 2**20
FLOOD = "meshery.meshsync.core"
DROPPED = "meshsync_recorder_messages_dropped_total"
WRITTEN = "meshsync_recorder_messages_written_total"
# Every fsync takes this long and `fsync: always` syncs each 4 MiB batch: a disk of ~10 MiB/s.
FSYNC_DELAY_S = 0.3
# Four times what that disk takes, and well within what the recorder reads off the socket, so
# the broker never cuts it off as a slow consumer: every loss is the recorder's own, counted.
FLOOD_MIB_PER_S = env_float("RELIABILITY_FLOOD_MIB_PER_S", 40)
# The documented bound for the default settings: the 256 MiB container limit they are sized for.
RSS_BOUND = 256 * MiB


def _family_total(samples: dict[str, float], family: str) -> int:
    return int(sum(value for key, value in samples.items() if key.startswith(family + "{")))


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def _flood(url: str, count: int, mib_per_s: float) -> None:
    """Publish `count` payloads of exactly 1 MiB (the broker's max_payload), numbered, paced."""

    async def run() -> None:
        nc = await connect(url)
        try:
            started = time.monotonic()
            for n in range(count):
                await nc.publish(FLOOD, f"{n:08d}".encode().ljust(MiB, b"."))
                await nc.flush(timeout=10)  # the broker has it: a lost one is the recorder's
                ahead = (n + 1) / mib_per_s - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)  # pacing, not synchronisation
        finally:
            await nc.close()

    asyncio.run(run())


def _settled(recorder: RecorderProcess, total: int) -> Callable[[], bool]:
    def done() -> bool:
        samples = recorder.metrics()
        return _family_total(samples, WRITTEN) + _family_total(samples, DROPPED) == total

    return done


@pytest.mark.parametrize("count", default_and_long("MEMORY_FLOOD", 240, 2400))
def test_a_flood_of_max_payload_messages_stays_under_the_memory_bound_and_marks_every_drop(
    nats_server_factory: Callable[..., NatsServer],
    recorders: Recorders,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    figures: Callable[..., None],
    count: int,
) -> None:
    """1 MiB messages at four times the disk's speed, default settings: the daemon's peak RSS (VmHWM) stays under 256 MiB, and published minus journaled equals the drops in /metrics and in the journal's DROPPED markers, exactly."""
    server = nats_server_factory(max_payload=MiB)
    journal = tmp_path / "journal"
    monkeypatch.setattr(run_helpers, "RECORDER", slow_fsync_launcher(FSYNC_DELAY_S))
    recorder = recorders.start(journal, server.url, subjects=[FLOOD], fsync="always")
    recorder.wait_ready(timeout=20)
    idle_rss_kib = _status_kib(recorder.pid, "VmRSS")
    _flood(server.url, count, FLOOD_MIB_PER_S)
    wait_until(_settled(recorder, count), 120, "every message written or counted as dropped")
    samples = recorder.metrics()
    peak_kib = _status_kib(recorder.pid, "VmHWM")
    assert recorder.stop(timeout=60) == 0

    records = read_records(journal)
    journaled = [int(m.payload[:8]) for m in messages_of(records)]
    marked = sum(int(marker.fields["count"]) for marker in markers_of(records, MarkerType.DROPPED))
    dropped = _family_total(samples, DROPPED)
    assert not markers_of(records, MarkerType.DISCONNECTED)  # no loss upstream of the recorder
    assert dropped > 0
    assert count - len(journaled) == dropped == marked
    assert samples[f'{DROPPED}{{reason="queue_full"}}'] == dropped
    assert journaled == sorted(set(journaled))
    assert all(len(m.payload) == MiB for m in messages_of(records))
    assert peak_kib * 1024 < RSS_BOUND, f"peak RSS {peak_kib} KiB"
    assert verify_journal(journal).clean
    found = {
        "payload_bytes": MiB,
        "flood_mib_per_s": FLOOD_MIB_PER_S,
        "fsync_delay_s": FSYNC_DELAY_S,
        "published": count,
        "journaled": len(journaled),
        "dropped": dropped,
        "dropped_in_markers": marked,
        "queue_max_bytes": Config.queue_max_bytes,
        "idle_rss_mib": round(idle_rss_kib / 1024, 1),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "rss_bound_mib": RSS_BOUND // MiB,
    }
    report_figures("memory", f"max_payload_flood_{count}", found)


def test_a_wildcard_over_ten_thousand_subjects_keeps_metric_series_bounded(
    nats_server_factory: Callable[..., NatsServer],
    recorders: Recorders,
    tmp_path: Path,
    figures: Callable[..., None],
) -> None:
    """10,000 distinct subjects under one wildcard, some of them dropped at a tiny queue: each subject-labelled family has at most SUBJECT_SERIES_MAX series plus one for the other subjects, and the counts still add up to what was published."""
    server = nats_server_factory()
    journal = tmp_path / "journal"
    total = 10_000
    recorder = recorders.start(
        journal,
        server.url,
        subjects=["meshery.flood.>"],
        fsync="always",  # slow enough that a 50-message queue drops some
        env={"RECORDER_QUEUE_MAX_MESSAGES": "50"},
    )
    recorder.wait_ready()
    publish(server.url, [Outgoing(f"meshery.flood.s{n}", b"x" * 64) for n in range(total)])
    wait_until(_settled(recorder, total), 60, "every message written or counted as dropped")
    response = recorder.get("/metrics")
    assert response is not None
    text = response[1]
    samples = recorder.metrics()
    assert recorder.stop() == 0

    for family in ("messages_received_total", "messages_written_total", "bytes_written_total"):
        series = [key for key in samples if key.startswith(f"meshsync_recorder_{family}{{")]
        assert len(series) <= SUBJECT_SERIES_MAX + 1, (family, len(series))
    received = f'meshsync_recorder_messages_received_total{{subject="{OTHER_SUBJECTS}"}}'
    assert samples[received] > 0
    assert _family_total(samples, "meshsync_recorder_messages_received_total") == total
    written = _family_total(samples, WRITTEN)
    assert written == len(messages_of(read_records(journal)))
    found = {
        "subjects": total,
        "dropped": _family_total(samples, DROPPED),
        "series_per_family_max": SUBJECT_SERIES_MAX + 1,
        "metric_lines": len(text.splitlines()),
        "metrics_bytes": len(text),
    }
    report_figures("memory", "wildcard_subjects", found)
