"""Real NATS brokers for tests: a nats-server process on loopback, or a testcontainers container."""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol

from recorder.demo.embedded import find_nats_server

STARTUP_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
CONTAINER_IMAGE = "nats:2.10-alpine"
# Servers still running when the interpreter exits (a test crashed past its finally) are killed.
_running: set[NatsServer] = set()


class Broker(Protocol):
    """Anything a test can connect to."""

    @property
    def url(self) -> str: ...


@dataclass(frozen=True)
class ExternalBroker:
    """A broker the test did not start: from NATS_URL, or a container."""

    url: str


class NatsServer:
    """A nats-server process on 127.0.0.1 that keeps its port and JetStream store across restarts."""

    def __init__(
        self,
        *,
        jetstream: bool = False,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        max_payload: int | None = None,
        config_text: str = "",
        startup_timeout: float = STARTUP_TIMEOUT,
    ) -> None:
        if (user is None) != (password is None):
            raise ValueError("user and password go together")
        self.jetstream = jetstream
        self.user, self.password, self.token = user, password, token
        self.max_payload = max_payload
        self.config_text = config_text
        self.startup_timeout = startup_timeout
        self.port: int | None = None  # chosen by the first start, kept by restarts
        self.workdir = Path(tempfile.mkdtemp(prefix="nats-server-"))
        self.log_path = self.workdir / "server.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Return the client URL (no credentials in it)."""
        if self.port is None:
            raise RuntimeError("the server has not been started")
        return f"nats://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """Return whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def store_dir(self) -> Path:
        """Return the JetStream store directory, which survives restarts."""
        return self.workdir / "jetstream"

    def config(self) -> str:
        """Return the nats-server configuration file this server runs with."""
        lines = []
        if self.jetstream:
            lines.append(f"jetstream {{ store_dir: {json.dumps(str(self.store_dir))} }}")
        if self.user is not None:
            creds = f"user: {json.dumps(self.user)}, password: {json.dumps(self.password)}"
            lines.append(f"authorization {{ {creds} }}")
        if self.token is not None:
            lines.append(f"authorization {{ token: {json.dumps(self.token)} }}")
        if self.max_payload is not None:
            lines.append(f"max_payload: {self.max_payload}")
        return "\n".join([*lines, self.config_text, ""])

    def start(self) -> NatsServer:
        """Start the server (on its previous port after a stop) and wait until it accepts clients."""
        if self.running:
            raise RuntimeError("the server is already running")
        conf = self.workdir / "server.conf"
        conf.write_text(self.config())
        deadline = time.monotonic() + self.startup_timeout
        while True:
            proc = self._spawn(conf)
            try:
                self.port = self._wait_ready(proc, deadline)
            except _PortBusyError:
                # Only a restart pins the port; a moment later the old socket is usually gone.
                if time.monotonic() > deadline:
                    raise RuntimeError(f"port {self.port} stayed busy\n{self.log_tail()}") from None
                time.sleep(0.1)
                continue
            except BaseException:
                _terminate(proc, signal.SIGKILL, STOP_TIMEOUT)
                raise
            self._proc = proc
            _running.add(self)
            return self

    def _spawn(self, conf: Path) -> subprocess.Popen[bytes]:
        port = str(self.port) if self.port is not None else "-1"
        args = [find_nats_server(), "-c", str(conf), "-a", "127.0.0.1", "-p", port]
        args += ["--ports_file_dir", str(self.workdir)]
        for old in self.workdir.glob("*.ports"):
            old.unlink()
        with self.log_path.open("ab") as log:
            # Own session: a Ctrl-C meant for pytest must not kill the server before cleanup.
            return subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True)

    def _wait_ready(self, proc: subprocess.Popen[bytes], deadline: float) -> int:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                if "address already in use" in self.log_tail():
                    raise _PortBusyError
                raise RuntimeError(f"nats-server exited with {proc.returncode}\n{self.log_tail()}")
            port = self._port_from_file(proc.pid)
            if port is not None and _accepts_clients(port):
                return port
            time.sleep(0.02)
        raise TimeoutError(f"nats-server not ready in {self.startup_timeout}s\n{self.log_tail()}")

    def _port_from_file(self, pid: int) -> int | None:
        try:
            ports = json.loads(next(self.workdir.glob(f"*_{pid}.ports")).read_text())
        except (StopIteration, OSError, ValueError):  # not written yet, or half written
            return None
        return int(ports["nats"][0].rsplit(":", 1)[1])

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Shut the server down gracefully (SIGTERM), killing it if it does not exit in time."""
        self._end(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Kill the server with SIGKILL, as a crash would."""
        self._end(signal.SIGKILL, STOP_TIMEOUT)

    def restart(self, *, kill: bool = False) -> NatsServer:
        """Stop (or kill) the server and start it again on the same port with the same store."""
        if kill:
            self.kill()
        else:
            self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the server and delete its working directory."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        """Return the last lines of the server's log, for failure messages."""
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def _end(self, sig: signal.Signals, timeout: float) -> None:
        proc, self._proc = self._proc, None
        _running.discard(self)
        if proc is not None:
            _terminate(proc, sig, timeout)

    def __enter__(self) -> NatsServer:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _PortBusyError(Exception):
    """The pinned port is still held by something else."""


def _terminate(proc: subprocess.Popen[bytes], sig: signal.Signals, timeout: float) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _accepts_clients(port: int) -> bool:
    """Return whether a NATS server answers on the port with its INFO line."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            return sock.recv(5) == b"INFO "
    except OSError:
        return False


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_running):
        server.kill()


@functools.cache
def docker_unavailable_reason(timeout: float = 2.0) -> str | None:
    """Return why no Docker engine can be used (None when one answers a ping); checked once."""
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return "no Docker engine: DOCKER_HOST is unset and /var/run/docker.sock does not exist"
    try:
        import docker  # type: ignore[import-untyped]

        client = docker.from_env(timeout=int(max(timeout, 1)))
        try:
            client.ping()
        finally:
            client.close()
    except Exception as e:  # the docker SDK raises many unrelated types when no engine answers
        return f"no Docker engine answered a ping: {e}"
    return None


@contextlib.contextmanager
def container_broker(*, jetstream: bool = False) -> Iterator[ExternalBroker]:
    """Run nats-server in a testcontainers NatsContainer and yield its URL."""
    try:
        from testcontainers.community.nats import NatsContainer
    except ImportError:  # testcontainers before the community split
        from testcontainers.nats import NatsContainer
    with NatsContainer(CONTAINER_IMAGE, jetstream=jetstream) as container:
        yield ExternalBroker(container.nats_uri())
