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

from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError, NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from recorder.config import Config
from recorder.errors import BrokerError, ConfigError
from recorder.journal.reader import JournalReader
from recorder.journal.record import Incoming, Message
from recorder.journal.segment import list_segments
from recorder.log import get_logger
from recorder.recording.bridge import Bridge
from recorder.recording.intake import Intake
from recorder.recording.metrics import Metrics

log = get_logger("jetstream")

_FETCH_TIMEOUT_S = 1.0
_RETRY_S = 1.0
_PRUNE_ABOVE = 10_000


def journaled_stream_seqs(directory: Path, above: int) -> set[int]:
    """Stream sequences above `above` (the consumer's ack floor) that the journal already holds.

    Read from the newest segment back to the first one whose stream sequences are all at or
    below `above`: anything older was acknowledged and will not be redelivered.
    """
    found: set[int] = set()
    reader = JournalReader(directory, salvage=True)
    for segment in reversed(list_segments(directory)):
        seqs = [
            record.stream_seq
            for _position, record in reader.segment_records(segment)
            if isinstance(record, Message) and record.stream_seq is not None
        ]
        if seqs and max(seqs) <= above:
            break
        found.update(seq for seq in seqs if seq > above)
    return found


class JetStreamIntake:
    """Fetch a batch, hand it to the writer, wait for the fsync barrier, then ack the batch."""

    def __init__(self, bridge: Bridge, intake: Intake, metrics: Metrics, cfg: Config) -> None:
        self.bridge = bridge
        self.intake = intake
        self.metrics = metrics
        self.cfg = cfg
        # Redeliveries come back out of order (after ack_wait or a nak), so a high-water mark
        # cannot tell them apart: remember every journaled sequence above the ack floor.
        self.ack_floor = 0
        self.journaled: set[int] = set()
        self._task: asyncio.Task[None] | None = None
        self._waiting: asyncio.Future[bool] | None = None  # the barrier of the batch in hand
        self._stopping = False
        self._subscription: Any = None

    async def start(self) -> None:
        js_cfg = self.cfg.jetstream
        nc = self.bridge.client()
        js = nc.jetstream()
        try:
            await self._ensure_stream(nc.jsm())
            info = await nc.jsm().add_consumer(
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
        self.ack_floor = info.ack_floor.stream_seq if info.ack_floor else 0
        self.journaled = await asyncio.to_thread(
            journaled_stream_seqs, self.cfg.journal.dir, self.ack_floor
        )
        self.metrics.subscribed = True
        log.info(
            "jetstream_consuming",
            stream=js_cfg.stream,
            consumer=js_cfg.consumer,
            ack_floor=self.ack_floor,
            journaled_above_floor=len(self.journaled),
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
        if self._waiting is not None:
            # The writer cannot make the batch durable (a disk fault): nak it now, while the
            # connection is up, rather than leave it to ack_wait. If the writer still writes it
            # at close, the next run finds it in the journal and acks the redelivery unwritten.
            _set_once(self._waiting, False)
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._subscription is not None:
            # A delivery nobody will read (a late pull reply) would hold the connection's drain
            # until its timeout; left unacknowledged, it is redelivered to the next run.
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()

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
        skipped = 0
        for msg in messages:
            stream_seq = msg.metadata.sequence.stream
            if stream_seq <= self.ack_floor or stream_seq in self.journaled:
                skipped += 1
                await msg.ack()  # already durable in the journal: a redelivery after a crash
                continue
            fresh.append((msg, stream_seq))
        if skipped:
            self.metrics.redeliveries_recognised += skipped
            log.info("jetstream_redeliveries_acked", count=skipped)
        if not fresh:
            return
        # Handed over, never refused by the byte bound: a refused message would be acked
        # unwritten. The fetched batch is in memory already; jetstream.batch bounds it.
        self.intake.hand_over(
            Incoming(
                time.time_ns(),
                msg.subject,
                "",
                tuple(msg.headers.items()) if msg.headers else None,
                msg.data,
                stream_seq,
            )
            for msg, stream_seq in fresh
        )
        if not await self._barrier():
            # Not durable: leave them unacknowledged so the server redelivers them. Part of the
            # batch may have reached the journal before the error: learn which, so their
            # redeliveries are not written twice.
            self.journaled |= await asyncio.to_thread(
                journaled_stream_seqs, self.cfg.journal.dir, self.ack_floor
            )
            log.warning("jetstream_batch_not_durable_nak", count=len(fresh))
            for msg, _stream_seq in fresh:
                with contextlib.suppress(Exception):  # unacked, it comes back after ack_wait
                    await msg.nak(delay=_RETRY_S)
            return
        for msg, stream_seq in fresh:
            await msg.ack()
            self.journaled.add(stream_seq)
        if len(self.journaled) > _PRUNE_ABOVE:
            await self._prune()

    async def _prune(self) -> None:
        """Forget journaled sequences the server has seen acknowledged: they never come back."""
        nc = self.bridge.client()
        js_cfg = self.cfg.jetstream
        try:
            info = await nc.jsm().consumer_info(js_cfg.stream, js_cfg.consumer)
        except Exception as exc:  # noqa: BLE001 - pruning is an optimisation; retry next batch
            log.warning("jetstream_prune_failed", error=repr(exc))
            return
        if info.ack_floor and info.ack_floor.stream_seq > self.ack_floor:
            self.ack_floor = info.ack_floor.stream_seq
            self.journaled = {seq for seq in self.journaled if seq > self.ack_floor}

    async def _barrier(self) -> bool:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bool] = loop.create_future()

        def resolve(ok: bool) -> None:
            loop.call_soon_threadsafe(_set_once, done, ok)

        self.intake.barrier(resolve)
        self._waiting = done
        try:
            return await done
        finally:
            self._waiting = None


def _set_once(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)
