"""The writer thread on a real journal: batches, markers and barriers in order, drops marked."""

from __future__ import annotations

from collections.abc import Callable

from polling import wait_until

from recorder.journal.maintenance import verify_journal
from recorder.journal.options import FsyncPolicy
from recorder.journal.record import Marker, MarkerType, Message, Record
from recorder.journal.segment import list_segments
from recorder.recording.pump import PumpOptions

from ._helpers import Rig, incoming, payloads, records

WAIT_S = 15.0


def kinds(found: list[Record]) -> list[str]:
    """Each record as "m<payload>" for a message or the marker's type, in journal order."""
    return [
        f"m{record.payload.decode()}" if isinstance(record, Message) else str(record.type)
        for record in found
    ]


def markers(found: list[Record], kind: MarkerType) -> list[Marker]:
    return [record for record in found if isinstance(record, Marker) and record.type is kind]


def test_messages_are_written_in_batches_of_at_most_batch_max(
    make_rig: Callable[..., Rig],
) -> None:
    """Ten queued messages with batch_max 4 take three appends (one fsync each under `always`)."""
    rig = make_rig(options=PumpOptions(batch_max=4))
    before = rig.metrics.fsync_count
    rig.put(*(incoming(n) for n in range(10)))
    rig.pump.start()
    wait_until(lambda: rig.written() == 10, WAIT_S, "ten messages written")
    assert rig.metrics.fsync_count - before == 3
    assert rig.metrics.written_msgs == {"meshery.meshsync.core": 10}
    assert rig.metrics.last_written_ns > 0  # the age gauge has a reference now
    found = rig.finish()
    assert payloads(found) == [str(n).encode() for n in range(10)]


def test_a_marker_lands_exactly_after_the_messages_accepted_before_it(
    make_rig: Callable[..., Rig],
) -> None:
    """A marker queued after six messages splits the batch there and is journaled right after them."""
    rig = make_rig(options=PumpOptions(batch_max=4))
    before = rig.metrics.fsync_count
    rig.put(*(incoming(n) for n in range(6)))
    rig.intake.mark(MarkerType.DISCONNECTED, {"url": "nats://a"})
    rig.put(*(incoming(n) for n in range(6, 10)))
    rig.pump.start()
    wait_until(lambda: rig.written() == 10, WAIT_S, "ten messages written")
    # Batches [0-3], [4-5], the marker, [6-9]: the batch stops at the marker.
    assert rig.metrics.fsync_count - before == 4
    assert rig.metrics.markers == {"disconnected": 1}
    found = rig.finish()
    assert kinds(found)[1:-1] == [
        *(f"m{n}" for n in range(6)),
        "disconnected",
        *(f"m{n}" for n in range(6, 10)),
    ]
    assert markers(found, MarkerType.DISCONNECTED)[0].fields == {"url": "nats://a"}


def test_a_barrier_reports_success_once_its_messages_are_on_disk_and_fsynced(
    make_rig: Callable[..., Rig],
) -> None:
    """A barrier's callback runs after every message accepted before it is written and fsynced,
    and before any message accepted after it."""
    rig = make_rig(fsync=FsyncPolicy.NEVER)  # only the barrier itself fsyncs
    seen: list[tuple[str, bool, int, int]] = []

    def barrier(name: str) -> Callable[[bool], None]:
        def done(ok: bool) -> None:
            on_disk = len(payloads(records(rig.directory)))
            seen.append((name, ok, on_disk, rig.metrics.fsync_count))

        return done

    rig.intake.barrier(barrier("first"))
    rig.put(*(incoming(n) for n in range(5)))
    rig.intake.barrier(barrier("second"))
    rig.put(incoming(5))
    rig.pump.start()
    wait_until(lambda: len(seen) == 2 and rig.written() == 6, WAIT_S, "both barriers done")
    (first, ok1, disk1, fsyncs1), (second, ok2, disk2, fsyncs2) = seen
    assert (first, ok1, disk1) == ("first", True, 0)
    assert (second, ok2, disk2) == ("second", True, 5)
    assert fsyncs2 == fsyncs1 + 1
    rig.finish()


