"""The NATS edge: connect (auth, TLS, backoff), subscribe, and hand messages to the intake."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from nats.aio.client import Client, Server
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import SlowConsumerError

from recorder import natsclient
from recorder.config import NatsConfig
from recorder.errors import BrokerError
from recorder.journal.record import Incoming, MarkerType
from recorder.log import get_logger
from recorder.natsclient import (
    FIRST_CONNECT_OPTIONS,
    RecordingClient,
    auth_options,
    tls_context,
)
from recorder.recording.intake import Intake
from recorder.recording.metrics import Metrics
from recorder.units import mask_url

log = get_logger("bridge")

_FIRST_RETRY_S = 0.1


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: the first retry is quick, later ones spread out."""
    if attempt <= 0:
        return _FIRST_RETRY_S * rng.uniform(0.5, 1.5)
    return float(min(cap, base * 2 ** (attempt - 1)) * rng.uniform(0.5, 1.0))


class ReconnectPolicy:
    """nats-py's reconnect handler: round-robin servers, backoff with jitter, forever."""

    def __init__(self, base: float, cap: float, rng: random.Random | None = None) -> None:
        self.base = base
        self.cap = cap
        self.attempt = 0
        self._rng = rng or random.Random()

    def __call__(self, servers: list[Server], info: dict[str, Any]) -> tuple[Server | None, float]:
        delay = backoff_delay(self.attempt, self.base, self.cap, self._rng)
        server = servers[self.attempt % len(servers)] if servers else None
        self.attempt += 1
        return server, delay

    def reset(self) -> None:
        self.attempt = 0


