"""Helpers shared by the replay integration tests (this module holds no tests of its own)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
from cli_streams import summary_event
from polling import wait_until
from run_helpers import RECORDER, clean_env, run_cli

from recorder.journal.record import Incoming
from recorder.journal.writer import JournalWriter

REPLAY_TIMEOUT = 30.0
BARRIER = "_replay_test.barrier"


def replay_cli(
    *args: str | Path, timeout: float = REPLAY_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run `recorder replay ARGS` in its own process; output decoded."""
    result = run_cli("replay", *(str(arg) for arg in args), timeout=timeout)
    return subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode(), result.stderr.decode()
    )


def start_replay(*args: str | Path) -> subprocess.Popen[str]:
    """Start `recorder replay ARGS` without waiting (for signals); stdout/stderr piped."""
    return subprocess.Popen(
        [*RECORDER, "replay", *(str(arg) for arg in args)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
        start_new_session=True,  # a Ctrl-C meant for pytest must not reach it
    )


def sent_count(stderr: str) -> int:
    """How many messages the replay sent (or would send), from its summary log record."""
    return int(summary_event(stderr, "replay_summary")["messages"])


def elapsed_s(stderr: str) -> float:
    """The replay's own elapsed time from its summary (publishing only, no process start-up)."""
    return float(summary_event(stderr, "replay_summary")["elapsed_s"])


def build_journal(
    directory: Path,
    items: Iterable[tuple[int, str, bytes] | tuple[int, str, bytes, dict[str, str] | None]],
    *,
    rotate_every: int | None = None,
) -> list[int]:
    """A closed journal of (time_ns, subject, payload[, headers]) messages; returns their seqs."""
    writer = JournalWriter(directory)
    writer.open()
    seqs = []
    for index, item in enumerate(items):
        time_ns, subject, payload = item[:3]
        headers = item[3] if len(item) > 3 else None
        pairs = tuple(headers.items()) if headers else None
        seqs.append(writer.append_messages([Incoming(time_ns, subject, "", pairs, payload, None)]))
        if rotate_every and (index + 1) % rotate_every == 0:
            writer.rotate()
    writer.close()
    return seqs


def tree_state(directory: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under a directory: (size, mtime_ns, sha256), to prove nothing was modified."""
    state = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            info = path.stat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            state[str(path.relative_to(directory))] = (info.st_size, info.st_mtime_ns, digest)
    return state


@dataclass(frozen=True)
class Received:
    at: float  # time.monotonic() in the subscriber's callback
    subject: str
    payload: bytes
    headers: dict[str, str] | None


@dataclass
class Collector:
    """A nats-py subscriber on its own thread and event loop, recording what arrives and when."""

    url: str
    subject: str
    received: list[Received] = field(default_factory=list)
    _ready: threading.Event = field(default_factory=threading.Event)
    _loop: asyncio.AbstractEventLoop | None = None
    _stop: asyncio.Event | None = None
    _barrier: asyncio.Event | None = None
    _thread: threading.Thread | None = None
    _nc: Any = None
    error: BaseException | None = None

    def __enter__(self) -> Collector:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self.error is not None:
            self.close()
            raise AssertionError(f"subscriber did not start: {self.error!r}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._barrier = asyncio.Event()
        try:
            nc = self._nc = await nats.connect(self.url, connect_timeout=2)
            try:

                async def on_msg(msg: Any) -> None:
                    self.received.append(
                        Received(time.monotonic(), msg.subject, msg.data, msg.headers)
                    )

                async def on_barrier(_msg: Any) -> None:
                    assert self._barrier is not None
                    self._barrier.set()

                await nc.subscribe(self.subject, cb=on_msg)
                await nc.subscribe(BARRIER, cb=on_barrier)
                await nc.flush(timeout=5)
                self._ready.set()
                await self._stop.wait()
            finally:
                await nc.close()
        except BaseException as exc:
            self.error = exc
            self._ready.set()

    async def _sync(self) -> None:
        assert self._barrier is not None
        self._barrier.clear()
        await self._nc.publish(BARRIER, b"")
        await asyncio.wait_for(self._barrier.wait(), 10)

    def sync(self) -> list[Received]:
        """Everything delivered before now: the broker routes a later publish of ours after it.

        Publishers that already exited flushed (PING/PONG) first, so their messages were routed
        before our barrier message, and one subscriber connection delivers in routing order.
        """
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(self._sync(), self._loop).result(15)
        return list(self.received)

    def wait_count(self, count: int, timeout: float = 15.0) -> list[Received]:
        wait_until(lambda: len(self.received) >= count, timeout, f"{count} messages received")
        return list(self.received)

    def close(self) -> None:
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)
