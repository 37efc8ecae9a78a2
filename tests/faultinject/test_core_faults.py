"""Core NATS mode under injected EIO and ENOSPC from the real fsync, write and writev calls."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from broker import NatsServer
from faults import CountingPublisher
from run_helpers import (
    Outgoing,
    RecorderProcess,
    Recorders,
    assert_seqs_increase,
    markers_of,
    messages_of,
    publish,
    read_records,
    run_cli,
    wait_until,
)

from faultinject.faultfs import FaultyDisk
from faultinject.report import report
from recorder.journal.maintenance import verify_journal
from recorder.journal.record import MarkerType

CORE = "meshery.meshsync.core"
DROPPED = "meshsync_recorder_messages_dropped_total"
WRITTEN = "meshsync_recorder_messages_written_total"
# Small segments, so rotations (sealing, creating the next) run into the faults too; frequent
# fsyncs, so a fault finds both fsynced and unsynced records in the live segment.
ENV = {"RECORDER_JOURNAL_SEGMENT_MAX_BYTES": "32KiB", "RECORDER_JOURNAL_FSYNC_INTERVAL": "0.05s"}
ERRNO_TEXT = {"EIO": "Input/output error", "ENOSPC": "No space left on device"}
CASES = [
    pytest.param("fsync", "EIO", id="fsync-EIO"),
    pytest.param("fsync", "ENOSPC", id="fsync-ENOSPC"),
    pytest.param("writev", "EIO", id="writev-EIO"),
    pytest.param("writev", "ENOSPC", id="writev-ENOSPC"),
    pytest.param("write", "ENOSPC", id="write-ENOSPC"),  # the segment header: every rotation
]


def payload(n: int) -> bytes:
    return f"{n:08d}".encode().ljust(200, b".")


def total(samples: dict[str, float], name: str) -> int:
    return int(sum(value for key, value in samples.items() if key.startswith(name + "{")))


def accounted(samples: dict[str, float]) -> int:
    """Messages counted as written or as dropped, or still queued."""
    queued = samples["meshsync_recorder_queue_depth"]
    return int(total(samples, WRITTEN) + total(samples, DROPPED) + queued)


def journal_bytes(journal: Path) -> int:
    return sum(path.stat().st_size for path in journal.glob("*.seg"))


def not_writable(recorder: RecorderProcess) -> str | None:
    """The /readyz body while it reports the journal not writable, else None."""
    response = recorder.get("/readyz")
    if response and response[0] == 503 and "journal not writable" in response[1]:
        return response[1]
    return None


def rewritten(recorder: RecorderProcess) -> int:
    """Records the writer wrote again from memory after the faults."""
    return sum(
        int(event.get("rewritten", 0))
        for event in recorder.events()
        if event.get("event") == "journal_resumed"
    )


def ride_out_fault(
    recorder: RecorderProcess, disk: FaultyDisk, call: str, errno_name: str, retries: int
) -> str:
    """Inject the fault, wait until /readyz reports it and the writer failed `retries` times
    more, clear it and wait until ready again; returns the /readyz body seen during it."""
    disk.inject(**{call: errno_name})
    body: str = wait_until(lambda: not_writable(recorder), 20, "/readyz to report the fault")
    wait_until(lambda: disk.injected()[call] >= retries, 20, f"{retries} injected {call} errors")
    assert recorder.alive()
    assert not_writable(recorder), "ready again while the disk still fails"
    disk.clear()
    recorder.wait_ready(timeout=20)
    return body


@pytest.mark.parametrize(("call", "errno_name"), CASES)
def test_core_mode_write_and_fsync_errors_lose_nothing_counted_and_invent_nothing(
    nats_server_factory: Callable[..., NatsServer],
    recorders: Recorders,
    faulty_disk: Callable[[Path], FaultyDisk],
    tmp_path: Path,
    call: str,
    errno_name: str,
) -> None:
    """While the real `call` on the segments fails with `errno_name`, the daemon stays up and /readyz is 503 naming the error; once it clears it is ready by itself and records again; in the end every message counted as written is in the journal exactly once, every dropped one is counted, marked and absent, and nothing else appears."""
    server = nats_server_factory()
    journal = tmp_path / "journal"
    disk = faulty_disk(journal)
    recorder = recorders.start(journal, server.url, subjects=[CORE], env={**ENV, **disk.env()})
    recorder.wait_ready()
    with CountingPublisher(server.url, CORE, rate_per_s=500, payload=payload) as publisher:
        recorder.wait_written(100)
        body = ride_out_fault(recorder, disk, call, errno_name, retries=5)
        resumed_at = recorder.written()
        recorder.wait_written(resumed_at + 100, timeout=20)
        sent = publisher.stop()
    samples = wait_until(
        lambda: (
            (m := recorder.metrics())["meshsync_recorder_queue_depth"] == 0
            and accounted(m) == sent
            and m
        ),
        20,
        "every message written or counted as dropped",
    )
    assert recorder.stop() == 0
    written, dropped = total(samples, WRITTEN), total(samples, DROPPED)
    figures = check_journal(journal, sent, written, dropped)
    assert ERRNO_TEXT[errno_name] in body, body
    if call == "fsync":
        assert rewritten(recorder) > 0, "no unsynced record was written again"
    injected = disk.injected()
    report(
        f"core/{call}-{errno_name}",
        {
            "mode": "core",
            "fault": f"{call} {errno_name}",
            "injected_fsync_errors": injected["fsync"],
            "injected_write_errors": injected["write"] + injected["writev"],
            "published": sent,
            "rewritten_from_memory": rewritten(recorder),
            "write_errors_metric": int(samples["meshsync_recorder_write_errors_total"]),
            **figures,
        },
    )


def check_journal(journal: Path, sent: int, written: int, dropped: int) -> dict[str, Any]:
    """Compare the journal with what the test published and the daemon counted."""
    records = read_records(journal)
    counters = [int(m.payload[:8]) for m in messages_of(records)]
    unique = set(counters)
    duplicated = len(counters) - len(unique)
    invented = len(unique - set(range(sent)))
    lost = max(0, written - len(unique))
    assert duplicated == 0, "a message is in the journal twice"
    assert invented == 0, "the journal holds a message never published"
    assert lost == 0, "a message counted as written is not in the journal"
    assert len(unique) == written == sent - dropped, "a dropped message is in the journal"
    assert counters == sorted(counters), "journaled out of order"
    drops = markers_of(records, MarkerType.DROPPED)
    assert sum(int(marker.fields["count"]) for marker in drops) == dropped
    assert_seqs_increase(records)
    assert verify_journal(journal).clean
    assert run_cli("verify", str(journal)).returncode == 0
    return {
        "acknowledged_records_checked": written,
        "dropped_counted_and_marked": dropped,
        "lost": lost,
        "duplicated": duplicated,
        "invented": invented,
    }


def test_a_kill_during_an_fsync_fault_keeps_every_message_counted_as_written_once(
    nats_server_factory: Callable[..., NatsServer],
    recorders: Recorders,
    faulty_disk: Callable[[Path], FaultyDisk],
    tmp_path: Path,
) -> None:
    """Killed (SIGKILL) while every fsync fails, then restarted on a healthy disk: every message the first run counted as written is in the journal, before the marked unclean stop, and no message is in it twice."""
    server = nats_server_factory()
    journal = tmp_path / "journal"
    disk = faulty_disk(journal)
    env = {**ENV, **disk.env()}
    first = recorders.start(journal, server.url, subjects=[CORE], env=env)
    first.wait_ready()
    with CountingPublisher(server.url, CORE, rate_per_s=500, payload=payload) as publisher:
        first.wait_written(100)
        disk.inject(fsync="EIO")
        wait_until(lambda: not_writable(first), 20, "/readyz to report the fault")
        wait_until(lambda: disk.injected()["fsync"] >= 3, 20, "3 injected fsync errors")
        counted = first.written()
        first.kill()
        disk.clear()
        second = recorders.start(journal, server.url, subjects=[CORE], env=env)
        second.wait_ready()
        second.wait_written(100)
        sent = publisher.stop()
    assert second.stop() == 0
    records = read_records(journal)
    (unclean,) = [m for m in markers_of(records, MarkerType.STOPPED) if not m.fields["clean"]]
    before = [int(m.payload[:8]) for m in messages_of(records) if m.seq < unclean.seq]
    counters = [int(m.payload[:8]) for m in messages_of(records)]
    assert len(before) >= counted, "a message counted as written before the kill is gone"
    assert len(counters) == len(set(counters)), "a message is in the journal twice"
    assert set(counters) <= set(range(sent))
    assert_seqs_increase(records)
    assert verify_journal(journal).clean
    report(
        "core/kill-during-fsync-EIO",
        {
            "mode": "core",
            "fault": "fsync EIO, killed during it, restarted",
            "injected_fsync_errors": disk.injected()["fsync"],
            "injected_write_errors": 0,
            "published": sent,
            "acknowledged_records_checked": counted,
            "lost": max(0, counted - len(before)),
            "duplicated": len(counters) - len(set(counters)),
            "invented": len(set(counters) - set(range(sent))),
        },
    )


def test_unsynced_records_past_the_memory_budget_are_read_back_and_written_again(
    nats_server_factory: Callable[..., NatsServer],
    recorders: Recorders,
    faulty_disk: Callable[[Path], FaultyDisk],
    tmp_path: Path,
) -> None:
    """More unsynced bytes than the writer keeps in memory (4 MiB), then a failed fsync (a SIGHUP rotation's seal): the unsynced records are read back from the segment, checked and written again once the fault clears; none counted before, each once after."""
    server = nats_server_factory()
    journal = tmp_path / "journal"
    disk = faulty_disk(journal)
    env = {**disk.env(), "RECORDER_JOURNAL_FSYNC_INTERVAL": "1h"}
    recorder = recorders.start(journal, server.url, subjects=[CORE], env=env)
    recorder.wait_ready()
    count = 5000  # 5 MiB of payload
    publish(server.url, [Outgoing(CORE, payload(n).ljust(1024, b".")) for n in range(count)])
    wait_until(
        lambda: (
            not recorder.metrics()["meshsync_recorder_queue_depth"]
            and journal_bytes(journal) > 5 * 1024 * 1024
        ),
        20,
        "5 MiB appended, unsynced",
    )
    assert recorder.written() == 0  # nothing fsynced yet: nothing counted
    disk.inject(fsync="EIO")
    recorder.send(signal.SIGHUP)  # the rotation's seal fsyncs, and fails
    wait_until(lambda: not_writable(recorder), 20, "/readyz to report the fault")
    disk.clear()
    recorder.wait_ready(timeout=20)
    recorder.wait_written(count)
    assert recorder.stop() == 0
    assert rewritten(recorder) >= count
    figures = check_journal(journal, count, count, 0)
    assert figures["duplicated"] == 0
