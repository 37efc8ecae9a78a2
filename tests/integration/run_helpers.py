"""Drive real `recorder run` processes: start, wait ready, scrape, publish, read the journal, clean up."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import nats
from nats.aio.client import Client
from polling import wait_until

from recorder.journal.reader import JournalReader
from recorder.journal.record import Marker, MarkerType, Message, Record
from recorder.localhttp import http_get as get
from recorder.meshsync import CORE_SUBJECT

READY_TIMEOUT = 15.0
EXIT_TIMEOUT = 15.0
RECORDER = [sys.executable, "-m", "recorder", "--log-format", "json"]


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, str] | None:
    """(status, body) of GET http://127.0.0.1:port/path, or None when nothing answers."""
    try:
        return get("127.0.0.1", port, path, timeout)
    except (OSError, http.client.HTTPException):
        return None


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text samples keyed by `name{labels}` exactly as rendered (no HELP/TYPE)."""
    samples = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        match = _SAMPLE.match(line)
        if match is None:
            raise AssertionError(f"not a Prometheus sample line: {line!r}")
        samples[match[1] + (match[2] or "")] = float(match[3])
    return samples


def written_total(samples: Mapping[str, float]) -> int:
    """Messages journaled, summed over subjects, from parsed /metrics samples."""
    return int(
        sum(
            value
            for key, value in samples.items()
            if key.startswith("meshsync_recorder_messages_written_total{")
        )
    )


def subject_label(name: str, subject: str) -> str:
    return f'meshsync_recorder_{name}{{subject="{subject}"}}'


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without settings that would leak into a recorder under test."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("RECORDER_")
        and key not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
    }
    env.update(extra or {})
    return env


@dataclass
class RecorderProcess:
    """One `recorder run` child process with its HTTP port and stderr log file."""

    proc: subprocess.Popen[bytes]
    journal_dir: Path
    port: int | None
    stderr_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stderr(self) -> str:
        with contextlib.suppress(OSError):
            return self.stderr_path.read_text(errors="replace")
        return ""

    def events(self) -> list[dict[str, Any]]:
        """The JSON log events written so far (non-JSON lines are skipped)."""
        events = []
        for line in self.stderr().splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict):
                    events.append(event)
        return events

    def event_names(self) -> list[str]:
        return [str(event.get("event")) for event in self.events()]

    def get(self, path: str) -> tuple[int, str] | None:
        assert self.port is not None, "started with the HTTP listener off"
        return http_get(self.port, path)

    def metrics(self) -> dict[str, float]:
        response = self.get("/metrics")
        assert response is not None and response[0] == 200, f"/metrics: {response}"
        return parse_metrics(response[1])

    def written(self) -> int:
        """Messages journaled so far, summed over subjects, from /metrics."""
        return written_total(self.metrics())

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Poll /readyz until it answers 200; fail with the log if the process dies first."""

        def ready() -> bool:
            if not self.alive():
                raise AssertionError(
                    f"recorder exited with {self.proc.returncode} before ready:\n{self.stderr()}"
                )
            response = self.get("/readyz")
            return response is not None and response[0] == 200

        wait_until(ready, timeout, "/readyz to answer 200")

    def wait_written(self, count: int, timeout: float = 15.0) -> None:
        wait_until(lambda: self.written() >= count, timeout, f"{count} messages written")

    def wait_event(self, name: str, timeout: float = 10.0) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            return next((event for event in self.events() if event.get("event") == name), None)

        return wait_until(find, timeout, f"log event {name}")  # type: ignore[no-any-return]

    def send(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = EXIT_TIMEOUT) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"recorder still running {timeout}s later:\n{self.stderr()}"
            ) from None

    def stop(self, timeout: float = EXIT_TIMEOUT) -> int:
        """SIGTERM and wait for the exit code."""
        self.send(signal.SIGTERM)
        return self.wait_exit(timeout)

    def kill(self) -> None:
        """SIGKILL, as a crash would, and reap."""
        if self.alive():
            self.proc.kill()
        self.proc.wait(EXIT_TIMEOUT)