class Bridge:
    """One NATS connection and its subscriptions, feeding an Intake; reconnects forever."""

    def __init__(self, nats_cfg: NatsConfig, intake: Intake, metrics: Metrics) -> None:
        self.cfg = nats_cfg
        self.intake = intake
        self.metrics = metrics
        self.nc: Client | None = None
        self.subscriptions: list[Subscription] = []
        self.reconnect_policy = ReconnectPolicy(
            nats_cfg.reconnect_wait, nats_cfg.max_reconnect_wait
        )
        self._closing = False
        self._last_error: Exception | None = None
        # While a first connect is tried, nats-py's own errors are summed up in one
        # broker_unreachable line per attempt rather than logged each on their own.
        self._connecting = False
        # The configured URLs as they may be shown: a URL may carry user:password@.
        self.servers = [mask_url(url) for url in nats_cfg.urls]

    async def connect(self, *, retry: bool, stop: asyncio.Event | None = None) -> None:
        """Connect, retrying with backoff while `retry` (until `stop` is set); else fail fast."""
        natsclient.check_internals()  # an unsupported client is no reason to retry
        options = self._options()
        attempt = 0
        rng = random.Random()
        while True:
            self._last_error = None
            self._connecting = True
            try:
                # After a failed TLS handshake nats-py's connect() can wait forever for the old
                # socket to close (nats-io/nats.py#718): bound it, and report what error_cb saw.
                self.nc = await asyncio.wait_for(
                    natsclient.connect(**options), self._first_connect_bound()
                )
            except Exception as exc:  # noqa: BLE001 - nats-py raises many unrelated types
                self._connecting = False
                reason = natsclient.describe_error(self._last_error or exc)
                if _is_auth_error(reason) or not retry:
                    raise BrokerError(
                        f"cannot connect to {', '.join(self.servers)}: {reason}"
                    ) from None
                delay = backoff_delay(
                    attempt, self.cfg.reconnect_wait, self.cfg.max_reconnect_wait, rng
                )
                log.warning(
                    "broker_unreachable",
                    servers=self.servers,
                    error=reason,
                    retry_in_s=round(delay, 2),
                )
                attempt += 1
                if stop is not None:
                    try:
                        await asyncio.wait_for(stop.wait(), timeout=delay)
                    except TimeoutError:
                        continue
                    # Asked to stop while waiting for the broker: a clean stop, not a failure.
                    log.info("connect_abandoned", reason="stop requested")
                    return
                await asyncio.sleep(delay)
                continue
            self._connecting = False
            self.nc.options["max_reconnect_attempts"] = -1
            self.metrics.connected = True
            log.info("broker_connected", url=_url(self.nc))
            return

    def _first_connect_bound(self) -> float:
        """Seconds a first connect may take: each server tried as often as nats-py is told to."""
        attempts = len(self.cfg.urls) * (FIRST_CONNECT_OPTIONS["max_reconnect_attempts"] + 1)
        wait = FIRST_CONNECT_OPTIONS["reconnect_time_wait"]
        return float(attempts * (2 * self.cfg.connect_timeout + wait) + 1)

    def _options(self) -> dict[str, Any]:
        return {
            "servers": list(self.cfg.urls),
            "name": self.cfg.name,
            "connect_timeout": self.cfg.connect_timeout,
            "allow_reconnect": True,
            **FIRST_CONNECT_OPTIONS,
            "reconnect_to_server_handler": self.reconnect_policy,
            "ping_interval": 20,
            "max_outstanding_pings": 3,
            "tls": tls_context(self.cfg),
            "error_cb": self._on_error,
            "disconnected_cb": self._on_disconnected,
            "reconnected_cb": self._on_reconnected,
            "closed_cb": self._on_closed,
            **auth_options(self.cfg),
        }

    async def subscribe(self, subjects: tuple[str, ...], queue_group: str = "") -> None:
        nc = self.client()
        put = self.intake.put
        now = time.time_ns
        # tuple.__new__ builds the NamedTuple without its Python-level __new__ frame: about half
        # the cost of Incoming(...) per message, and the same object.
        incoming = tuple.__new__

        def on_direct(
            subject: str, reply: str, headers: dict[str, str] | None, data: bytes
        ) -> None:
            # The hot path: one Incoming (a tuple) onto the intake, nothing else.
            headers_pairs = tuple(headers.items()) if headers else None
            put(incoming(Incoming, (now(), subject, reply, headers_pairs, data, None)))

        async def on_message(msg: Msg) -> None:
            # Only for what arrives before direct delivery is registered, or on a plain Client.
            on_direct(msg.subject, msg.reply, msg.headers, msg.data)

        for subject in subjects:
            # No pending limits: direct delivery bypasses nats-py's per-subscription queue, so
            # the intake's bounds (queue_max_messages, queue_max_bytes) are the ones that apply.
            subscription = await nc.subscribe(subject, queue=queue_group, cb=on_message)
            if isinstance(nc, RecordingClient):
                nc.deliver_directly(subscription, on_direct)
            self.subscriptions.append(subscription)
        await nc.flush(timeout=max(1, round(self.cfg.connect_timeout)))
        self.metrics.subscribed = True
        log.info("subscribed", subjects=list(subjects), queue_group=queue_group or None)

    async def publish(self, subject: str, payload: bytes) -> None:
        nc = self.client()
        await nc.publish(subject, payload)
        await nc.flush(timeout=max(1, round(self.cfg.connect_timeout)))

    async def drain(self) -> None:
        """Stop intake gracefully: unsubscribe, deliver what nats-py already holds, close."""
        self._closing = True
        if self.nc is not None and not self.nc.is_closed:
            await self.nc.drain()

    async def close(self) -> None:
        self._closing = True
        if self.nc is not None and not self.nc.is_closed:
            await self.nc.close()

    def client(self) -> Client:
        """The connected nats-py client (JetStream pulls and acks through it)."""
        if self.nc is None:
            raise BrokerError("not connected")
        return self.nc

    # -- nats-py callbacks (event loop) ---------------------------------------------------

    async def _on_error(self, exc: Exception) -> None:
        if isinstance(exc, SlowConsumerError):
            # nats-py dropped this message: its pending limits were exceeded.
            self.intake.count_slow_consumer(exc.subject)
            return
        self._last_error = exc
        if not self._connecting:
            log.warning("broker_error", url=_url(self.nc), error=natsclient.describe_error(exc))

    async def _on_disconnected(self) -> None:
        self.metrics.connected = False
        self.metrics.disconnects += 1
        if self._closing:
            return
        log.warning("broker_disconnected", url=_url(self.nc), servers=self.servers)
        self.intake.mark(MarkerType.DISCONNECTED, {"servers": self.servers})

    async def _on_reconnected(self) -> None:
        self.metrics.connected = True
        self.metrics.reconnects += 1
        self.reconnect_policy.reset()
        url = _url(self.nc)
        log.info("broker_reconnected", url=url)
        self.intake.mark(MarkerType.RECONNECTED, {"url": url})

    async def _on_closed(self) -> None:
        self.metrics.connected = False
        self.metrics.subscribed = False
        if not self._closing:
            log.error("broker_connection_closed")


def _url(nc: Client | None) -> str:
    if nc is None or nc.connected_url is None:
        return ""
    url = nc.connected_url
    return f"{url.scheme}://{url.hostname}:{url.port}"


def _is_auth_error(reason: str) -> bool:
    lowered = reason.lower()
    return "authorization" in lowered or "authentication" in lowered
