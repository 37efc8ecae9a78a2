"""`recorder run --mode jetstream`: at-least-once capture that journals each stream message once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from broker import NatsServer
from polling import wait_until
from run_helpers import RecorderProcess, Recorders, connect, messages_of, read_records, run_cli

from recorder.meshsync import CORE_SUBJECT

STREAM = "MESHSYNC_TEST"
JS_ENV = {
    "RECORDER_JETSTREAM_CREATE_STREAM": "true",
    "RECORDER_JETSTREAM_STREAM": STREAM,
    "RECORDER_JETSTREAM_BATCH": "20",
    # Messages delivered to the killed recorder come back after this long.
    "RECORDER_JETSTREAM_ACK_WAIT": "2s",
}


def js_publish(url: str, count: int) -> list[int]:
    """Publish `count` numbered messages into the stream; returns the stream sequences acked."""

    async def run() -> list[int]:
        nc = await connect(url)
        try:
            js = nc.jetstream()
            acks = [await js.publish(CORE_SUBJECT, f"js-{i}".encode()) for i in range(count)]
            return [ack.seq for ack in acks]
        finally:
            await nc.close()

    return asyncio.run(run())


def consumer_settled(url: str) -> bool:
    """Whether the recorder's durable consumer has acked everything and nothing is pending."""

    async def run() -> bool:
        nc = await connect(url)
        try:
            info = await nc.jsm().consumer_info(STREAM, "meshsync-recorder")
            return bool(info.num_pending == 0 and info.num_ack_pending == 0)
        finally:
            await nc.close()

    return asyncio.run(run())


def stream_seqs(journal: Path) -> list[int]:
    return [m.stream_seq for m in messages_of(read_records(journal)) if m.stream_seq is not None]


def test_sigkill_mid_consumption_then_restart_journals_every_message_exactly_once(
    nats_server_factory: Callable[..., NatsServer], recorders: Recorders, tmp_path: Path
) -> None:
    """Killed with SIGKILL while consuming a stream and restarted, the recorder ends with every published message in the journal exactly once."""
    server = nats_server_factory(jetstream=True)
    journal = tmp_path / "journal"

    def start() -> RecorderProcess:
        recorder = recorders.start(
            journal,
            server.url,
            subjects=[CORE_SUBJECT],
            mode="jetstream",
            fsync="always",
            env=JS_ENV,
        )
        recorder.wait_ready()
        return recorder

    creator = start()  # creates the stream
    # Stopping waits for the fetch in flight (up to a second), not for the drain timeout.
    assert creator.stop(timeout=3) == 0
    published = js_publish(server.url, 2000)
    assert published == list(range(1, 2001))
    first = start()
    first.wait_written(300)
    first.kill()
    at_kill = stream_seqs(journal)
    assert 300 <= len(at_kill) < 2000, "the kill should land mid-consumption"

    second = start()
    wait_until(lambda: len(set(stream_seqs(journal))) == 2000, 20, "all 2000 stream messages")
    # Everything acked, including what the killed consumer held and got back after ack_wait.
    wait_until(lambda: consumer_settled(server.url), 20, "the consumer to have nothing pending")
    assert second.stop() == 0

    seqs = stream_seqs(journal)
    duplicates = [seq for seq, n in Counter(seqs).items() if n > 1]
    assert duplicates == []
    assert sorted(seqs) == published
    payloads = {m.stream_seq: m.payload for m in messages_of(read_records(journal))}
    assert all(payloads[seq] == f"js-{seq - 1}".encode() for seq in published)
    assert run_cli("verify", str(journal)).returncode == 0
