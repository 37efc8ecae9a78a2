"""SIGKILL storms: the recorder is killed at random moments mid-stream and restarted each time.

A SIGKILL ends the process, not the machine: the page cache survives it, so what these tests
prove is that crash recovery (tail repair, sealing, sequence continuation) keeps every record
the dead process had reported written, and marks every gap. With `--fsync always` a message is
counted in /metrics only after the fsync of its batch, so "reported written" is "fsynced".
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import run_helpers
from broker import NatsServer
from faults import (
    StreamPublisher,
    consumer_settled,
    crash_launcher,
    default_and_long,
    env_int,
)
from polling import wait_until
from run_helpers import (
    BackgroundPublisher,
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

from recorder.journal.maintenance import verify_journal
from recorder.journal.record import Marker, MarkerType, Message, Record
from recorder.journal.segment import list_segments
from recorder.meshsync import CORE_SUBJECT

STREAM = "MESHSYNC_STORM"
SEED = env_int("RELIABILITY_SEED", 20260101)
# The long variants: `--run-slow`, sizes from RELIABILITY_* variables, no 300 s cap.
# Small segments: at 2000 messages/s a rotation every ~0.5 s, so kills land in rotations too.
STORM_ENV = {"RECORDER_JOURNAL_SEGMENT_MAX_BYTES": "64KiB"}


def _kill_at_random(recorder: RecorderProcess, rng: random.Random) -> int:
    """Kill during start-up (a quarter of the time) or after a random run; returns what the
    recorder had reported written (fsynced) just before the kill."""
    if rng.random() < 0.25:
        time.sleep(rng.uniform(0.0, 0.6))  # anywhere in start-up: imports, recovery, connect
        recorder.kill()
        return 0
    recorder.wait_ready()
    time.sleep(rng.uniform(0.05, 0.8))
    written = recorder.written()
    recorder.kill()
    return written


def _instances(records: list[Record]) -> list[tuple[int, list[Record]]]:
    """Split the journal at its STARTED markers: (pid, records up to the next STARTED)."""
    runs: list[tuple[int, list[Record]]] = []
    for record in records:
        if isinstance(record, Marker) and record.type is MarkerType.STARTED:
            runs.append((int(record.fields["pid"]), []))
        elif runs:
            runs[-1][1].append(record)
    return runs


def _assert_restarts_marked(records: list[Record]) -> None:
    """Every start after the first is announced by a STOPPED marker right before it."""
    for index, record in enumerate(records):
        if index and isinstance(record, Marker) and record.type is MarkerType.STARTED:
            before = records[index - 1]
            assert isinstance(before, Marker) and before.type is MarkerType.STOPPED, (
                f"restart at seq {record.seq} not preceded by a STOPPED marker"
            )


def _assert_every_gap_marked(records: list[Record]) -> None:
    """Between two messages whose counters are not consecutive lies an unclean STOPPED marker,
    and every restart after the first is announced by one."""
    previous: Message | None = None
    between: list[Marker] = []
    for record in records:
        if isinstance(record, Marker):
            between.append(record)
            continue
        if previous is not None and int(record.payload) != int(previous.payload) + 1:
            unclean = [m for m in between if m.type is MarkerType.STOPPED and not m.fields["clean"]]
            assert unclean, f"counter jumps {previous.payload!r} -> {record.payload!r} unmarked"
        assert previous is None or int(record.payload) > int(previous.payload), "out of order"
        previous, between = record, []
    _assert_restarts_marked(records)


def _core_storm(
    server: NatsServer, recorders: Recorders, journal: Path, kills: int, seed: int
) -> dict[str, int]:
    rng = random.Random(seed)
    reported: dict[int, int] = {}  # pid -> messages it reported written before its kill
    opened_before_kill = 0
    with BackgroundPublisher(server.url, CORE_SUBJECT, rate_per_s=2000) as publisher:
        for _ in range(kills):
            recorder = recorders.start(
                journal, server.url, subjects=[CORE_SUBJECT], fsync="always", env=STORM_ENV
            )
            reported[recorder.pid] = _kill_at_random(recorder, rng)
            opened_before_kill += "journal_opened" in recorder.event_names()
            # A kill never damages what is already sealed: only the newest segment is unsealed.
            if not journal.exists():
                continue  # killed before it created the journal
            report = verify_journal(journal)
            newest = list_segments(journal)[-1].name
            assert all(p.segment == newest for p in report.problems), report.problems
        final = recorders.start(
            journal, server.url, subjects=[CORE_SUBJECT], fsync="always", env=STORM_ENV
        )
        final.wait_ready()
        wait_until(lambda: final.written() > 200, 10, "the last recorder to record")
        sent = publisher.stop()
    wait_until(lambda: sent - 1 == _last_counter(journal), 10, "the last message to be written")
    assert final.stop() == 0

    verified = run_cli("verify", str(journal))
    assert verified.returncode == 0, verified.stdout.decode()
    records = read_records(journal)
    assert_seqs_increase(records)
    _assert_every_gap_marked(records)
    runs = _instances(records)
    for pid, run in runs:
        kept = len(messages_of(run))
        assert kept >= reported.get(pid, 0), (
            f"pid {pid} reported {reported.get(pid)}, journal has {kept}"
        )
    # Every run a kill cut short is followed by the next run's unclean STOPPED marker.
    unclean = [m for m in markers_of(records, MarkerType.STOPPED) if not m.fields["clean"]]
    assert opened_before_kill <= len(unclean) <= kills
    by_seq = {record.seq: record for record in records}
    for marker in unclean:
        assert marker.fields["last_seq"] == marker.seq - 1 and marker.seq - 1 in by_seq
    clean = [m for m in markers_of(records, MarkerType.STOPPED) if m.fields["clean"]]
    assert len(clean) == 1 and records[-1] == clean[0]
    counters = [int(m.payload) for m in messages_of(records)]
    assert len(counters) == len(set(counters))
    return {
        "kills": kills,
        "unclean_stops_marked": len(unclean),
        "killed_after_journal_open": opened_before_kill,
        "published": sent,
        "recorded": len(counters),
        "reported_fsynced_before_kills": sum(reported.values()),
        "records": len(records),
        "segments": len(list_segments(journal)),
    }


def _last_counter(journal: Path) -> int:
    messages = messages_of(read_records(journal))
    return int(messages[-1].payload) if messages else -1


@pytest.mark.parametrize(
    "kills",
    default_and_long("KILLS", 20, 150),
)
def test_sigkill_storm_keeps_every_fsynced_record_and_marks_every_restart(
    nats_server_factory: Callable[..., NatsServer],
    recorders: Recorders,
    tmp_path: Path,
    figures: Callable[..., None],
    kills: int,
) -> None:
    """Killed with SIGKILL at random moments under a steady stream and restarted each time, the recorder leaves a journal that verifies clean, with strictly increasing sequence numbers, every record each killed process had reported fsynced, and an unclean STOPPED marker before every restart that followed a kill."""
    server = nats_server_factory()
    stats = _core_storm(server, recorders, tmp_path / "journal", kills, SEED)
    figures(**stats, seed=SEED)


# -- JetStream --------------------------------------------------------------------------------

JS_ENV = {
    "RECORDER_JETSTREAM_CREATE_STREAM": "false",
    "RECORDER_JETSTREAM_STREAM": STREAM,
    "RECORDER_JETSTREAM_BATCH": "50",
    # What the killed recorder had fetched but not acked comes back after this long.
    "RECORDER_JETSTREAM_ACK_WAIT": "1s",
}


def _stream_seqs(journal: Path) -> list[int]:
    return [m.stream_seq for m in messages_of(read_records(journal)) if m.stream_seq is not None]


@pytest.mark.parametrize(
    "kills",
    default_and_long("JS_KILLS", 10, 60),
)
def test_jetstream_sigkill_storm_journals_every_published_message_exactly_once(
    nats_server_factory: Callable[..., NatsServer],
    recorders: Recorders,
    tmp_path: Path,
    figures: Callable[..., None],
    kills: int,
) -> None:
    """In JetStream mode, a recorder killed at random moments while the stream grows and restarted each time ends with every published message in the journal exactly once, byte for byte, and a journal that verifies clean."""
    server = nats_server_factory(jetstream=True)
    journal = tmp_path / "journal"
    rng = random.Random(SEED + 1)

    def start() -> RecorderProcess:
        return recorders.start(
            journal,
            server.url,
            subjects=[CORE_SUBJECT],
            mode="jetstream",
            fsync="always",
            env=JS_ENV,
        )

    with StreamPublisher(server.url, STREAM, CORE_SUBJECT, rate_per_s=800) as publisher:
        wait_until(lambda: len(publisher.acked) > 100, 10, "the stream to fill")
        for _ in range(kills):
            _kill_at_random(start(), rng)
        final = start()
        final.wait_ready()
        wait_until(lambda: final.written() > 0, 15, "the last recorder to journal live traffic")
        acked = dict(publisher.stop())
    wait_until(lambda: set(_stream_seqs(journal)) >= set(acked), 30, "every stream message")
    wait_until(
        lambda: consumer_settled(server.url, STREAM), 20, "the consumer to have nothing pending"
    )
    assert final.stop() == 0

    records = read_records(journal)
    messages = messages_of(records)
    seqs = Counter(m.stream_seq for m in messages)
    assert [seq for seq, n in seqs.items() if n > 1] == []
    assert sorted(seqs) == sorted(acked)
    assert all(m.payload == acked[m.stream_seq] for m in messages if m.stream_seq is not None)
    assert_seqs_increase(records)
    verified = run_cli("verify", str(journal))
    assert verified.returncode == 0, verified.stdout.decode()
    _assert_restarts_marked(records)
    unclean = [m for m in markers_of(records, MarkerType.STOPPED) if not m.fields["clean"]]
    figures(
        kills=kills,
        unclean_stops_marked=len(unclean),
        published=len(acked),
        journaled=len(messages),
        duplicates=0,
        seed=SEED + 1,
    )


# -- crashes at exact points of start-up and rotation -------------------------------------------

CRASH_POINTS = [
    # start-up, after the lock is taken: before sealing what the crashed writer left
    pytest.param("recorder.journal.recovery:repair_segment", 1, id="before-recovery-repair"),
    # start-up: everything sealed, the new segment not created yet
    pytest.param("recorder.journal.writer:JournalWriter._open_segment", 1, id="before-new-segment"),
    # start-up: new segment created, before its unclean-STOPPED marker / before STARTED
    pytest.param("recorder.journal.writer:JournalWriter.append_marker", 1, id="before-stop-marker"),
    pytest.param(
        "recorder.journal.writer:JournalWriter.append_marker", 2, id="before-start-marker"
    ),
    # rotation: before the footer is written, and between sealing and opening the next segment
    pytest.param("recorder.journal.writer:JournalWriter._seal", 1, id="rotation-before-seal"),
    pytest.param(
        "recorder.journal.writer:JournalWriter._open_segment", 2, id="rotation-after-seal"
    ),
]


@pytest.mark.parametrize(("target", "call"), CRASH_POINTS)
def test_a_crash_at_any_point_of_startup_or_rotation_leaves_a_marked_gap(
    nats_server_factory: Callable[..., NatsServer],
    recorders: Recorders,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    figures: Callable[..., None],
    target: str,
    call: int,
) -> None:
    """A recorder killed mid-stream, then a restart that dies at one exact point of its start-up or of a rotation, then a normal restart: the journal verifies clean, keeps every record reported written, and each restart is announced by a STOPPED marker."""
    server = nats_server_factory()
    journal = tmp_path / "journal"
    env = {"RECORDER_JOURNAL_SEGMENT_MAX_BYTES": "16KiB"}
    first = recorders.start(journal, server.url, subjects=[CORE_SUBJECT], fsync="always", env=env)
    first.wait_ready()
    publish(server.url, numbered(CORE_SUBJECT, 100))
    first.wait_written(100)
    first.kill()

    monkeypatch.setattr(run_helpers, "RECORDER", crash_launcher(target, call))
    crashing = recorders.start(
        journal, server.url, subjects=[CORE_SUBJECT], fsync="always", env=env
    )
    if target.endswith("_seal") or (call == 2 and target.endswith("_open_segment")):
        crashing.wait_ready()  # a crash point in rotation: give it traffic to rotate
        publish(server.url, numbered(CORE_SUBJECT, 400, start=100))  # ~22 kB: a rotation or two
    assert crashing.wait_exit() == -9, crashing.stderr()
    monkeypatch.undo()

    last = recorders.start(journal, server.url, subjects=[CORE_SUBJECT], fsync="always", env=env)
    last.wait_ready()
    publish(server.url, numbered(CORE_SUBJECT, 20, start=1000))
    last.wait_written(20)
    assert last.stop() == 0

    verified = run_cli("verify", str(journal))
    assert verified.returncode == 0, verified.stdout.decode()
    records = read_records(journal)
    assert_seqs_increase(records)
    counters = [int(m.payload) for m in messages_of(records)]
    assert counters[:100] == list(range(100))
    assert counters[-20:] == list(range(1000, 1020))
    _assert_every_gap_marked(records)
    unclean = [m for m in markers_of(records, MarkerType.STOPPED) if not m.fields["clean"]]
    figures(
        crashed_at=target.rsplit(":", 1)[1],
        call=call,
        recorded=len(counters),
        unclean_stops_marked=len(unclean),
        verify_clean=True,
    )
