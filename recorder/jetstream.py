"""At-least-once capture: a durable JetStream pull consumer, acked only once journaled and fsynced.

Redeliveries of messages already in the journal are recognised by their stream sequence, which
every record made in this mode carries, so they are acknowledged without being written twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import structlog
from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError, NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from recorder.bridge import Bridge
from recorder.config import Config
from recorder.errors import BrokerError, ConfigError
from recorder.intake import Intake
from recorder.journal.reader import JournalReader
from recorder.journal.record import Message
from recorder.journal.segment import list_segments
from recorder.metrics import Metrics

log = structlog.get_logger("recorder.jetstream")

_FETCH_TIMEOUT_S = 1.0
_RETRY_S = 1.0


def last_stream_seq(directory: Path) -> int:
    """The highest stream sequence journaled, from the newest segment that has one."""
    for segment in reversed(list_segments(directory)):
        reader = JournalReader(directory, salvage=True)
        highest = 0
        for _position, record in reader.segment_records(segment):
            if isinstance(record, Message) and record.stream_seq is not None:
                highest = max(highest, record.stream_seq)
        if highest:
            return highest
    return 0


class JetStreamIntake:
    """Fetch a batch, hand it to the writer, wait for the fsync barrier, then ack the batch."""

    def __init__(self, bridge: Bridge, intake: Intake, metrics: Metrics, cfg: Config) -> None:
        if cfg.queue_max_messages < cfg.jetstream.batch:
            raise ConfigError(
                "jetstream.batch", f"must not exceed queue_max_messages ({cfg.queue_max_messages})"
            )
        self.bridge = bridge
        self.intake = intake
        self.metrics = metrics
        self.cfg = cfg
        self.redelivered_skipped = 0
        self.last_stream_seq = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._subscription: Any = None

    async def start(self) -> None:
        self.last_stream_seq = await asyncio.to_thread(last_stream_seq, self.cfg.journal.dir)
        js_cfg = self.cfg.jetstream
        nc = self.bridge._client()
        js = nc.jetstream()
        try:
            await self._ensure_stream(nc.jsm())
            await nc.jsm().add_consumer(
                js_cfg.stream,
                ConsumerConfig(
                    durable_name=js_cfg.consumer,
                    ack_policy=AckPolicy.EXPLICIT,
                    ack_wait=js_cfg.ack_wait,
                    max_ack_pending=max(js_cfg.batch * 4, 1024),
                ),
            )
            self._subscription = await js.pull_subscribe_bind(
                durable=js_cfg.consumer, stream=js_cfg.stream
            )
        except (NoRespondersError, NatsTimeoutError) as exc:
            raise BrokerError(f"JetStream is not enabled on the broker ({exc})") from None
        self.metrics.subscribed = True
        log.info(
            "jetstream_consuming",
            stream=js_cfg.stream,
            consumer=js_cfg.consumer,
            resume_after_stream_seq=self.last_stream_seq,
        )
        self._task = asyncio.create_task(self._loop(), name="jetstream-fetch")

    async def _ensure_stream(self, jsm: Any) -> None:
        js_cfg = self.cfg.jetstream
        try:
            await jsm.stream_info(js_cfg.stream)
        except NotFoundError:
            if not js_cfg.create_stream:
                raise ConfigError(
                    "jetstream.stream",
                    f"stream {js_cfg.stream!r} does not exist (set jetstream.create_stream: true)",
                ) from None
            await jsm.add_stream(
                StreamConfig(
                    name=js_cfg.stream, subjects=list(self.cfg.subjects), storage=StorageType.FILE
                )
            )
            log.info(
                "jetstream_stream_created", stream=js_cfg.stream, subjects=list(self.cfg.subjects)
            )

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        batch = self.cfg.jetstream.batch
        while not self._stopping:
            try:
                messages = await self._subscription.fetch(batch, timeout=_FETCH_TIMEOUT_S)
            except (NatsTimeoutError, TimeoutError):
                continue
            except (ConnectionClosedError, OSError, NoRespondersError) as exc:
                log.warning("jetstream_fetch_failed", error=repr(exc))
                await asyncio.sleep(_RETRY_S)
                continue
            await self._journal_then_ack(messages)

    async def _journal_then_ack(self, messages: list[Msg]) -> None:
        fresh: list[tuple[Msg, int]] = []
        for msg in messages:
            stream_seq = msg.metadata.sequence.stream
            if stream_seq <= self.last_stream_seq:
                self.redelivered_skipped += 1
                await msg.ack()  # already durable in the journal: a redelivery after a crash
                continue
            fresh.append((msg, stream_seq))
        if not fresh:
            return
        for msg, stream_seq in fresh:
            headers = msg.headers
            self.intake.put(
                (
                    time.time_ns(),
                    msg.subject,
                    "",
                    tuple(headers.items()) if headers else None,
                    msg.data,
                    stream_seq,
                )
            )
        if not await self._barrier():
            # Not durable: leave them unacknowledged so the server redelivers them.
            for msg, _stream_seq in fresh:
                await msg.nak(delay=_RETRY_S)
            return
        for msg, _stream_seq in fresh:
            await msg.ack()
        self.last_stream_seq = max(self.last_stream_seq, fresh[-1][1])

    async def _barrier(self) -> bool:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bool] = loop.create_future()

        def resolve(ok: bool) -> None:
            loop.call_soon_threadsafe(_set_once, done, ok)

        self.intake.barrier(resolve)
        return await done


def _set_once(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)
