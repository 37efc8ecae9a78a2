"""`recorder replay`: journal (or snapshot) -> filters -> NATS, paced against the clock.

Selection and scheduling are pure (`ReplayPlan`, `map_subject`, `Pacer`); `replay()` is the
NATS edge. Nothing here ever writes to the journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import cast

from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.errors import StaleConnectionError

from recorder import natsclient
from recorder.config import NatsConfig
from recorder.errors import BrokerError, PublishError, SegmentGoneError
from recorder.journal.directory import journal_segments
from recorder.journal.gaps import Gap, listing_gaps
from recorder.journal.query import Query
from recorder.journal.reader import JournalReader
from recorder.journal.record import Message
from recorder.journal.segment import list_segments, summarize
from recorder.manifest import added_envelope
from recorder.meshsync import CORE_SUBJECT, decode, events_of
from recorder.natsclient import FIRST_CONNECT_OPTIONS, auth_options, tls_context
from recorder.replay.publisher import Sink
from recorder.replay.snapshot_source import load_snapshot
from recorder.subjects import SubjectMap, map_subject
from recorder.units import mask_url

# Flat out, flow control: hand runs of up to SEND_EVERY messages to the socket, and wait for
# the broker's PONG once FLUSH_EVERY messages or FLUSH_BYTES are unconfirmed. What is buffered
# stays under FLUSH_BYTES plus one run (a journal's runs come from one read chunk, about 1 MiB,
# or are a single record), and a broker that stops reading is noticed within CONFIRM_TIMEOUT_S.
SEND_EVERY = 128
FLUSH_EVERY = 1024
FLUSH_BYTES = 4 * 1024 * 1024
CONFIRM_TIMEOUT_S = 10.0


# -- selection --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Selection:
    """Which recorded messages to replay: the journal query plus MeshSync kind/namespace."""

    query: Query = field(default_factory=Query)
    kinds: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()

    def admits_payload(self, message: Message) -> bool:
        if not self.kinds and not self.namespaces:
            return True
        kinds = {kind.lower() for kind in self.kinds}
        for event in events_of(decode(message.payload, message.subject)):
            if kinds and event.kind.lower() not in kinds:
                continue
            if self.namespaces and event.namespace not in self.namespaces:
                continue
            return True
        return False


# One message to publish, with where it came from (seq and time: for resuming and pacing). A
# journal's message unchanged by maps and --msg-id is published as the very record read.
Outgoing = Message


@dataclass(slots=True)
class ReplayStats:
    sent: int = 0
    skipped: int = 0
    bytes: int = 0
    first_time_ns: int | None = None
    last_time_ns: int | None = None
    last_seq: int | None = None
    subjects: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    interrupted: bool = False
    gaps: list[Gap] = field(default_factory=list)  # met while reading the journal

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def count(self, run: Sequence[Outgoing]) -> None:
        """Count a run of messages sent (or, in a dry run, that would be)."""
        if not run:
            return
        self.sent += len(run)
        self.bytes += sum(map(len, map(_payload_of, run)))
        self.subjects.update(map(_subject_of, run))
        if self.first_time_ns is None:
            self.first_time_ns = run[0].time_ns
        self.last_time_ns = run[-1].time_ns
        self.last_seq = run[-1].seq


_payload_of = attrgetter("payload")
_subject_of = attrgetter("subject")


def journal_batches(
    directory: Path,
    selection: Selection,
    *,
    maps: tuple[SubjectMap, ...] = (),
    prefix: str = "",
    msg_id: bool = False,
    stats: ReplayStats | None = None,
) -> Iterator[list[Outgoing]]:
    """The journal's messages that the selection admits, mapped and ready to publish, in runs.

    Runs are the reader's (a read chunk's worth, about 1 MiB, from one segment): handled a run
    at a time, replaying costs little more than reading and publishing.
    """
    stats = stats if stats is not None else ReplayStats()
    instances: dict[int, str] = {}
    mapped: dict[str, str] = {}  # a journal has few subjects: map each once
    filtered = bool(selection.kinds or selection.namespaces)
    reader = JournalReader(directory, query=selection.query)
    stats.gaps = reader.stats.gaps  # filled in as the read goes
    for batch in reader.batches():
        # A reader not asked for markers returns messages only.
        messages = cast(list[Message], batch.records)
        if filtered:
            admitted = [message for message in messages if selection.admits_payload(message)]
            stats.skipped += len(messages) - len(admitted)
            messages = admitted
        if maps or prefix or msg_id:
            instance = None
            if msg_id:
                instance = instances.get(batch.segment)
                if instance is None:
                    instance = instances[batch.segment] = _instance_of(directory, batch.segment)
            messages = [_remade(message, maps, prefix, mapped, instance) for message in messages]
        if messages:
            yield messages


def _remade(
    message: Message,
    maps: tuple[SubjectMap, ...],
    prefix: str,
    mapped: dict[str, str],
    instance: str | None,
) -> Message:
    """The message under its mapped subject, with a Nats-Msg-Id when there is an instance."""
    subject = mapped.get(message.subject)
    if subject is None:
        subject = mapped[message.subject] = map_subject(message.subject, maps, prefix)
    headers = message.headers
    if instance is not None:
        headers = (*(headers or ()), ("Nats-Msg-Id", f"{instance}-{message.seq}"))
    return Message(message.seq, message.time_ns, subject, message.reply, headers, message.payload)


def _instance_of(directory: Path, number: int) -> str:
    """The recorder instance that wrote a segment: with the seq, a stable message id."""
    for segment in list_segments(directory):
        if segment.number == number:
            with contextlib.suppress(SegmentGoneError):
                header = summarize(segment).header
                if header is not None:
                    return header.instance_id.hex()
    return "0" * 32


def journal_gaps(directory: Path, query: Query) -> list[Gap]:
    """Segments missing from the journal's numbering where they may hold records of `query`."""
    return listing_gaps(journal_segments(directory), query.bounds)