def test_queue_full_drops_become_a_dropped_marker_and_metrics_by_subject(
    make_rig: Callable[..., Rig],
) -> None:
    """Messages the full queue refused are never silent: one DROPPED marker with the count, and
    the queue_full metric by subject."""
    rig = make_rig(limit=3)
    rig.put(*(incoming(n) for n in range(3)))
    rig.put(incoming(3, subject="a"), incoming(4, subject="b"), incoming(5, subject="a"))
    rig.pump.start()
    wait_until(lambda: rig.written() == 3, WAIT_S, "the accepted messages written")
    assert rig.metrics.dropped == {"queue_full": 3}
    assert rig.metrics.dropped_by_subject == {"a": 2, "b": 1}
    found = rig.finish()
    (drop,) = markers(found, MarkerType.DROPPED)
    assert drop.fields == {
        "count": 3,
        "queue_full_total": 3,
        "slow_consumer_total": 0,
        "write_error_total": 0,
    }
    assert payloads(found) == [b"0", b"1", b"2"]


def test_slow_consumer_drops_are_marked_too(make_rig: Callable[..., Rig]) -> None:
    """Drops nats-py reported are marked and counted under their own reason."""
    rig = make_rig()
    rig.intake.count_slow_consumer("a")
    rig.put(incoming(0))
    rig.pump.start()
    wait_until(lambda: rig.written() == 1, WAIT_S, "the message written")
    found = rig.finish()
    (drop,) = markers(found, MarkerType.DROPPED)
    assert (drop.fields["count"], drop.fields["slow_consumer_total"]) == (1, 1)
    assert rig.metrics.dropped == {"slow_consumer": 1}


def test_stop_writes_everything_queued_and_closes_cleanly(make_rig: Callable[..., Rig]) -> None:
    """Stopped at once, the thread still writes every queued message, then a clean STOPPED."""
    rig = make_rig(options=PumpOptions(batch_max=7))
    rig.put(*(incoming(n) for n in range(50)))
    rig.pump.start()
    found = rig.finish()
    assert payloads(found) == [str(n).encode() for n in range(50)]
    last = found[-1]
    assert isinstance(last, Marker) and last.type is MarkerType.STOPPED
    assert last.fields["clean"] is True
    assert last.fields["dropped_total"] == 0
    assert verify_journal(rig.directory).clean


def test_a_rotation_request_starts_the_next_segment(make_rig: Callable[..., Rig]) -> None:
    """request_rotation seals the active segment; later messages go to the next one."""
    rig = make_rig()
    rig.put(incoming(0))
    rig.pump.start()
    wait_until(lambda: rig.written() == 1, WAIT_S, "the first message written")
    first = rig.writer.active_segment
    assert first is not None
    rig.pump.request_rotation()
    wait_until(lambda: len(list_segments(rig.directory)) == 2, WAIT_S, "a second segment")
    rig.put(incoming(1))
    wait_until(lambda: rig.written() == 2, WAIT_S, "the second message written")
    rig.finish()
    segments = list_segments(rig.directory)
    assert [s.number for s in segments] == [first.number, first.number + 1]
    assert payloads(records(rig.directory)) == [b"0", b"1"]


def test_gauges_follow_the_queue_and_the_disk(make_rig: Callable[..., Rig]) -> None:
    """Housekeeping publishes queue depth, free disk, the active segment and the free-disk floor."""
    rig = make_rig(options=PumpOptions(min_free_bytes=1 << 62))  # more than any disk has
    rig.pump.start()
    wait_until(lambda: rig.metrics.free_disk_bytes > 0, WAIT_S, "the free-disk gauge")
    assert rig.metrics.disk_ok is False
    assert "free disk below the floor" in rig.metrics.not_ready_reasons()
    active = rig.writer.active_segment
    assert active is not None and rig.metrics.active_segment == active.number
    assert rig.metrics.queue_depth == 0
    rig.finish()
