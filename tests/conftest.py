"""Shared fixtures: real NATS brokers for every test that needs one, and the --run-slow switch."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from broker import Broker, ExternalBroker, NatsServer, container_broker, docker_unavailable_reason
from filesystems import MountRefusedError, mount_tmpfs, unmount
from hypothesis import settings

ANY_BROKER = "any_broker"

# No deadlines anywhere: on a shared, busy machine one slow example is not a failure. A failure
# prints the blob that reproduces it (`@reproduce_failure`), since CI's database is thrown away.
settings.register_profile("recorder", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "recorder"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow",
        action="store_true",
        default=False,
        help="also run tests marked slow (soak and fault-storm variants)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{ANY_BROKER}: run once against a nats-server process (or NATS_URL) and once against "
        "a testcontainers NatsContainer, which is skipped when no Docker engine is reachable",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow test: run with --run-slow")
    for item in items:
        if item.get_closest_marker("slow"):
            item.add_marker(skip)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker(ANY_BROKER):
        metafunc.parametrize(
            "broker_kind",
            [
                pytest.param("process", id="process"),
                pytest.param("container", id="container", marks=pytest.mark.docker),
            ],
            indirect=True,
        )


@pytest.fixture
def broker_kind(request: pytest.FixtureRequest) -> str:
    """Which broker the nats_server fixtures give: "process" unless a test is marked any_broker."""
    return str(getattr(request, "param", "process"))


def _broker(kind: str, *, jetstream: bool) -> Iterator[Broker]:
    if kind == "container":
        if reason := docker_unavailable_reason():
            pytest.skip(f"container variant skipped: {reason}")
        with container_broker(jetstream=jetstream) as container:
            yield container
    elif url := os.environ.get("NATS_URL"):
        yield ExternalBroker(url)
    else:
        with NatsServer(jetstream=jetstream) as server:
            yield server


@pytest.fixture
def nats_server(broker_kind: str) -> Iterator[Broker]:
    """A running broker for this test: NATS_URL when set, else a fresh nats-server process."""
    yield from _broker(broker_kind, jetstream=False)


@pytest.fixture
def nats_server_js(broker_kind: str) -> Iterator[Broker]:
    """Like nats_server with JetStream enabled (a NATS_URL broker must have JetStream on)."""
    yield from _broker(broker_kind, jetstream=True)


@pytest.fixture
def nats_server_factory() -> Iterator[Callable[..., NatsServer]]:
    """Start nats-server processes with custom options; all are stopped when the test ends."""
    servers: list[NatsServer] = []

    def start(**options: Any) -> NatsServer:
        server = NatsServer(**options)
        servers.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in servers:
            server.close()


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Mount small tmpfs filesystems (root only; the test is skipped where mount is refused)."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        where = tmp_path / f"tmpfs-{len(mounted)}"
        where.mkdir()
        try:
            mount_tmpfs(where, size)
        except MountRefusedError as exc:
            pytest.skip(f"cannot mount a tmpfs here: {exc}")
        mounted.append(where)
        return where

    try:
        yield mount
    finally:
        for where in mounted:
            unmount(where)
