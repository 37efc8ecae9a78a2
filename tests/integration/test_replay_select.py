"""`recorder replay` choosing what to send: filters, resuming after SIGINT, --msg-id, --dry-run."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import nats
import pytest
from broker import Broker
from cli_streams import summary_event
from meshsync_samples import sample
from nats.js.api import StreamConfig
from run_helpers import free_port
from test_replay_support import (
    Collector,
    build_journal,
    replay_cli,
    sent_count,
    start_replay,
    tree_state,
)

from recorder.meshsync import CORE_SUBJECT, REQUEST_SUBJECT

T0 = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z
SECOND = 10**9
PAYLOADS = {
    name: sample(name)
    for name in (
        "core-added-pod",
        "core-added-service",
        "core-modified-configmap",
        "store-dump-batch",
    )
}
# (subject, sample or raw payload) for messages 0..11, recorded one second apart from T0.
TRAFFIC: list[tuple[str, str | bytes]] = [
    (CORE_SUBJECT, "core-added-pod"),
    (CORE_SUBJECT, "core-added-service"),
    (REQUEST_SUBJECT, b'{"Request":{"Entity":"resync-discovery"}}'),
    (CORE_SUBJECT, "core-modified-configmap"),
    ("other.binary", b"\xff\x00\x01"),
    ("meshery-server.meshsync.store", "store-dump-batch"),
    (CORE_SUBJECT, "core-added-pod"),
    (CORE_SUBJECT, "core-modified-configmap"),
    ("other.text", b"hello"),
    (CORE_SUBJECT, "core-added-service"),
    (REQUEST_SUBJECT, b'{"Request":{"Entity":"informer-store"}}'),
    (CORE_SUBJECT, "core-added-pod"),
]


def payload_of(index: int) -> bytes:
    raw = TRAFFIC[index][1]
    return PAYLOADS[raw] if isinstance(raw, str) else raw


@pytest.fixture
def journal(tmp_path: Path) -> tuple[Path, list[int]]:
    """Twelve messages one second apart over three segments; returns the directory and seqs."""
    directory = tmp_path / "journal"
    items = [(T0 + i * SECOND, subject, payload_of(i)) for i, (subject, _) in enumerate(TRAFFIC)]
    return directory, build_journal(directory, items, rotate_every=4)


def at(seconds: int) -> str:
    return f"2026-01-01T00:00:{seconds:02d}Z"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--since", at(3), "--until", at(6)), [3, 4, 5, 6]),
        (("--from-seq", "{seq2}", "--to-seq", "{seq9}"), [2, 3, 4, 5, 6, 7, 8, 9]),
        (("--subject", REQUEST_SUBJECT), [2, 10]),
        (("--subject", "other.*", "--subject", "meshery-server.>"), [4, 5, 8]),
        (("--kind", "Pod"), [0, 5, 6, 11]),  # 5: a dump batch holding a Pod
        (("--kind", "configmap", "--kind", "Service"), [1, 3, 7, 9]),
        (("--namespace", "shop"), [3, 7]),
        (("--kind", "Pod", "--since", at(1), "--to-seq", "{seq9}"), [5, 6]),
    ],
    ids=["time", "seq", "subject", "wildcards", "kind", "kinds", "namespace", "combined"],
)
def test_filters_select_exactly_the_expected_messages(
    nats_server: Broker, journal: tuple[Path, list[int]], args: tuple[str, ...], expected: list[int]
) -> None:
    """Each filter (time, seq, subject, kind, namespace, and a combination) replays exactly the matching messages, in order."""
    directory, seqs = journal
    argv = [arg.format(seq2=seqs[2], seq9=seqs[9]) for arg in args]
    with Collector(nats_server.url, "f.>") as collector:
        result = replay_cli(
            directory,
            "--nats-url",
            nats_server.url,
            "--subject-prefix",
            "f",
            "--speed",
            "max",
            *argv,
        )
        assert result.returncode == 0, result.stderr
        got = collector.sync()
    assert [(m.subject, m.payload) for m in got] == [
        (f"f.{TRAFFIC[i][0]}", payload_of(i)) for i in expected
    ]
    assert sent_count(result.stderr) == len(expected)


def test_sigint_stops_cleanly_and_from_seq_resumes_without_gaps_or_doubles(
    nats_server: Broker, tmp_path: Path
) -> None:
    """SIGINT mid-replay exits 130 naming the seq to resume from, and replaying from there completes the rest exactly once."""
    directory = tmp_path / "journal"
    payloads = [f"message-{i}".encode() for i in range(40)]
    build_journal(directory, [(T0 + i * 50_000_000, "slow.x", p) for i, p in enumerate(payloads)])
    before = tree_state(directory)
    with Collector(nats_server.url, "slow.x") as collector:
        process = start_replay(directory, "--nats-url", nats_server.url, "--speed", "1")
        try:
            collector.wait_count(8)  # well under way; the whole replay takes two seconds
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        assert process.returncode == 130, stderr
        resume_from = summary_event(stderr, "replay_summary")["resume_from_seq"]
        assert resume_from, stderr
        first_part = collector.sync()
        assert len(first_part) == sent_count(stderr) < len(payloads)

        rest = replay_cli(
            directory,
            "--nats-url",
            nats_server.url,
            "--from-seq",
            str(resume_from),
            "--speed",
            "max",
        )
        assert rest.returncode == 0, rest.stderr
        got = collector.sync()
    assert [m.payload for m in got] == payloads
    assert tree_state(directory) == before


def test_msg_id_makes_a_second_replay_into_jetstream_a_no_op(
    nats_server_js: Broker, tmp_path: Path
) -> None:
    """With --msg-id, replaying a journal twice into a JetStream stream stores each message once (and without it, twice)."""
    directory = tmp_path / "journal"
    count = 60
    build_journal(
        directory,
        [(T0 + i, CORE_SUBJECT, f"p{i}".encode(), {"X-I": str(i)}) for i in range(count)],
        rotate_every=25,  # ids must stay stable across segments
    )

    async def stored(create: bool = False) -> int:
        """Replayed messages the stream holds, counted behind an acknowledged sentinel.

        The replay flushed before it exited, so the broker had routed its messages before the
        sentinel; the stream stores in arrival order, so the sentinel's ack covers them all.
        """
        nc = await nats.connect(nats_server_js.url, connect_timeout=2)
        try:
            js = nc.jetstream()
            if create:
                await js.add_stream(
                    StreamConfig(name="REPLAYED", subjects=["replay.>"], duplicate_window=600)
                )
            await js.publish("replay.sentinel", b"")
            info = await js.stream_info("REPLAYED", subjects_filter="replay.sentinel")
            sentinels = sum((info.state.subjects or {}).values())
            return int(info.state.messages) - sentinels
        finally:
            await nc.close()

    assert asyncio.run(stored(create=True)) == 0
    args: list[str | Path] = [
        directory,
        "--nats-url",
        nats_server_js.url,
        "--subject-prefix",
        "replay",
        "--speed",
        "max",
    ]
    for _ in range(2):
        result = replay_cli(*args, "--msg-id")
        assert result.returncode == 0, result.stderr
        assert sent_count(result.stderr) == count
        assert asyncio.run(stored()) == count
    # A third replay without ids is stored again: the dedup above came from --msg-id.
    result = replay_cli(*args)
    assert result.returncode == 0, result.stderr
    assert asyncio.run(stored()) == 2 * count


def test_dry_run_prints_count_subjects_and_span_without_connecting(
    journal: tuple[Path, list[int]],
) -> None:
    """--dry-run says what would be sent (count, mapped subjects, recorded span) and exits 0 even though no broker listens at the URL."""
    directory, _ = journal
    unreachable = f"nats://127.0.0.1:{free_port()}"
    result = replay_cli(
        directory,
        "--nats-url",
        unreachable,
        "--dry-run",
        "--subject-map",
        "meshery.meshsync.*=replay.*",
        "--since",
        at(1),
    )
    assert result.returncode == 0, result.stderr
    summary = summary_event(result.stderr, "replay_summary")
    assert summary["dry_run"] is True
    assert summary["messages"] == 11
    assert (summary["first_time"], summary["last_time"]) == (
        "2026-01-01T00:00:01.000000000Z",
        "2026-01-01T00:00:11.000000000Z",
    )
    assert summary["subjects"] == {
        "meshery-server.meshsync.store": 1,
        "other.binary": 1,
        "other.text": 1,
        "replay.core": 6,
        "replay.request": 2,
    }
    assert summary["elapsed_s"] is None


def test_dry_run_of_a_snapshot_counts_its_objects(tmp_path: Path) -> None:
    """--dry-run --snapshot counts one ADDED message per object and connects to nothing."""
    snapshot = tmp_path / "snapshot.yaml"
    snapshot.write_text(
        "kind: Namespace\nmetadata: {name: a, uid: u1}\n---\n"
        "kind: Pod\nmetadata: {name: p, namespace: a, uid: u2}\n"
    )
    out = replay_cli(
        "--snapshot", snapshot, "--dry-run", "--nats-url", f"nats://127.0.0.1:{free_port()}"
    )
    assert out.returncode == 0, out.stderr
    summary = summary_event(out.stderr, "replay_summary")
    assert (summary["messages"], summary["subjects"]) == (2, {CORE_SUBJECT: 2})
