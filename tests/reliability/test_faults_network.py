"""Broker restarts and network faults mid-stream: the recorder recovers by itself and marks gaps.

The publisher numbers its messages and never sends late (no reconnect buffer), so a missing
number in the journal is a lost message; the tests require every one to sit across a
DISCONNECTED marker, i.e. no message published while the recorder was connected is lost silently.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from broker import NatsServer
from faults import CountingPublisher, TcpProxy, default_and_long, env_int
from polling import wait_until
from run_helpers import (
    RecorderProcess,
    Recorders,
    assert_seqs_increase,
    markers_of,
    messages_of,
    read_records,
    run_cli,
)

from recorder.journal.record import Marker, MarkerType, Message, Record
from recorder.meshsync import CORE_SUBJECT

SEED = env_int("RELIABILITY_SEED", 20260101)
# The long variants: `--run-slow`, sizes from RELIABILITY_* variables, no 300 s cap.


def _written_more(recorder: RecorderProcess, than: int, timeout: float = 10) -> int:
    """Wait until the recorder has journaled more than `than` messages; returns the count."""
    return int(wait_until(lambda: (n := recorder.written()) > than and n, timeout, "progress"))


def _journaled(journal: Path) -> int:
    """Messages in the journal now, synced or not: the count a stall must freeze.

    The recorder's written counter counts a message once an fsync covers it, up to an fsync
    interval after it arrived, so it cannot tell a message let through from one that came before.
    """
    return len(messages_of(read_records(journal)))


def _recorded_after_last_reconnect(journal: Path) -> bool:
    """Whether a message follows the newest RECONNECTED marker in the journal."""
    records = read_records(journal)
    last = max(
        (
            i
            for i, r in enumerate(records)
            if isinstance(r, Marker) and r.type is MarkerType.RECONNECTED
        ),
        default=-1,
    )
    return any(isinstance(record, Message) for record in records[last + 1 :])


def _wait_recorded_after_reconnect(journal: Path) -> None:
    wait_until(lambda: _recorded_after_last_reconnect(journal), 15, "a message after reconnecting")


def _wait_reconnects(recorder: RecorderProcess, count: int) -> None:
    """Wait until the recorder has noticed the fault and reconnected `count` times in all."""
    wait_until(
        lambda: recorder.metrics()["meshsync_recorder_reconnects_total"] >= count,
        15,
        f"reconnect number {count}",
    )
    recorder.wait_ready(timeout=10)


def _gaps(records: list[Record]) -> list[tuple[int, int, list[Marker]]]:
    """(last counter before, first counter after, markers between) for every counter jump."""
    jumps = []
    previous: Message | None = None
    between: list[Marker] = []
    for record in records:
        if isinstance(record, Marker):
            between.append(record)
            continue
        if previous is not None:
            before, after = int(previous.payload), int(record.payload)
            assert after > before, f"counter {after} after {before}: duplicated or reordered"
            if after != before + 1:
                jumps.append((before, after, between))
        previous, between = record, []
    return jumps


def _assert_recovered_after_every_gap(records: list[Record]) -> int:
    """Markers alternate DISCONNECTED, RECONNECTED, and messages follow every DISCONNECTED
    before the next one (the recorder came back each time); returns how many messages lie
    between a DISCONNECTED and its RECONNECTED.

    Those exist because nats-py resubscribes, then waits for a PING/PONG round trip, and only
    then calls the reconnected callback: messages arriving in that round trip are journaled
    before the RECONNECTED marker. They are real, recorded messages, not lost ones.
    """
    kinds = [r.type for r in records if isinstance(r, Marker) and r.type in _GAP_MARKERS]
    assert kinds == [MarkerType.DISCONNECTED, MarkerType.RECONNECTED] * (len(kinds) // 2), kinds
    early = 0
    state: MarkerType | None = None
    since_disconnect = 0
    for record in records:
        if isinstance(record, Marker) and record.type is MarkerType.DISCONNECTED:
            assert state is None or since_disconnect, "nothing recorded between two faults"
            state, since_disconnect = record.type, 0
        elif isinstance(record, Marker) and record.type is MarkerType.RECONNECTED:
            state = record.type
        elif isinstance(record, Message) and state is not None:
            since_disconnect += 1
            early += state is MarkerType.DISCONNECTED
    return early


_GAP_MARKERS = (MarkerType.DISCONNECTED, MarkerType.RECONNECTED)


def _finish(recorder: RecorderProcess, publisher: CountingPublisher, journal: Path) -> int:
    sent = publisher.stop()
    wait_until(
        lambda: (m := messages_of(read_records(journal))) and int(m[-1].payload) == sent - 1,
        10,
        "the last published message to be journaled",
    )
    return sent


@pytest.mark.parametrize(
    "restarts",
    default_and_long("BROKER_RESTARTS", 6, 40),
)
def test_broker_restart_storm_recovers_every_time_and_marks_every_gap(
    nats_server_factory: Callable[..., NatsServer],
    recorders: Recorders,
    tmp_path: Path,
    figures: Callable[..., None],
    restarts: int,
) -> None:
    """Whether the broker is killed or stopped, each time it comes back on its port the recorder reconnects by itself, writes one DISCONNECTED and one RECONNECTED marker, and every message lost in between lies across such a gap."""
    rng = random.Random(SEED + 2)
    server = nats_server_factory()
    journal = tmp_path / "journal"
    recorder = recorders.start(journal, server.url, subjects=[CORE_SUBJECT])
    recorder.wait_ready()
    with CountingPublisher(server.url, CORE_SUBJECT, rate_per_s=1000) as publisher:
        _written_more(recorder, 100)
        for index in range(restarts):
            kill = index % 2 == 0  # alternate a crash (SIGKILL) and a shutdown (SIGTERM)
            time.sleep(rng.uniform(0.0, 0.3))
            server.restart(kill=kill)
            _wait_reconnects(recorder, index + 1)
            _wait_recorded_after_reconnect(journal)
        samples = recorder.metrics()
        sent = _finish(recorder, publisher, journal)
    assert recorder.alive()
    assert recorder.stop() == 0

    records = read_records(journal)
    assert_seqs_increase(records)
    disconnected = markers_of(records, MarkerType.DISCONNECTED)
    reconnected = markers_of(records, MarkerType.RECONNECTED)
    assert len(disconnected) == len(reconnected) == restarts
    assert samples["meshsync_recorder_reconnects_total"] == restarts
    assert samples["meshsync_recorder_gaps_total"] == restarts
    jumps = _gaps(records)
    for before, after, between in jumps:
        assert any(m.type is MarkerType.DISCONNECTED for m in between), (before, after)
    early = _assert_recovered_after_every_gap(records)
    assert run_cli("verify", str(journal)).returncode == 0
    recorded = len(messages_of(records))
    figures(
        broker_restarts=restarts,
        disconnected_markers=len(disconnected),
        reconnected_markers=len(reconnected),
        published=sent,
        recorded=recorded,
        lost_across_marked_gaps=sent - recorded,
        unmarked_losses=0,
        recorded_before_reconnected_marker=early,
    )


@pytest.mark.parametrize(
    "faults",
    default_and_long("NETWORK_FAULTS", 12, 100),
)
def test_cut_and_stalled_links_are_survived_and_only_cuts_leave_marked_gaps(
    nats_server_factory: Callable[..., NatsServer],
    recorders: Recorders,
    tmp_path: Path,
    figures: Callable[..., None],
    faults: int,
) -> None:
    """Through a proxy that the test cuts (every connection closed) and stalls (nothing forwarded for a while), the recorder recovers by itself each time: each cut gives exactly one DISCONNECTED and one RECONNECTED marker, a stall loses nothing and marks nothing, and every lost message lies across a marked gap."""
    rng = random.Random(SEED + 3)
    server = nats_server_factory()
    proxy = TcpProxy(server.port or 0).start()
    journal = tmp_path / "journal"
    cuts = stalls = 0
    try:
        recorder = recorders.start(journal, proxy.url, subjects=[CORE_SUBJECT])
        recorder.wait_ready()
        # The publisher talks to the broker directly: only the recorder's link is faulty.
        with CountingPublisher(server.url, CORE_SUBJECT, rate_per_s=1000) as publisher:
            _written_more(recorder, 100)
            kinds = ["cut", "stall"] * (faults // 2) + ["cut"] * (faults % 2)
            rng.shuffle(kinds)
            for kind in kinds:
                time.sleep(rng.uniform(0.0, 0.3))
                if kind == "cut":
                    assert proxy.cut() == 1
                    cuts += 1
                    _wait_reconnects(recorder, cuts)
                else:
                    proxy.stall()
                    try:
                        time.sleep(0.2)  # what was already past the proxy gets written
                        stalled_at = _journaled(journal)
                        time.sleep(rng.uniform(0.5, 2.0))
                        assert _journaled(journal) == stalled_at, "the stall let messages by"
                    finally:
                        proxy.resume()
                    stalls += 1
                recorder.wait_ready(timeout=10)
                _written_more(recorder, _journaled(journal))
            samples = recorder.metrics()
            sent = _finish(recorder, publisher, journal)
        assert recorder.stop() == 0
    finally:
        proxy.close()

    records = read_records(journal)
    assert_seqs_increase(records)
    disconnected = markers_of(records, MarkerType.DISCONNECTED)
    reconnected = markers_of(records, MarkerType.RECONNECTED)
    assert len(disconnected) == len(reconnected) == cuts
    assert samples["meshsync_recorder_reconnects_total"] == cuts
    jumps = _gaps(records)
    for before, after, between in jumps:
        assert any(m.type is MarkerType.DISCONNECTED for m in between), (before, after)
    assert len(jumps) <= cuts
    early = _assert_recovered_after_every_gap(records)
    assert run_cli("verify", str(journal)).returncode == 0
    recorded = len(messages_of(records))
    figures(
        cuts=cuts,
        stalls=stalls,
        disconnected_markers=len(disconnected),
        published=sent,
        recorded=recorded,
        lost_across_marked_gaps=sent - recorded,
        unmarked_losses=0,
        recorded_before_reconnected_marker=early,
        proxy_connections_accepted=proxy.accepted,
    )
