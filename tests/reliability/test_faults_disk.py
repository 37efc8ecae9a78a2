"""A disk that fills up again and again, and a disk whose every fsync is slow."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import run_helpers
from broker import NatsServer
from faults import (
    CountingPublisher,
    StreamPublisher,
    consumer_settled,
    consumer_state,
    default_and_long,
    slow_fsync_launcher,
)
from filesystems import fill
from polling import wait_until
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
)

from recorder.journal.maintenance import scan_segment, verify_journal
from recorder.journal.record import Marker, MarkerType, Record
from recorder.journal.segment import list_segments
from recorder.meshsync import CORE_SUBJECT

# The long variants: `--run-slow`, sizes from RELIABILITY_* variables, no 300 s cap.
DROPPED = "meshsync_recorder_messages_dropped_total"
WRITTEN = "meshsync_recorder_messages_written_total"


def _dropped(samples: dict[str, float]) -> int:
    return int(sum(value for key, value in samples.items() if key.startswith(DROPPED + "{")))


def _numbered(start: int, count: int, size: int) -> list[Outgoing]:
    return [
        Outgoing(CORE_SUBJECT, f"{n:08d}".encode().ljust(size, b"."))
        for n in range(start, start + count)
    ]


def _no_torn_record(journal: Path) -> bool:
    """Whether the live segment ends on a whole record; retried once, since a scan can land in
    the middle of the writer's next attempt."""
    for _ in range(2):
        segments = list_segments(journal)
        if not segments or not scan_segment(segments[-1]).damages:
            return True
        time.sleep(0.05)
    return False


def _accounted(samples: dict[str, float]) -> int:
    """Messages written, counted as dropped, or still queued (a DROPPED marker that does not
    fit either holds the queue back until space returns: those are written later, not lost)."""
    written = sum(v for k, v in samples.items() if k.startswith(WRITTEN + "{"))
    return int(written + _dropped(samples) + samples["meshsync_recorder_queue_depth"])


def _drop_markers(records: list[Record]) -> list[Marker]:
    return markers_of(records, MarkerType.DROPPED)