def snapshot_messages(
    path: Path, *, maps: tuple[SubjectMap, ...] = (), prefix: str = "", selection: Selection
) -> Iterator[Outgoing]:
    """One MeshSync ADDED envelope per object of a `compact` snapshot (YAML or JSON List)."""
    subject = map_subject(CORE_SUBJECT, maps, prefix)
    query = selection.query
    for index, manifest in enumerate(load_snapshot(path), start=1):
        # The object's position is its seq, so the SIGINT hint `--from-seq N` resumes here too.
        if (query.from_seq is not None and index < query.from_seq) or (
            query.to_seq is not None and index > query.to_seq
        ):
            continue
        kind = str(manifest.get("kind", ""))
        namespace = str(manifest.get("metadata", {}).get("namespace", ""))
        if selection.kinds and kind.lower() not in {k.lower() for k in selection.kinds}:
            continue
        if selection.namespaces and namespace not in selection.namespaces:
            continue
        yield Outgoing(index, 0, subject, "", None, added_envelope(manifest))


# -- pacing -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Pacer:
    """When each message is due: recorded gaps divided by `speed`, capped at `rate` per second.

    Deadlines are computed from the start against the clock, never by summing sleeps, so a long
    replay does not drift. `speed=None` means as fast as the broker accepts.
    """

    speed: float | None
    rate: float | None
    start_s: float = 0.0
    first_time_ns: int | None = None
    sent: int = 0
    # The rate cap counts from the last message that was not held back by it, so a quiet
    # stretch in the recording does not bank credit for a burst above the cap afterwards.
    rate_anchor_s: float = 0.0
    rate_held: int = 0

    def due(self, time_ns: int) -> float:
        """Seconds after the start at which the next message, recorded at `time_ns`, is due."""
        if self.first_time_ns is None:
            self.first_time_ns = time_ns
        offset = 0.0
        if self.speed is not None:
            offset = max(0.0, (time_ns - self.first_time_ns) / 1e9 / self.speed)
        if self.rate is not None:
            capped = self.rate_anchor_s + self.rate_held / self.rate
            if self.sent and offset > capped:
                self.rate_anchor_s, self.rate_held = offset, 0
            else:
                offset = capped
            self.rate_held += 1
        self.sent += 1
        return offset