class Recorders:
    """Starts recorder processes for one test and kills whatever is left at the end."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[RecorderProcess] = []

    def start(
        self,
        journal_dir: Path,
        nats_url: str | Sequence[str] | None,
        *,
        subjects: Iterable[str] = (CORE_SUBJECT,),
        fsync: str | None = None,
        mode: str | None = None,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        http: bool = True,
        preexec_fn: Callable[[], None] | None = None,
        output: int | None = None,
    ) -> RecorderProcess:
        """Start `recorder run`; its stdout and stderr go to a log file, or to the fd `output`."""
        port = free_port() if http else None
        argv = [*RECORDER, "run", "--journal-dir", str(journal_dir)]
        urls = [nats_url] if isinstance(nats_url, str) else list(nats_url or ())
        for url in urls:
            argv += ["--nats-url", url]
        for subject in subjects:
            argv += ["--subject", subject]
        if fsync:
            argv += ["--fsync", fsync]
        if mode:
            argv += ["--mode", mode]
        argv += ["--http-listen", f"127.0.0.1:{port}" if port else "off", *args]
        defaults = {
            # Quick reconnects, and no free-disk floor: tests do not need 256 MiB free.
            "RECORDER_NATS_RECONNECT_WAIT": "0.2s",
            "RECORDER_NATS_MAX_RECONNECT_WAIT": "0.5s",
            "RECORDER_NATS_CONNECT_TIMEOUT": "2s",
            "RECORDER_JOURNAL_MIN_FREE_BYTES": "0",
        }
        stderr_path = self.workdir / f"recorder-{len(self.started)}.stderr"
        with stderr_path.open("wb") as stderr:
            sink = stderr.fileno() if output is None else output
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=sink,
                env=clean_env({**defaults, **(env or {})}),
                start_new_session=True,
                preexec_fn=preexec_fn,
            )
        recorder = RecorderProcess(proc, journal_dir, port, stderr_path)
        self.started.append(recorder)
        return recorder

    def close(self) -> None:
        for recorder in self.started:
            with contextlib.suppress(Exception):
                recorder.kill()


def run_cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[bytes]:
    """Run a one-shot `recorder` command (verify, dump, inspect) and capture its output."""
    return subprocess.run(
        [*RECORDER, *args], capture_output=True, timeout=timeout, env=clean_env(), check=False
    )


# -- publishing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outgoing:
    subject: str
    payload: bytes
    headers: dict[str, str] | None = None


async def _quiet(_error: Exception) -> None:
    """Keep nats-py from printing expected connection errors."""


async def connect(url: str, **options: Any) -> Client:
    options.setdefault("connect_timeout", 2)
    options.setdefault("error_cb", _quiet)
    return await nats.connect(url, **options)


def publish(url: str, messages: Iterable[Outgoing], **options: Any) -> None:
    """Publish with one connection, in order, and flush so the broker has every message."""

    async def run() -> None:
        nc = await connect(url, **options)
        try:
            for message in messages:
                await nc.publish(message.subject, message.payload, headers=message.headers)
            await nc.flush(timeout=10)
        finally:
            await nc.close()

    asyncio.run(run())


def numbered(subject: str, count: int, start: int = 0, prefix: str = "") -> list[Outgoing]:
    return [Outgoing(subject, f"{prefix}{i}".encode()) for i in range(start, start + count)]


class PublisherThread:
    """Runs a subclass's `_run` coroutine on its own thread and event loop until `stop()`."""

    sent: int
    error: BaseException | None
    _stop: threading.Event
    _thread: threading.Thread | None

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> int:
        """Stop publishing; returns how many were sent, or fails with the publisher's error."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15)
        if self.error is not None:
            raise AssertionError(f"publisher failed: {self.error!r}")
        return self.sent


@dataclass
class BackgroundPublisher(PublisherThread):
    """Publishes numbered payloads on one subject from a thread until stopped."""

    url: str
    subject: str
    rate_per_s: float = 2000.0
    sent: int = 0
    error: BaseException | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    async def _run(self) -> None:
        try:
            nc = await connect(self.url)
            try:
                burst = max(1, int(self.rate_per_s / 100))
                while not self._stop.is_set():
                    for _ in range(burst):
                        await nc.publish(self.subject, str(self.sent).encode())
                        self.sent += 1
                    await nc.flush(timeout=5)
                    await asyncio.sleep(0.01)
            finally:
                await nc.close()
        except BaseException as exc:
            self.error = exc


# -- reading the journal -------------------------------------------------------------------------


def read_records(journal_dir: Path) -> list[Record]:
    """Every record, markers included, in write order (a torn tail is skipped, not raised)."""
    return [record for _position, record in JournalReader(journal_dir, markers=True)]


def messages_of(records: Iterable[Record]) -> list[Message]:
    return [record for record in records if isinstance(record, Message)]


def markers_of(records: Iterable[Record], kind: MarkerType | None = None) -> list[Marker]:
    return [
        record
        for record in records
        if isinstance(record, Marker) and (kind is None or record.type is kind)
    ]


def assert_seqs_increase(records: Sequence[Record]) -> None:
    seqs = [record.seq for record in records]
    assert all(b > a for a, b in itertools.pairwise(seqs)), seqs


# -- systemd notify ------------------------------------------------------------------------------


class NotifySocket:
    """A unix datagram socket standing in for systemd's NOTIFY_SOCKET, collecting what arrives."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.messages: list[dict[str, str]] = []

    def poll(self) -> list[dict[str, str]]:
        """Read every datagram waiting; each becomes a dict of its KEY=value lines."""
        while True:
            try:
                data = self.sock.recv(65536)
            except (TimeoutError, BlockingIOError):
                return self.messages
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.messages.append(fields)

    def wait_for(self, key: str, value: str | None = None, timeout: float = 10.0) -> dict[str, str]:
        def find() -> dict[str, str] | None:
            return next(
                (
                    message
                    for message in self.poll()
                    if key in message and (value is None or message[key] == value)
                ),
                None,
            )

        return wait_until(find, timeout, f"notify {key}={value or '*'}", interval=0)  # type: ignore[no-any-return]

    def close(self) -> None:
        self.sock.close()
        with contextlib.suppress(OSError):
            self.path.unlink()


@contextlib.contextmanager
def recorders_for(workdir: Path) -> Iterator[Recorders]:
    """A Recorders set whose processes are killed when the block ends, however it ends."""
    recorders = Recorders(workdir)
    try:
        yield recorders
    finally:
        recorders.close()
