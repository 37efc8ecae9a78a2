"""The broker fixtures start real servers that nats-py can use, and clean up after themselves."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import nats
import pytest
from broker import Broker, NatsServer, docker_unavailable_reason
from nats.aio.client import Client


async def _connect(url: str, **options: Any) -> Client:
    async def quiet(_error: Exception) -> None:
        """Keep nats-py from printing expected connection errors to stderr."""

    options.setdefault("connect_timeout", 2)
    return await nats.connect(url, error_cb=quiet, **options)


async def _round_trip(url: str, payload: bytes, **options: Any) -> bytes:
    nc = await _connect(url, **options)
    try:
        sub = await nc.subscribe("fixture.check")
        await nc.publish("fixture.check", payload)
        msg = await sub.next_msg(timeout=5)
        return bytes(msg.data)
    finally:
        await nc.close()


@pytest.mark.any_broker
def test_published_message_comes_back_to_a_subscriber(nats_server: Broker) -> None:
    """A message published to the fixture's broker reaches a subscriber on it byte for byte."""
    payload = b'{"kind": "Pod"}\x00\xff'
    assert asyncio.run(_round_trip(nats_server.url, payload)) == payload


@pytest.mark.any_broker
def test_jetstream_fixture_has_jetstream_enabled(nats_server_js: Broker) -> None:
    """The JetStream fixture's broker accepts a stream and stores a published message in it."""

    async def check() -> int:
        nc = await _connect(nats_server_js.url)
        try:
            js = nc.jetstream()
            await js.add_stream(name="FIXTURE", subjects=["fixture.js"])
            await js.publish("fixture.js", b"kept")
            return int((await js.stream_info("FIXTURE")).state.messages)
        finally:
            await nc.close()

    assert asyncio.run(check()) == 1


def test_restart_keeps_the_port_and_clients_reconnect(
    nats_server_factory: Callable[..., NatsServer],
) -> None:
    """After restart() and a SIGKILL restart the server listens on the same URL and a client reconnects."""
    server = nats_server_factory()
    url = server.url

    async def check() -> bytes:
        reconnected = asyncio.Event()

        async def on_reconnect() -> None:
            reconnected.set()

        nc = await _connect(url, reconnect_time_wait=0.1, reconnected_cb=on_reconnect)
        try:
            for kill in (False, True):
                reconnected.clear()
                server.restart(kill=kill)
                await asyncio.wait_for(reconnected.wait(), timeout=10)
            sub = await nc.subscribe("fixture.after")
            await nc.publish("fixture.after", b"again")
            return bytes((await sub.next_msg(timeout=5)).data)
        finally:
            await nc.close()

    assert asyncio.run(check()) == b"again"
    assert server.url == url


def test_jetstream_store_survives_a_kill(nats_server_factory: Callable[..., NatsServer]) -> None:
    """A stream's messages are still there after the server is killed and restarted."""
    server = nats_server_factory(jetstream=True)

    async def publish() -> None:
        nc = await _connect(server.url)
        try:
            js = nc.jetstream()
            await js.add_stream(name="DURABLE", subjects=["fixture.durable"])
            await js.publish("fixture.durable", b"one")
        finally:
            await nc.close()

    async def count() -> int:
        nc = await _connect(server.url)
        try:
            return int((await nc.jetstream().stream_info("DURABLE")).state.messages)
        finally:
            await nc.close()

    asyncio.run(publish())
    server.restart(kill=True)
    assert asyncio.run(count()) == 1


def test_user_password_server_rejects_a_bad_password(
    nats_server_factory: Callable[..., NatsServer],
) -> None:
    """A server started with user/password refuses a wrong password and accepts the right one."""
    server = nats_server_factory(user="recorder", password="s3cret")
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        asyncio.run(
            _round_trip(server.url, b"x", user="recorder", password="wrong", allow_reconnect=False)
        )
    ok = _round_trip(server.url, b"x", user="recorder", password="s3cret")
    assert asyncio.run(ok) == b"x"


def test_token_server_rejects_a_missing_token(
    nats_server_factory: Callable[..., NatsServer],
) -> None:
    """A server started with a token refuses clients without it and accepts the right one."""
    server = nats_server_factory(token="t0ken")
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        asyncio.run(_round_trip(server.url, b"x", allow_reconnect=False))
    assert asyncio.run(_round_trip(server.url, b"x", token="t0ken")) == b"x"


def test_max_payload_is_announced_to_clients(
    nats_server_factory: Callable[..., NatsServer],
) -> None:
    """The max_payload option reaches the server, which announces it to clients."""
    server = nats_server_factory(max_payload=4096)

    async def announced() -> int:
        nc = await _connect(server.url)
        try:
            return int(nc.max_payload)
        finally:
            await nc.close()

    assert asyncio.run(announced()) == 4096


def test_servers_are_stopped_and_cleaned_up_on_exit() -> None:
    """Leaving the context manager stops the process and removes its working directory."""
    with NatsServer() as server:
        was_running = server.running
    assert was_running
    assert not server.running
    assert not server.workdir.exists()


def test_a_server_that_cannot_start_reports_its_log() -> None:
    """A bad config fails start() with the server's own complaint, and leaves nothing behind."""
    server = NatsServer(config_text="this is { not valid")
    with pytest.raises(RuntimeError, match="nats-server exited"):
        server.__enter__()
    assert not server.workdir.exists()


def test_docker_detection_is_quick() -> None:
    """Deciding whether a Docker engine is reachable takes at most a few seconds."""
    docker_unavailable_reason.cache_clear()
    started = time.monotonic()
    docker_unavailable_reason()
    assert time.monotonic() - started < 5