@pytest.mark.parametrize(
    "cycles",
    default_and_long("DISK_CYCLES", 5, 40),
)
def test_disk_full_again_and_again_drops_are_counted_marked_and_recording_resumes(
    tiny_tmpfs: Callable[[str], Path],
    nats_server_factory: Callable[..., NatsServer],
    recorders: Recorders,
    figures: Callable[..., None],
    cycles: int,
) -> None:
    """Each time the filesystem fills up (ENOSPC) while messages arrive, the daemon stays up, turns /readyz 503, counts the lost messages and leaves no torn record; each time space returns it is ready again by itself and records; in the end the DROPPED markers add up to the dropped count in /metrics and to published minus recorded, and the journal verifies clean."""
    mount = tiny_tmpfs(f"{max(2048, 1024 + 64 * cycles)}k")
    server = nats_server_factory()
    journal = mount / "journal"
    recorder = recorders.start(
        journal,
        server.url,
        subjects=[CORE_SUBJECT],
        env={
            # Rotations run into the full disk too (sealing, opening the next segment). No
            # retention: it would delete DROPPED markers the final count needs.
            "RECORDER_JOURNAL_SEGMENT_MAX_BYTES": "192KiB",
            # A DROPPED marker can still fit in the last page of a full disk, and its write
            # counts as "writable again" (so readiness returns without new traffic); the floor
            # is what keeps a full disk not ready in between.
            "RECORDER_JOURNAL_MIN_FREE_BYTES": "64KiB",
        },
    )
    recorder.wait_ready()
    sent = 0
    for cycle in range(cycles):
        filler = mount / f"filler-{cycle}"
        fill(filler)
        before = recorder.metrics()
        for _burst in range(3):  # spaced out: several failed attempts and retries per cycle
            publish(server.url, _numbered(sent, 50, 2000))
            sent += 50
            time.sleep(0.15)
        wait_until(
            lambda sent=sent: _accounted(recorder.metrics()) == sent,
            15,
            "every message written, counted as dropped or queued",
        )
        samples = recorder.metrics()
        assert _dropped(samples) > _dropped(before), f"cycle {cycle}: nothing dropped"
        assert samples["meshsync_recorder_write_errors_total"] > before.get(
            "meshsync_recorder_write_errors_total", 0
        )
        response = recorder.get("/readyz")
        assert response is not None and response[0] == 503, response
        assert "free disk below the floor" in response[1], response
        assert recorder.alive()
        assert _no_torn_record(journal), f"cycle {cycle}: torn record in the live segment"
        time.sleep(0.5)  # a while later: still refused, still no torn record
        assert (recorder.get("/readyz") or (0,))[0] == 503
        assert _no_torn_record(journal), f"cycle {cycle}: torn record after the retries"

        filler.unlink()
        recorder.wait_ready(timeout=15)  # by itself: the DROPPED marker is the first write
        written = recorder.written()
        publish(server.url, _numbered(sent, 20, 2000))
        sent += 20
        recorder.wait_written(written + 20)

    samples = wait_until(
        lambda: (
            (m := recorder.metrics())["meshsync_recorder_queue_depth"] == 0
            and _accounted(m) == sent
            and m
        ),
        15,
        "the queue to be empty",
    )
    events = recorder.event_names()
    errors = samples["meshsync_recorder_write_errors_total"]
    recorder_written = samples[
        f'meshsync_recorder_messages_written_total{{subject="{CORE_SUBJECT}"}}'
    ]
    assert recorder.stop() == 0
    records = read_records(journal)
    drops = _drop_markers(records)
    dropped = _dropped(samples)
    assert sum(marker.fields["count"] for marker in drops) == dropped
    (stopped,) = [m for m in markers_of(records, MarkerType.STOPPED) if m.fields["clean"]]
    assert stopped.fields["dropped_total"] == dropped
    counters = [int(m.payload[:8]) for m in messages_of(records)]
    assert counters == sorted(set(counters)), "journaled out of order or twice"
    assert len(counters) == sent - dropped == recorder_written
    assert all(marker.fields["count"] > 0 for marker in drops)
    assert verify_journal(journal).clean
    assert run_cli("verify", str(journal)).returncode == 0
    assert list(journal.glob("*.quarantine")) == []
    figures(
        fill_free_cycles=cycles,
        published=sent,
        written=sent - dropped,
        dropped=dropped,
        drop_markers=len(drops),
        dropped_in_markers=sum(marker.fields["count"] for marker in drops),
        write_errors=int(errors),
        writable_again_events=events.count("journal_writable_again"),
        segments=len(list_segments(journal)),
    )


# -- slow disk ----------------------------------------------------------------------------------

FSYNC_DELAY_S = 0.2
SLOW_ENV = {"RECORDER_QUEUE_MAX_MESSAGES": "500"}


def _start_slow(
    recorders: Recorders,
    monkeypatch: pytest.MonkeyPatch,
    journal: Path,
    url: str,
    **options: object,
) -> RecorderProcess:
    monkeypatch.setattr(run_helpers, "RECORDER", slow_fsync_launcher(FSYNC_DELAY_S))
    return recorders.start(journal, url, subjects=[CORE_SUBJECT], fsync="always", **options)  # type: ignore[arg-type]


def _fsync_figures(samples: dict[str, float]) -> tuple[int, int]:
    """(fsyncs, fsyncs faster than 0.1 s) from the latency histogram."""
    return (
        int(samples["meshsync_recorder_fsync_seconds_count"]),
        int(samples['meshsync_recorder_fsync_seconds_bucket{le="0.1"}']),
    )


