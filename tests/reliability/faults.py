"""Fault injectors for the reliability suite: a TCP proxy the test can cut and stall, a publisher
that survives broker restarts, a slow-fsync launcher, byte-level corruption, process sampling."""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import select
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from reports import merge_case
from run_helpers import PublisherThread, connect

# -- sizes: a default run for CI, bigger ones for `--run-slow` -----------------------------------
# Not RECORDER_*: that prefix is the daemon's configuration, where an unknown name is an error.


def env_int(name: str, default: int) -> int:
    """An integer knob from the environment (RELIABILITY_*), or its default."""
    return int(os.environ.get(name, default))


LONG = [pytest.mark.slow, pytest.mark.timeout(3600)]


def default_and_long(name: str, default: int, long: int) -> list[Any]:
    """Two sizes for a storm: RELIABILITY_<NAME> for CI, RELIABILITY_<NAME>_LONG behind --run-slow."""
    return [
        pytest.param(env_int(f"RELIABILITY_{name}", default), id="default"),
        pytest.param(env_int(f"RELIABILITY_{name}_LONG", long), id="long", marks=LONG),
    ]


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


# -- a TCP proxy between recorder and broker -----------------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:port to an upstream port from one thread; the test can cut every
    connection or stall the forwarding (bytes wait in the kernel buffers, nothing is closed)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port = int(self._listener.getsockname()[1])
        self._peers: dict[socket.socket, socket.socket] = {}
        self._commands: queue.Queue[tuple[str, threading.Event, list[int]]] = queue.Queue()
        self._wake_r, self._wake_w = socket.socketpair()
        self._stalled = False
        self._closed = False
        self.accepted = 0
        self.cuts = 0
        self._thread = threading.Thread(target=self._loop, name="tcp-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> TcpProxy:
        self._thread.start()
        return self

    def cut(self) -> int:
        """Close every open connection (both sides); returns how many pairs were closed."""
        return self._command("cut")

    def stall(self) -> None:
        """Stop forwarding in both directions until `resume`; connections stay open."""
        self._command("stall")

    def resume(self) -> None:
        self._command("resume")

    def connections(self) -> int:
        return self._command("count")

    def close(self) -> None:
        if self._thread.is_alive():
            self._command("close")
            self._thread.join(5)
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()

    def _command(self, name: str) -> int:
        done, result = threading.Event(), [0]
        self._commands.put((name, done, result))
        self._wake_w.send(b"x")
        if not done.wait(5):
            raise AssertionError(f"proxy did not carry out {name!r}")
        return result[0]

    # -- the proxy thread ------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._closed:
            watched = [self._listener, self._wake_r]
            if not self._stalled:
                watched += list(self._peers)
            readable, _, _ = select.select(watched, [], [], 0.5)
            for sock in readable:
                if sock is self._wake_r:
                    self._wake_r.recv(4096)
                    self._run_commands()
                elif sock is self._listener:
                    self._accept()
                elif sock in self._peers and not self._stalled:
                    self._forward(sock)
        self._close_all()

    def _run_commands(self) -> None:
        while True:
            try:
                name, done, result = self._commands.get_nowait()
            except queue.Empty:
                return
            if name == "cut":
                result[0] = self._close_all()
                self.cuts += 1
            elif name == "stall":
                self._stalled = True
            elif name == "resume":
                self._stalled = False
            elif name == "count":
                result[0] = len(self._peers) // 2
            elif name == "close":
                self._closed = True
            done.set()

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=1)
        except OSError:
            client.close()  # the broker is down: the client sees a refused-like close
            return
        for sock in (client, upstream):
            sock.settimeout(5)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._peers[client], self._peers[upstream] = upstream, client
        self.accepted += 1

    def _forward(self, sock: socket.socket) -> None:
        peer = self._peers[sock]
        try:
            data = sock.recv(65536)
            if data:
                peer.sendall(data)
                return
        except OSError:
            pass
        self._close_pair(sock)

    def _close_pair(self, sock: socket.socket) -> None:
        peer = self._peers.pop(sock, None)
        if peer is not None:
            self._peers.pop(peer, None)
        for each in (sock, peer):
            if each is not None:
                with contextlib.suppress(OSError):
                    each.shutdown(socket.SHUT_RDWR)
                each.close()

    def _close_all(self) -> int:
        pairs = len(self._peers) // 2
        for sock in list(self._peers):
            self._close_pair(sock)
        return pairs


# -- a publisher that outlives its broker --------------------------------------------------------


@dataclass
class CountingPublisher(PublisherThread):
    """Publishes `payload(n)` for n = 0, 1, 2, ... at a steady rate from a thread.

    A lost connection is not an error: the publisher reconnects (without nats-py's reconnect
    buffer, so nothing is sent late) and carries on counting, so a missing number in the journal
    is a message that was lost, never one that was delayed.
    """

    url: str
    subject: str | Callable[[int], str]
    rate_per_s: float = 1000.0
    payload: Callable[[int], bytes] = lambda n: str(n).encode()
    sent: int = 0
    connections: int = 0
    error: BaseException | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _subject(self, n: int) -> str:
        return self.subject(n) if callable(self.subject) else self.subject

    async def _run(self) -> None:
        try:
            burst = max(1, int(self.rate_per_s / 100))
            while not self._stop.is_set():
                try:
                    nc = await connect(self.url, allow_reconnect=False)
                except Exception:
                    await asyncio.sleep(0.05)
                    continue
                self.connections += 1
                try:
                    while not self._stop.is_set():
                        started = time.monotonic()
                        for _ in range(burst):
                            n = self.sent
                            self.sent += 1  # counted even if lost: its number stays unused
                            await nc.publish(self._subject(n), self.payload(n))
                        await nc.flush(timeout=2)
                        await asyncio.sleep(max(0.0, 0.01 - (time.monotonic() - started)))
                except Exception:
                    await asyncio.sleep(0.05)
                finally:
                    with contextlib.suppress(Exception):
                        await nc.close()
        except BaseException as exc:
            self.error = exc


