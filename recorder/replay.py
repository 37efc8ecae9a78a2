"""`recorder replay`: journal (or snapshot) -> filters -> NATS, paced against the clock.

Selection and scheduling are pure (`ReplayPlan`, `map_subject`, `Pacer`); `replay()` is the
NATS edge. Nothing here ever writes to the journal.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import structlog
import yaml
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.errors import MaxPayloadError, StaleConnectionError

from recorder import natsclient
from recorder.bridge import FIRST_CONNECT_OPTIONS, auth_options, tls_context
from recorder.config import NatsConfig, mask_url
from recorder.errors import BrokerError, UsageError
from recorder.journal.reader import JournalReader, Query
from recorder.journal.record import Message
from recorder.journal.segment import list_segments, summarize
from recorder.manifest import added_envelope
from recorder.meshsync import CORE_SUBJECT, decode, events_of
from recorder.natsclient import HeaderPairs
from recorder.subjects import is_valid_subject

log = structlog.get_logger("recorder.replay")

FLUSH_EVERY = 1024  # `--speed max`: wait for the broker at least this often (flow control)


# -- subject mapping --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubjectMap:
    """`FROM=TO`: the wildcards of FROM (`*` tokens, a final `>`) fill those of TO in order."""

    source: str
    target: str

    @classmethod
    def parse(cls, text: str) -> SubjectMap:
        source, sep, target = text.partition("=")
        if not sep or not is_valid_subject(source) or not is_valid_subject(target):
            raise UsageError(f"--subject-map: expected FROM=TO with NATS subjects, got {text!r}")
        if target.count("*") > source.count("*") or (
            target.endswith(">") and not source.endswith(">")
        ):
            raise UsageError(f"--subject-map: {target!r} uses wildcards that {source!r} lacks")
        return cls(source, target)

    def apply(self, subject: str) -> str | None:
        """The mapped subject, or None when `subject` does not match FROM."""
        pattern = self.source.split(".")
        tokens = subject.split(".")
        captured: list[str] = []
        tail: list[str] = []
        for index, part in enumerate(pattern):
            if part == ">":
                if len(tokens) <= index:
                    return None
                tail = tokens[index:]
                break
            if index >= len(tokens):
                return None
            if part == "*":
                captured.append(tokens[index])
            elif part != tokens[index]:
                return None
        else:
            if len(tokens) != len(pattern):
                return None
        out = []
        stars = iter(captured)
        for part in self.target.split("."):
            if part == "*":
                out.append(next(stars))
            elif part == ">":
                out.extend(tail)
            else:
                out.append(part)
        return ".".join(out)


def map_subject(subject: str, maps: tuple[SubjectMap, ...], prefix: str = "") -> str:
    """The first matching map wins; then the prefix, if any, is put in front."""
    for mapping in maps:
        mapped = mapping.apply(subject)
        if mapped is not None:
            subject = mapped
            break
    if prefix:
        subject = f"{prefix.rstrip('.')}.{subject}"
    return subject


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


class Outgoing(NamedTuple):
    """One message to publish, with where it came from (for resuming and pacing)."""

    seq: int
    time_ns: int
    subject: str
    reply: str
    headers: dict[str, str] | None
    payload: bytes


@dataclass(slots=True)
class ReplayStats:
    sent: int = 0
    skipped: int = 0
    bytes: int = 0
    first_time_ns: int | None = None
    last_time_ns: int | None = None
    last_seq: int | None = None
    subjects: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    interrupted: bool = False

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def count(self, item: Outgoing) -> None:
        self.sent += 1
        self.bytes += len(item.payload)
        self.subjects[item.subject] = self.subjects.get(item.subject, 0) + 1
        if self.first_time_ns is None:
            self.first_time_ns = item.time_ns
        self.last_time_ns = item.time_ns
        self.last_seq = item.seq


def journal_messages(
    directory: Path,
    selection: Selection,
    *,
    maps: tuple[SubjectMap, ...] = (),
    prefix: str = "",
    msg_id: bool = False,
    stats: ReplayStats | None = None,
) -> Iterator[Outgoing]:
    """The journal's messages that the selection admits, mapped and ready to publish."""
    stats = stats if stats is not None else ReplayStats()
    instances: dict[int, str] = {}
    mapped: dict[str, str] = {}  # a journal has few subjects: map each once
    filtered = bool(selection.kinds or selection.namespaces)
    for position, record in JournalReader(directory, query=selection.query):
        if not isinstance(record, Message) or (filtered and not selection.admits_payload(record)):
            stats.skipped += 1
            continue
        subject = mapped.get(record.subject)
        if subject is None:
            subject = mapped[record.subject] = map_subject(record.subject, maps, prefix)
        headers = HeaderPairs(record.headers) if record.headers else None
        if msg_id:
            instance = instances.get(position.segment)
            if instance is None:
                instance = _instance_of(directory, position.segment)
                instances[position.segment] = instance
            msg_id_header = ("Nats-Msg-Id", f"{instance}-{record.seq}")
            headers = HeaderPairs((*(record.headers or ()), msg_id_header))
        yield Outgoing(record.seq, record.time_ns, subject, record.reply, headers, record.payload)


