"""JetStream mode under injected fsync and write errors, a slow disk and broker restarts: judged by
the broker's stream sequence numbers against the journal, nothing acked is lost or doubled."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from broker import NatsServer
from faults import StreamPublisher
from run_helpers import RecorderProcess, Recorders, connect, messages_of, read_records, wait_until

from faultinject.faultfs import FaultyDisk
from faultinject.report import report
from faultinject.test_core_faults import CASES, ERRNO_TEXT, not_writable, rewritten, total
from recorder.journal.maintenance import verify_journal

CORE = "meshery.meshsync.core"
STREAM = "MESHSYNC_FAULTS"
ENV = {
    "RECORDER_JETSTREAM_CREATE_STREAM": "true",
    "RECORDER_JETSTREAM_STREAM": STREAM,
    "RECORDER_JETSTREAM_BATCH": "50",
    # Shorter than the faults: acks come late, deliveries time out, redeliveries come back.
    "RECORDER_JETSTREAM_ACK_WAIT": "1s",
    "RECORDER_JOURNAL_SEGMENT_MAX_BYTES": "32KiB",
    "RECORDER_JOURNAL_FSYNC_INTERVAL": "0.05s",
}
REDELIVERED = "meshsync_recorder_redeliveries_recognised_total"


def consumer(url: str) -> Any:
    """The recorder's durable consumer as the broker sees it (ConsumerInfo)."""

    async def run() -> Any:
        nc = await connect(url)
        try:
            return await nc.jsm().consumer_info(STREAM, "meshsync-recorder")
        finally:
            await nc.close()

    return asyncio.run(run())


def settled(url: str) -> bool:
    info = consumer(url)
    return bool(info.num_pending == 0 and info.num_ack_pending == 0)


def journaled(journal: Path) -> Counter[int]:
    """How many times each stream sequence is in the journal."""
    return Counter(m.stream_seq for m in messages_of(read_records(journal)) if m.stream_seq)


def acked_are_journaled(url: str, journal: Path, acked: dict[int, bytes]) -> int:
    """Check that every message the consumer's ack floor covers is in the journal, durable:
    the recorder acks only after the fsync. Returns the ack floor."""
    floor = int(consumer(url).ack_floor.stream_seq)
    held = journaled(journal)
    missing = [seq for seq in acked if seq <= floor and not held[seq]]
    assert not missing, f"acked before durable: {missing[:10]}"
    return floor


def check_exactly_once(journal: Path, acked: dict[int, bytes]) -> dict[str, int]:
    counts = journaled(journal)
    messages = messages_of(read_records(journal))
    lost = len([seq for seq in acked if not counts[seq]])
    duplicated = sum(count - 1 for count in counts.values() if count > 1)
    invented = len([seq for seq in counts if seq not in acked])
    assert lost == duplicated == invented == 0, (lost, duplicated, invented)
    assert all(m.payload == acked[m.stream_seq] for m in messages if m.stream_seq is not None)
    assert verify_journal(journal).clean
    return {
        "acknowledged_records_checked": len(acked),
        "lost": lost,
        "duplicated": duplicated,
        "invented": invented,
    }


def start(
    recorders: Recorders, journal: Path, url: str, disk: FaultyDisk, **env: str
) -> RecorderProcess:
    recorder = recorders.start(
        journal, url, subjects=[CORE], mode="jetstream", env={**ENV, **disk.env(), **env}
    )
    recorder.wait_ready(timeout=20)
    return recorder


@pytest.mark.parametrize(("call", "errno_name"), CASES)
def test_jetstream_mode_acks_only_durable_messages_through_write_and_fsync_errors(
    nats_server_factory: Callable[..., NatsServer],
    recorders: Recorders,
    faulty_disk: Callable[[Path], FaultyDisk],
    tmp_path: Path,
    call: str,
    errno_name: str,
) -> None:
    """While the real `call` fails with `errno_name` the JetStream consumer acks nothing that is not fsynced in the journal, /readyz is 503 naming the error and nothing is dropped; once the fault clears every stream message is journaled exactly once, judged by stream sequence."""
    server = nats_server_factory(jetstream=True)
    journal = tmp_path / "journal"
    disk = faulty_disk(journal)
    with StreamPublisher(server.url, STREAM, CORE, rate_per_s=500, limit=1500) as publisher:
        wait_until(lambda: publisher.acked, 10, "the stream to exist")
        recorder = start(recorders, journal, server.url, disk)
        recorder.wait_written(100)
        disk.inject(**{call: errno_name})
        body = wait_until(lambda: not_writable(recorder), 20, "/readyz to report the fault")
        wait_until(lambda: disk.injected()[call] >= 5, 20, f"5 injected {call} errors")
        acked_are_journaled(server.url, journal, publisher.acked)
        assert not_writable(recorder), "ready again while the disk still fails"
        disk.clear()
        recorder.wait_ready(timeout=20)
        acked = publisher.join(60)
    wait_until(lambda: recorder.written() == len(acked), 60, "every stream message journaled")
    wait_until(lambda: settled(server.url), 30, "everything acked")
    samples = recorder.metrics()
    assert recorder.stop(timeout=30) == 0
    figures = check_exactly_once(journal, acked)
    assert total(samples, "meshsync_recorder_messages_dropped_total") == 0
    assert ERRNO_TEXT[errno_name] in body, body
    injected = disk.injected()
    report(
        f"jetstream/{call}-{errno_name}",
        {
            "mode": "jetstream",
            "fault": f"{call} {errno_name}",
            "injected_fsync_errors": injected["fsync"],
            "injected_write_errors": injected["write"] + injected["writev"],
            "published": len(acked),
            "rewritten_from_memory": rewritten(recorder),
            "redeliveries_recognised": int(samples[REDELIVERED]),
            **figures,
        },
    )