@dataclass
class StreamPublisher:
    """Publishes numbered messages into a JetStream stream (created if missing) from a thread,
    until stopped or `limit` are acked; keeps every acked stream sequence with its payload."""

    url: str
    stream: str
    subject: str
    rate_per_s: float = 1000.0
    limit: int | None = None
    acked: dict[int, bytes] = field(default_factory=dict)
    error: BaseException | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> StreamPublisher:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def join(self, timeout: float) -> dict[int, bytes]:
        if self._thread is not None:
            self._thread.join(timeout)
        if self.error is not None:
            raise AssertionError(f"stream publisher failed: {self.error!r}")
        return self.acked

    def stop(self) -> dict[int, bytes]:
        self._stop.set()
        return self.join(15)

    async def _run(self) -> None:
        try:
            nc = await connect(self.url)
            try:
                js = nc.jetstream()
                with contextlib.suppress(Exception):  # already there
                    await nc.jsm().add_stream(name=self.stream, subjects=[self.subject])
                burst = max(1, int(self.rate_per_s / 100))
                n = 0
                while not self._stop.is_set() and (self.limit is None or n < self.limit):
                    payload = f"js-{n}".encode()
                    ack = await js.publish(self.subject, payload)
                    self.acked[ack.seq] = payload
                    n += 1
                    if n % burst == 0:
                        await asyncio.sleep(0.01)
            finally:
                await nc.close()
        except BaseException as exc:
            self.error = exc


def consumer_state(url: str, stream: str, consumer: str = "meshsync-recorder") -> tuple[int, int]:
    """(num_pending, num_ack_pending) of the recorder's durable consumer."""

    async def run() -> tuple[int, int]:
        nc = await connect(url)
        try:
            info = await nc.jsm().consumer_info(stream, consumer)
            return int(info.num_pending), int(info.num_ack_pending)
        finally:
            await nc.close()

    return asyncio.run(run())


def consumer_settled(url: str, stream: str) -> bool:
    """Whether the recorder's consumer has acked everything and has nothing left to deliver."""
    return consumer_state(url, stream) == (0, 0)


# -- a recorder whose every fsync is slow ---------------------------------------------------------


def slow_fsync_launcher(delay_s: float) -> list[str]:
    """argv prefix running the recorder CLI with os.fsync delayed by `delay_s` (a slow disk)."""
    code = (
        "import os, sys, time\n"
        "real = os.fsync\n"
        "def slow(fd):\n"
        f"    time.sleep({delay_s!r})\n"
        "    return real(fd)\n"
        "os.fsync = slow\n"
        "from recorder.cli import main\n"
        "sys.argv[0] = 'recorder'\n"
        "main()\n"
    )
    return [sys.executable, "-c", code, "--log-format", "json"]


def crash_launcher(target: str, call: int = 1) -> list[str]:
    """argv prefix running the recorder CLI so that it SIGKILLs itself on the `call`-th call of
    `target` ("package.module:Attr.path"), before the call runs: a crash at an exact point."""
    module, _, attribute = target.partition(":")
    owner_path, _, name = attribute.rpartition(".")
    code = (
        "import importlib, os, signal, sys\n"
        f"owner = importlib.import_module({module!r})\n"
        f"for part in {owner_path!r}.split('.') if {owner_path!r} else []:\n"
        "    owner = getattr(owner, part)\n"
        f"real = getattr(owner, {name!r})\n"
        "calls = [0]\n"
        "def crash_here(*args, **kwargs):\n"
        "    calls[0] += 1\n"
        f"    if calls[0] == {call}:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return real(*args, **kwargs)\n"
        f"setattr(owner, {name!r}, crash_here)\n"
        "from recorder.cli import main\n"
        "sys.argv[0] = 'recorder'\n"
        "main()\n"
    )
    return [sys.executable, "-c", code, "--log-format", "json"]


# -- byte-level corruption ------------------------------------------------------------------------


def flip_bits(path: Path, position: int, bits: list[int]) -> None:
    """XOR the byte at `position` with each given bit (0-7), as a failing disk or cable would."""
    with path.open("r+b") as handle:
        handle.seek(position)
        value = handle.read(1)[0]
        for bit in bits:
            value ^= 1 << bit
        handle.seek(position)
        handle.write(bytes([value]))


def truncate(path: Path, size: int) -> None:
    os.truncate(path, size)


# -- figures for the README -----------------------------------------------------------------------

REPORT_DIR = Path(
    os.environ.get(
        "RELIABILITY_REPORT_DIR", Path(__file__).resolve().parents[2] / "build/reliability"
    )
)


def case_name(test_name: str) -> str:
    """`test_sigkill_storm_keeps_x[20]` -> `sigkill storm keeps x [20]`: a row of the table."""
    name, _, parameters = test_name.removeprefix("test_").partition("[")
    label = name.replace("_", " ")
    return f"{label} [{parameters}" if parameters else label


def report_figures(report: str, case: str, values: dict[str, Any]) -> Path:
    """Merge one case's figures into REPORT_DIR/`report`.json, keeping the other cases'."""
    return merge_case(REPORT_DIR / f"{report}.json", case, values)


# -- watching a process ---------------------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    """Resident set size from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def dir_bytes(directory: Path, pattern: str = "*.seg*") -> int:
    """Bytes of the files matching `pattern`; files deleted while listing count as gone."""
    total = 0
    for path in directory.glob(pattern):
        with contextlib.suppress(FileNotFoundError):
            total += path.stat().st_size
    return total


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2