def _instance_of(directory: Path, number: int) -> str:
    """The recorder instance that wrote a segment: with the seq, a stable message id."""
    for segment in list_segments(directory):
        if segment.number == number:
            header = summarize(segment).header
            if header is not None:
                return header.instance_id.hex()
    return "0" * 32


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


def load_snapshot(path: Path) -> list[dict[str, Any]]:
    """The manifests of a YAML (multi-document) or JSON (`v1` `List`) snapshot."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--snapshot: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"--snapshot: {path} is not UTF-8 text (byte {exc.start})") from None
    documents: list[Any] = []
    try:
        documents.extend(doc for doc in yaml.load_all(text, Loader=_Loader) if doc is not None)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(
            f"--snapshot: {path}: document {len(documents) + 1} is not YAML or JSON{where}: "
            f"{problem}"
        ) from None
    if (
        len(documents) == 1
        and isinstance(documents[0], dict)
        and documents[0].get("kind") == "List"
    ):
        documents = list(documents[0].get("items") or [])
    bad = [
        i
        for i, doc in enumerate(documents)
        if not isinstance(doc, dict)
        or "kind" not in doc
        or not isinstance(doc.get("metadata", {}), dict)
    ]
    if bad:
        raise UsageError(f"--snapshot: {path}: document {bad[0] + 1} is not a Kubernetes object")
    return documents


_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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
        reason = str(errors[-1] if errors else exc) or type(exc).__name__
        urls = ", ".join(map(mask_url, nats_cfg.urls))  # a URL may carry user:password@
        raise BrokerError(f"cannot connect to {urls}: {reason}") from None
    return nc, errors


async def replay(
    messages: Iterable[Outgoing],
    nc: Client,
    errors: list[BaseException],
    pacer: Pacer,
    stop: asyncio.Event,
    stats: ReplayStats,
    on_sent: Callable[[ReplayStats], None] | None = None,
) -> ReplayStats:
    """Publish in order, on schedule; stops cleanly after the message in flight when `stop` is set."""
    started = time.monotonic()
    pacer.start_s = started
    unflushed = 0
    paced = pacer.speed is not None or pacer.rate is not None
    publish = nc.publish
    try:
        for count, item in enumerate(messages):
            if count % 256 == 0:
                # Reading the journal never awaits: let signals and the broker's replies in.
                await asyncio.sleep(0)
            if stop.is_set():
                stats.interrupted = True
                break
            wait = started + pacer.due(item.time_ns) - time.monotonic() if paced else 0.0
            if wait > 0:
                with_stop = asyncio.ensure_future(stop.wait())
                done, _ = await asyncio.wait({with_stop}, timeout=wait)
                with_stop.cancel()
                if done:
                    stats.interrupted = True
                    break
            # A rejection (permissions) arrives asynchronously: stop at the first sign of one
            # rather than at the next flush, which at a recorded pace may be hours away.
            _raise_async_error(errors, stats)
            try:
                await publish(item.subject, item.payload, reply=item.reply, headers=item.headers)
            except MaxPayloadError:
                raise BrokerError(
                    f"seq {item.seq}: payload of {len(item.payload)} bytes exceeds the broker's "
                    f"max_payload ({nc.max_payload})"
                ) from None
            except NatsError as exc:
                raise BrokerError(f"seq {item.seq}: publish failed: {exc}") from None
            stats.count(item)
            unflushed += 1
            if unflushed >= FLUSH_EVERY:
                await _flush(nc, stats)
                unflushed = 0
                _raise_async_error(errors, stats)
            if on_sent is not None:
                on_sent(stats)
        await _flush(nc, stats)
        _raise_async_error(errors, stats)
    finally:
        stats.elapsed_s = time.monotonic() - started
    return stats


async def _flush(nc: Client, stats: ReplayStats) -> None:
    try:
        await nc.flush(timeout=10)
    except NatsError as exc:
        raise BrokerError(
            f"the broker did not confirm messages up to seq {stats.last_seq}: {exc}"
        ) from None


def _raise_async_error(errors: list[BaseException], stats: ReplayStats) -> None:
    if errors:
        lost = isinstance(errors[0], StaleConnectionError | OSError)
        what = "lost the connection to the broker" if lost else "the broker rejected a publish"
        raise BrokerError(f"{what} (after seq {stats.last_seq}): {errors[0]}")