# -- the NATS edge ----------------------------------------------------------------------------


async def connect(nats_cfg: NatsConfig) -> tuple[Client, list[BaseException]]:
    """A connection for publishing; async errors (permission violations) land in the list."""
    errors: list[BaseException] = []

    async def on_error(exc: Exception) -> None:
        errors.append(exc)

    try:
        nc = await natsclient.connect(
            servers=list(nats_cfg.urls),
            name=f"{nats_cfg.name}-replay",
            connect_timeout=nats_cfg.connect_timeout,
            allow_reconnect=False,
            **FIRST_CONNECT_OPTIONS,
            tls=tls_context(nats_cfg),
            error_cb=on_error,
            **auth_options(nats_cfg),
        )
    except Exception as exc:  # noqa: BLE001 - nats-py raises many unrelated types
        reason = natsclient.describe_error(errors[-1] if errors else exc)
        urls = ", ".join(map(mask_url, nats_cfg.urls))  # a URL may carry user:password@
        raise BrokerError(f"cannot connect to {urls}: {reason}") from None
    return nc, errors


async def replay(
    batches: Iterable[Sequence[Outgoing]],
    publisher: Sink,
    errors: list[BaseException],
    pacer: Pacer,
    stop: asyncio.Event,
    stats: ReplayStats,
    on_sent: Callable[[ReplayStats], None] | None = None,
) -> ReplayStats:
    """Publish in order, on schedule; stops cleanly after the message in flight when `stop` is set.

    Paced, each message leaves on time, alone. Flat out, messages leave in runs of up to
    SEND_EVERY. Reading the journal never awaits, so sending is also when signals and the
    broker's replies get in.
    """
    started = time.monotonic()
    pacer.start_s = started
    paced = pacer.speed is not None or pacer.rate is not None
    try:
        for run in _runs(batches, 1 if paced else SEND_EVERY):
            if stop.is_set():
                stats.interrupted = True
                break
            wait = started + pacer.due(run[0].time_ns) - time.monotonic() if paced else 0.0
            if wait > 0:
                with_stop = asyncio.ensure_future(stop.wait())
                done, _ = await asyncio.wait({with_stop}, timeout=wait)
                with_stop.cancel()
                if done:
                    stats.interrupted = True
                    break
            # A rejection (permissions) arrives asynchronously: stop at the first sign of one
            # rather than at the next flush, which at a recorded pace may be hours away.
            if errors:
                _raise_async_error(errors, stats)
            publisher.add(run)
            stats.count(run)
            await _send(publisher, stats)
            if on_sent is not None:
                on_sent(stats)
        await _send(publisher, stats, confirm=True)
        _raise_async_error(errors, stats)
    finally:
        stats.elapsed_s = time.monotonic() - started
    return stats


def _runs(batches: Iterable[Sequence[Outgoing]], size: int) -> Iterator[Sequence[Outgoing]]:
    """The batches' messages in runs of at most `size`, in order."""
    for batch in batches:
        if len(batch) <= size:
            yield batch
        else:
            for start in range(0, len(batch), size):
                yield batch[start : start + size]


async def _send(publisher: Sink, stats: ReplayStats, *, confirm: bool = False) -> None:
    """Send what was added; wait for the broker's PONG when asked or when too much is open."""
    try:
        await publisher.send()
        if (
            confirm
            or publisher.unconfirmed_messages >= FLUSH_EVERY
            or publisher.unconfirmed_bytes >= FLUSH_BYTES
        ):
            await publisher.confirm(timeout=CONFIRM_TIMEOUT_S)
    except PublishError as exc:
        raise BrokerError(f"{exc} (after seq {stats.last_seq})") from None
    except NatsError as exc:
        raise BrokerError(
            f"the broker did not confirm messages up to seq {stats.last_seq}: {exc}"
        ) from None


def _raise_async_error(errors: list[BaseException], stats: ReplayStats) -> None:
    if errors:
        lost = isinstance(errors[0], StaleConnectionError | OSError)
        what = "lost the connection to the broker" if lost else "the broker rejected a publish"
        raise BrokerError(f"{what} (after seq {stats.last_seq}): {errors[0]}")
