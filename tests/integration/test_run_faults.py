"""`recorder run` under faults: a broker that dies, a recorder that is killed, a disk that refuses."""

from __future__ import annotations

import resource
import signal
from collections.abc import Callable
from pathlib import Path

from broker import NatsServer
from polling import wait_until
from run_helpers import (
    BackgroundPublisher,
    Outgoing,
    RecorderProcess,
    Recorders,
    assert_seqs_increase,
    markers_of,
    messages_of,
    numbered,
    publish,
    read_records,
    run_cli,
)

from recorder.journal.maintenance import inspect_journal, verify_journal
from recorder.journal.record import Marker, MarkerType
from recorder.meshsync import CORE_SUBJECT


def test_broker_restart_leaves_gap_markers_and_recording_resumes(
    nats_server_factory: Callable[..., NatsServer], recorders: Recorders, tmp_path: Path
) -> None:
    """When the broker is killed and comes back on the same port, the recorder reconnects by itself, marks the gap, and records what follows."""
    server = nats_server_factory()
    journal = tmp_path / "journal"
    recorder = recorders.start(journal, server.url, subjects=[CORE_SUBJECT])
    recorder.wait_ready()
    publish(server.url, numbered(CORE_SUBJECT, 50, prefix="before-"))
    recorder.wait_written(50)

    server.kill()
    wait_until(
        lambda: (r := recorder.get("/readyz")) and r[0] == 503 and "not connected" in r[1],
        5,
        "/readyz to report the lost broker",
    )
    server.start()
    recorder.wait_ready(timeout=10)
    publish(server.url, numbered(CORE_SUBJECT, 50, prefix="after-"))
    recorder.wait_written(100)
    samples = recorder.metrics()
    assert samples["meshsync_recorder_reconnects_total"] == 1
    assert samples["meshsync_recorder_gaps_total"] == 1
    assert samples['meshsync_recorder_markers_total{type="disconnected"}'] == 1
    assert recorder.stop() == 0

    records = read_records(journal)
    kinds = [r.type.value if isinstance(r, Marker) else r.payload.decode() for r in records]
    expected_messages = [f"before-{i}" for i in range(50)], [f"after-{i}" for i in range(50)]
    assert kinds == [
        "started",
        *expected_messages[0],
        "disconnected",
        "reconnected",
        *expected_messages[1],
        "stopped",
    ]
    (reconnected,) = markers_of(records, MarkerType.RECONNECTED)
    assert reconnected.fields["url"] == server.url
    assert_seqs_increase(records)
    events = recorder.event_names()
    assert "broker_disconnected" in events and "broker_reconnected" in events


def test_sigkill_then_restart_repairs_the_tail_and_keeps_every_written_record(
    nats_server_factory: Callable[..., NatsServer], recorders: Recorders, tmp_path: Path
) -> None:
    """A recorder killed mid-stream leaves an unsealed tail that verify reports; the restart seals it, keeps every record, marks the unclean stop and continues the sequence."""
    server = nats_server_factory()
    journal = tmp_path / "journal"
    first = recorders.start(journal, server.url, subjects=[CORE_SUBJECT], fsync="always")
    first.wait_ready()
    with BackgroundPublisher(server.url, CORE_SUBJECT, rate_per_s=3000) as publisher:
        first.wait_written(300)
        durable = first.written()  # fsync always: all of these were fsynced when counted
        first.kill()
        sent = publisher.stop()

    before = verify_journal(journal)
    assert not before.clean
    assert before.in_progress is None  # the lock died with the process
    reasons = " ".join(problem.reason for problem in before.problems)
    assert "not sealed" in reasons or "torn tail" in reasons
    assert run_cli("verify", str(journal)).returncode == 1
    kept = read_records(journal)
    kept_payloads = [m.payload for m in messages_of(kept)]
    assert durable <= len(kept_payloads) <= sent
    # One publisher, one subject: what was journaled is a gap-free prefix of what was sent.
    assert kept_payloads == [str(i).encode() for i in range(len(kept_payloads))]
    assert markers_of(kept, MarkerType.STOPPED) == []

    second = recorders.start(journal, server.url, subjects=[CORE_SUBJECT], fsync="always")
    second.wait_ready()
    repaired = second.wait_event("journal_opened")
    assert repaired["previous_clean"] is False
    assert repaired["repaired"] == ["00000001.seg"]
    live = run_cli("verify", str(journal))
    assert live.returncode == 0, live.stdout
    assert b"is being written" in live.stdout
    samples = second.metrics()
    assert samples['meshsync_recorder_markers_total{type="stopped"}'] == 1  # the unclean one
    assert samples['meshsync_recorder_markers_total{type="started"}'] == 1
    publish(server.url, numbered(CORE_SUBJECT, 20, prefix="after-"))
    second.wait_written(20)
    assert second.stop() == 0

    after = read_records(journal)
    assert after[: len(kept)] == kept
    restart = after[len(kept) :]
    unclean, started = restart[0], restart[1]
    assert isinstance(unclean, Marker) and unclean.type is MarkerType.STOPPED
    assert unclean.fields["clean"] is False
    assert unclean.fields["last_seq"] == kept[-1].seq
    assert unclean.seq == kept[-1].seq + 1
    assert isinstance(started, Marker) and started.type is MarkerType.STARTED
    assert [m.payload for m in messages_of(restart)] == [f"after-{i}".encode() for i in range(20)]
    assert_seqs_increase(after)
    assert verify_journal(journal).clean
    assert [info.state for info in inspect_journal(journal)] == ["sealed", "sealed"]


# -- write errors -----------------------------------------------------------------------------


