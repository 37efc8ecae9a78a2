"""`recorder run` options that ask for more: a baseline dump at start, an embedded broker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import threading
from pathlib import Path

import nats
import orjson
from broker import NatsServer
from polling import wait_until
from run_helpers import Recorders, messages_of, numbered, publish, read_records

from recorder.meshsync import CORE_SUBJECT, REQUEST_SUBJECT

DUMP = b'{"ObjectType":"","EventType":"","Request":null,"Object":[]}'


class FakeMeshSync:
    """Answers informer-store requests on the request subject with one dump reply, as MeshSync does."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.requests: list[dict[str, object]] = []
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        nc = await nats.connect(self.url)

        async def on_request(msg: nats.aio.msg.Msg) -> None:
            request = json.loads(msg.data)
            self.requests.append(request)
            payload = (request.get("Request") or {}).get("Payload") or {}
            if isinstance(payload, dict) and payload.get("Reply"):
                await nc.publish(str(payload["Reply"]), DUMP)

        await nc.subscribe(REQUEST_SUBJECT, queue="meshsync-request-stream", cb=on_request)
        await nc.flush()
        self._ready.set()
        await self._stop.wait()
        await nc.close()

    def __enter__(self) -> FakeMeshSync:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def test_informer_store_baseline_journals_the_request_and_the_dump(
    recorders: Recorders, tmp_path: Path
) -> None:
    """With baseline informer-store the recorder asks MeshSync for a dump on its own reply
    subject and journals both the request and the reply."""
    journal = tmp_path / "journal"
    with NatsServer() as server, FakeMeshSync(server.url) as meshsync:
        recorder = recorders.start(
            journal,
            server.url,
            subjects=[REQUEST_SUBJECT, CORE_SUBJECT],
            env={"RECORDER_BASELINE": "informer-store"},
        )
        recorder.wait_ready()
        recorder.wait_written(2)
        assert recorder.stop() == 0
        assert meshsync.requests
        request = meshsync.requests[0]["Request"]
        assert request == {
            "Entity": "informer-store",
            "Payload": {"Reply": "meshsync-recorder.store"},
        }
    by_subject = {m.subject: m.payload for m in messages_of(read_records(journal))}
    assert orjson.loads(by_subject[REQUEST_SUBJECT])["Request"]["Entity"] == "informer-store"
    assert by_subject["meshsync-recorder.store"] == DUMP


def test_embedded_broker_records_what_is_published_to_it(
    recorders: Recorders, tmp_path: Path
) -> None:
    """`--embedded-broker` starts a loopback nats-server, says its URL, records from it, and
    stops it again on SIGTERM."""
    journal = tmp_path / "journal"
    recorder = recorders.start(journal, None, subjects=[CORE_SUBJECT], args=["--embedded-broker"])
    recorder.wait_ready()
    url = recorder.wait_event("embedded_broker_listening")["url"]
    assert re.fullmatch(r"nats://127\.0\.0\.1:\d+", url), url
    publish(url, numbered(CORE_SUBJECT, 30))
    recorder.wait_written(30)
    assert recorder.stop() == 0
    assert len(messages_of(read_records(journal))) == 30
    port = int(url.rsplit(":", 1)[1])
    wait_until(lambda: not _listening(port), 5, "the embedded broker to stop")


def test_embedded_broker_dies_with_a_killed_recorder(recorders: Recorders, tmp_path: Path) -> None:
    """A recorder killed with SIGKILL, which runs no cleanup, still takes its nats-server along."""
    recorder = recorders.start(
        tmp_path / "journal", None, subjects=[CORE_SUBJECT], args=["--embedded-broker"]
    )
    recorder.wait_ready()
    url = recorder.wait_event("embedded_broker_listening")["url"]
    found = re.fullmatch(r"nats://127\.0\.0\.1:(\d+)", url)
    assert found, url
    brokers = wait_until(
        lambda: _children_named(recorder.proc.pid, "nats-server"), 10, "its nats-server child"
    )
    try:
        recorder.kill()
        wait_until(lambda: _gone(brokers[0]), 10, "the orphaned nats-server to exit")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(brokers[0], signal.SIGKILL)  # only if the test failed: leave no server
    assert not _listening(int(found.group(1)))


def _children_named(pid: int, name: str) -> list[int]:
    """Child processes of `pid` (from every one of its threads) whose command is `name`."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            children += [int(child) for child in (task / "children").read_text().split()]
    named = []
    for child in children:
        with contextlib.suppress(OSError):
            if Path(f"/proc/{child}/comm").read_text().strip() == name:
                named.append(child)
    return named


def _gone(pid: int) -> bool:
    """Exited: no longer in /proc, or a zombie nobody has reaped yet."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