def test_slow_fsync_in_core_mode_drops_at_the_bounded_queue_and_marks_every_drop(
    nats_server_factory: Callable[..., NatsServer],
    recorders: Recorders,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    figures: Callable[..., None],
) -> None:
    """With every fsync taking 200 ms, `fsync: always` and a 500-message queue, a fast publisher overruns the queue: the drops are counted in /metrics and marked in the journal (DROPPED counts == metric == published - recorded), and /metrics keeps answering quickly because fsync never runs on the event loop."""
    server = nats_server_factory()
    journal = tmp_path / "journal"
    recorder = _start_slow(recorders, monkeypatch, journal, server.url, env=SLOW_ENV)
    recorder.wait_ready(timeout=20)
    with CountingPublisher(
        server.url,
        CORE_SUBJECT,
        rate_per_s=6000,
        payload=lambda n: f"{n:08d}".encode().ljust(200, b"."),
    ) as publisher:
        time.sleep(3)
        total = publisher.stop()
    slowest_scrape = 0.0

    def settled() -> bool:
        nonlocal slowest_scrape
        started = time.monotonic()
        samples = recorder.metrics()
        slowest_scrape = max(slowest_scrape, time.monotonic() - started)
        return recorder.written() + _dropped(samples) == total

    wait_until(settled, 30, "every message written or counted as dropped", interval=0.1)
    samples = recorder.metrics()
    dropped = _dropped(samples)
    fsyncs, fast_fsyncs = _fsync_figures(samples)
    assert recorder.stop(timeout=30) == 0

    records = read_records(journal)
    drops = _drop_markers(records)
    recorded = [int(m.payload[:8]) for m in messages_of(records)]
    assert dropped > 0
    assert samples[f'{DROPPED}{{reason="queue_full"}}'] > 0
    assert sum(marker.fields["count"] for marker in drops) == dropped == total - len(recorded)
    assert recorded == sorted(set(recorded))
    assert fast_fsyncs == 0 and fsyncs > 0  # the shim slowed every one of them
    assert slowest_scrape < 1.0
    assert_seqs_increase(records)
    assert verify_journal(journal).clean
    figures(
        fsync_delay_s=FSYNC_DELAY_S,
        queue_max_messages=500,
        published=total,
        recorded=len(recorded),
        dropped=dropped,
        dropped_in_markers=sum(marker.fields["count"] for marker in drops),
        drop_markers=len(drops),
        fsyncs=fsyncs,
        slowest_metrics_scrape_s=round(slowest_scrape, 3),
    )


def test_slow_fsync_in_jetstream_mode_slows_acking_and_loses_nothing(
    nats_server_factory: Callable[..., NatsServer],
    recorders: Recorders,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    figures: Callable[..., None],
) -> None:
    """With every fsync taking 200 ms, a JetStream recorder falls behind a faster publisher (acks wait for the fsync, the consumer's backlog grows) yet ends with every message journaled exactly once and nothing dropped."""
    server = nats_server_factory(jetstream=True)
    journal = tmp_path / "journal"
    stream = "MESHSYNC_SLOW"
    env = {
        **SLOW_ENV,
        "RECORDER_JETSTREAM_STREAM": stream,
        "RECORDER_JETSTREAM_BATCH": "100",
        "RECORDER_JETSTREAM_ACK_WAIT": "5s",
    }
    total = 2000
    with StreamPublisher(
        server.url, stream, CORE_SUBJECT, rate_per_s=1500, limit=total
    ) as publisher:
        wait_until(lambda: publisher.acked, 10, "the stream to exist")
        recorder = _start_slow(
            recorders, monkeypatch, journal, server.url, mode="jetstream", env=env
        )
        recorder.wait_ready(timeout=20)
        backlog = 0
        while publisher._thread is not None and publisher._thread.is_alive():
            with contextlib.suppress(Exception):
                backlog = max(backlog, consumer_state(server.url, stream)[0])
            time.sleep(0.2)
        acked = publisher.join(30)
    assert len(acked) == total
    wait_until(lambda: recorder.written() == total, 60, "every stream message journaled")
    wait_until(lambda: consumer_settled(server.url, stream), 20, "everything acked")
    samples = recorder.metrics()
    assert recorder.stop(timeout=30) == 0

    records = read_records(journal)
    messages = messages_of(records)
    assert sorted(m.stream_seq for m in messages) == sorted(acked)  # each exactly once
    assert all(m.payload == acked[m.stream_seq] for m in messages if m.stream_seq is not None)
    assert _dropped(samples) == 0 and _drop_markers(records) == []
    assert backlog > 0, "the slow disk never held the consumer back"
    fsyncs, fast_fsyncs = _fsync_figures(samples)
    assert fast_fsyncs == 0
    assert verify_journal(journal).clean
    figures(
        fsync_delay_s=FSYNC_DELAY_S,
        published=total,
        journaled=len(messages),
        dropped=0,
        max_consumer_backlog=backlog,
        fsyncs=fsyncs,
    )