def _ignore_sigxfsz() -> None:
    """In the child: exceeding RLIMIT_FSIZE must fail the write with EFBIG, not kill the process."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _limit_file_size(pid: int, limit: float) -> None:
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (int(limit), resource.RLIM_INFINITY))


def _not_writable(recorder: RecorderProcess) -> bool:
    response = recorder.get("/readyz")
    return bool(response and response[0] == 503 and "journal not writable" in response[1])


def test_file_size_limit_drops_marks_and_recovers_when_lifted(
    nats_server_factory: Callable[..., NatsServer], recorders: Recorders, tmp_path: Path
) -> None:
    """Writes failing with EFBIG keep the daemon up, turn /readyz 503, count errors and drops, never tear a record, and once the limit is lifted readiness returns by itself and a DROPPED marker tells how many were lost."""
    server = nats_server_factory()
    journal = tmp_path / "journal"
    recorder = recorders.start(
        journal, server.url, subjects=[CORE_SUBJECT], preexec_fn=_ignore_sigxfsz
    )
    recorder.wait_ready()
    traffic = [
        Outgoing(m.subject, m.payload.ljust(10_000, b".")) for m in numbered(CORE_SUBJECT, 11)
    ]
    publish(server.url, traffic[:5])
    recorder.wait_written(5)
    # Room for part of a record but not a whole one, nor a DROPPED marker: every write fails.
    segment = journal / "00000001.seg"
    size = segment.stat().st_size
    _limit_file_size(recorder.pid, size + 40)
    publish(server.url, traffic[5:])
    written_key = f'meshsync_recorder_messages_written_total{{subject="{CORE_SUBJECT}"}}'
    dropped_key = 'meshsync_recorder_messages_dropped_total{reason="write_error"}'
    # Each retry (backoff 0.1s, doubling) drops the batch it could not write: at most 6 here.
    samples = wait_until(
        lambda: (m := recorder.metrics())[dropped_key] == 6 and m,
        15,
        "6 messages counted as dropped",
    )
    assert samples[written_key] == 5
    assert samples["meshsync_recorder_write_errors_total"] >= 1
    assert samples["meshsync_recorder_ready"] == 0
    assert _not_writable(recorder)
    assert recorder.alive()
    failures = [e for e in recorder.events() if e.get("event") == "journal_write_failed"]
    assert failures and failures[0]["errno"] == 27  # EFBIG
    # Cut back to the last whole record: nothing torn is left in the live segment.
    assert segment.stat().st_size == size
    assert verify_journal(journal).clean

    _limit_file_size(recorder.pid, resource.RLIM_INFINITY)
    recorder.wait_ready(timeout=15)  # no new traffic needed: the DROPPED marker is a write
    publish(server.url, numbered(CORE_SUBJECT, 5, prefix="later-"))
    recorder.wait_written(10)
    assert recorder.stop() == 0

    records = read_records(journal)
    (drop,) = markers_of(records, MarkerType.DROPPED)
    assert drop.fields["count"] == 6
    assert drop.fields["write_error_total"] == 6
    payloads = [m.payload for m in messages_of(records)]
    assert payloads == [m.payload for m in traffic[:5]] + [f"later-{i}".encode() for i in range(5)]
    assert verify_journal(journal).clean


def test_full_disk_counts_drops_and_records_again_once_space_is_freed(
    nats_server_factory: Callable[..., NatsServer],
    recorders: Recorders,
    tiny_tmpfs: Callable[[str], Path],
) -> None:
    """On a full filesystem (ENOSPC) the daemon stays up, counts errors and drops without tearing a record, and once space is freed it is ready, records again, and has marked the drops."""
    server = nats_server_factory()
    mount = tiny_tmpfs("1m")
    filler = mount / "filler"
    filler.write_bytes(b"\0" * (1024 * 1024 - 192 * 1024))
    journal = mount / "journal"
    recorder = recorders.start(
        journal,
        server.url,
        subjects=[CORE_SUBJECT],
        env={"RECORDER_JOURNAL_SEGMENT_MAX_BYTES": "8MiB"},
    )
    recorder.wait_ready()
    traffic = [
        Outgoing(m.subject, m.payload.ljust(16_000, b"#")) for m in numbered(CORE_SUBJECT, 16)
    ]
    publish(server.url, traffic)
    dropped_key = 'meshsync_recorder_messages_dropped_total{reason="write_error"}'
    written_key = f'meshsync_recorder_messages_written_total{{subject="{CORE_SUBJECT}"}}'
    samples = wait_until(
        lambda: (m := recorder.metrics()).get(written_key, 0) + m[dropped_key] == 16 and m,
        15,
        "every message written or counted as dropped",
    )
    dropped = samples[dropped_key]
    assert dropped > 0
    assert samples["meshsync_recorder_write_errors_total"] >= 1
    assert recorder.alive()
    assert any(e.get("errno") == 28 for e in recorder.events())  # ENOSPC
    assert verify_journal(journal).clean

    filler.unlink()
    recorder.wait_ready(timeout=15)
    publish(server.url, numbered(CORE_SUBJECT, 3, prefix="later-"))
    recorder.wait_written(16 - int(dropped) + 3)
    assert recorder.stop() == 0
    records = read_records(journal)
    # A small DROPPED marker may fit where a 16 kB message did not, so there can be several.
    drops = markers_of(records, MarkerType.DROPPED)
    assert sum(marker.fields["count"] for marker in drops) == dropped
    got = [m.payload for m in messages_of(records)]
    assert got[-3:] == [b"later-0", b"later-1", b"later-2"]
    got = got[:-3]
    assert len(got) == 16 - dropped
    sent = iter(m.payload for m in traffic)
    assert all(payload in sent for payload in got), "journaled out of order"
    assert verify_journal(journal).clean
    assert recorder.stderr().count('"journal_writable_again"') >= 1