def test_jetstream_stop_during_a_fault_naks_and_the_next_run_records_each_message_once(
    nats_server_factory: Callable[..., NatsServer],
    recorders: Recorders,
    faulty_disk: Callable[[Path], FaultyDisk],
    tmp_path: Path,
) -> None:
    """Stopped while every fsync fails, the recorder naks the batch it could not make durable and exits 0; the next run, on a healthy disk, journals each stream message once: the nakked ones are redelivered and written, none twice."""
    server = nats_server_factory(jetstream=True)
    journal = tmp_path / "journal"
    disk = faulty_disk(journal)
    with StreamPublisher(server.url, STREAM, CORE, limit=50) as publisher:
        publisher.join(30)
    first = start(recorders, journal, server.url, disk)
    wait_until(lambda: settled(server.url), 20, "the first 50 acked")
    disk.inject(fsync="EIO")
    with StreamPublisher(server.url, STREAM, CORE, limit=200) as more:
        acked = {**publisher.acked, **more.join(30)}
    wait_until(lambda: not_writable(first), 20, "/readyz to report the fault")
    wait_until(lambda: consumer(server.url).num_ack_pending > 0, 20, "a batch in hand")
    acked_are_journaled(server.url, journal, acked)
    first.send(signal.SIGTERM)
    assert first.wait_exit(40) == 0
    nak = first.wait_event("jetstream_batch_not_durable_nak")
    assert nak["count"] > 0
    injected = disk.injected()
    disk.clear()

    second = start(recorders, journal, server.url, disk)
    wait_until(lambda: settled(server.url), 30, "everything acked by the second run")
    samples = second.metrics()
    assert second.stop() == 0
    figures = check_exactly_once(journal, acked)
    report(
        "jetstream/stop-during-fsync-EIO",
        {
            "mode": "jetstream",
            "fault": "fsync EIO, stopped during it, restarted",
            "injected_fsync_errors": injected["fsync"],
            "injected_write_errors": injected["write"] + injected["writev"],
            "published": len(acked),
            "nakked": int(nak["count"]),
            "redeliveries_recognised": int(samples[REDELIVERED]),
            **figures,
        },
    )


def test_jetstream_consumer_over_a_slow_disk_and_broker_restarts_records_each_message_once(
    nats_server_factory: Callable[..., NatsServer],
    recorders: Recorders,
    faulty_disk: Callable[[Path], FaultyDisk],
    tmp_path: Path,
) -> None:
    """With every fsync of the journal delayed past the consumer's ack wait and the broker killed and restarted twice mid-consumption, the late acks and the lost ones bring redeliveries, which are recognised by stream sequence: each stream message is journaled exactly once."""
    server = nats_server_factory(jetstream=True)
    journal = tmp_path / "journal"
    disk = faulty_disk(journal)
    with StreamPublisher(server.url, STREAM, CORE, limit=1500) as publisher:
        acked = publisher.join(60)
    disk.inject(fsync_delay_ms=1200)  # longer than ack_wait (1 s)
    recorder = start(recorders, journal, server.url, disk, RECORDER_JOURNAL_FSYNC="always")
    progress = 0
    for _restart in range(2):
        wait_until(lambda progress=progress: recorder.written() > progress + 50, 60, "progress")
        server.restart(kill=True)
        progress = recorder.written()
    disk.clear()
    wait_until(lambda: recorder.written() == len(acked), 90, "every stream message journaled")
    wait_until(lambda: settled(server.url), 30, "everything acked")
    samples = recorder.metrics()
    assert recorder.stop(timeout=30) == 0
    figures = check_exactly_once(journal, acked)
    assert (
        samples['meshsync_recorder_fsync_seconds_bucket{le="1.0"}']
        < samples["meshsync_recorder_fsync_seconds_count"]
    ), "the shim did not slow the fsyncs"
    report(
        "jetstream/slow-fsync-and-broker-restarts",
        {
            "mode": "jetstream",
            "fault": "fsync delayed 1.2 s (ack wait 1 s), broker killed twice",
            "injected_fsync_errors": 0,
            "injected_write_errors": 0,
            "published": len(acked),
            "redeliveries_recognised": int(samples[REDELIVERED]),
            "reconnects": int(samples["meshsync_recorder_reconnects_total"]),
            **figures,
        },
    )
