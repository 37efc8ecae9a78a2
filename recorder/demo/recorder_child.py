"""The demo's `recorder run` child: started against the demo broker, watched, stopped in order."""

from __future__ import annotations

import http.client
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from recorder.demo.embedded import free_port
from recorder.errors import RecorderError
from recorder.localhttp import http_get
from recorder.log import get_logger
from recorder.meshsync import CORE_SUBJECT, REQUEST_SUBJECT, STORE_SUBJECT

log = get_logger("demo")

KILL_TIMEOUT_S: Final = 5.0
_WRITTEN: Final = "meshsync_recorder_messages_written_total{"
# Small segments so that even a short demo shows rotation; no free-disk floor on a laptop.
_CHILD_ENV: Final = {
    "RECORDER_JOURNAL_SEGMENT_MAX_BYTES": "1MiB",
    "RECORDER_JOURNAL_MIN_FREE_BYTES": "0",
}
_SYSTEMD_ENV: Final = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


class RecorderChild:
    """`python -m recorder run` against the demo broker, killed on the way out if still running."""

    process: subprocess.Popen[bytes]  # from __enter__ on

    def __init__(self, journal: Path, url: str, log_path: Path, env: Mapping[str, str]) -> None:
        self.port = free_port()
        self.listen = f"127.0.0.1:{self.port}"
        self.log_path = log_path
        subjects = (REQUEST_SUBJECT, CORE_SUBJECT, STORE_SUBJECT)
        self.argv = [sys.executable, "-m", "recorder", "--log-format", "json", "run", "--nats-url"]
        self.argv += [url, "--journal-dir", str(journal), "--http-listen", self.listen]
        self.argv += [arg for subject in subjects for arg in ("--subject", subject)]
        # The user's RECORDER_* settings (and systemd's sockets) are not the demo's.
        self.env = {
            key: value
            for key, value in env.items()
            if not key.startswith("RECORDER_") and key not in _SYSTEMD_ENV
        } | _CHILD_ENV

    def __enter__(self) -> RecorderChild:
        with self.log_path.open("wb") as log_file:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                env=self.env,
                # Its own session: Ctrl-C reaches only the demo, which then stops it in order.
                start_new_session=True,
            )
        log.info("demo_recorder_started", pid=self.process.pid, http=self.listen)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:  # an error or an interrupt on the way
            self.stop(KILL_TIMEOUT_S)

    def _failed(self, what: str) -> RecorderError:
        tail = self.log_path.read_text(errors="replace").strip().splitlines()[-5:]
        return RecorderError(f"recorder run {what}; last log lines:\n" + "\n".join(tail))

    def _get(self, path: str) -> tuple[int, str] | None:
        try:
            return http_get("127.0.0.1", self.port, path, timeout=2)
        except (OSError, http.client.HTTPException):
            return None

    def wait_ready(self, timeout: float) -> None:
        process = self.process
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise self._failed(f"exited with {process.returncode} before it was ready")
            response = self._get("/readyz")
            if response is not None and response[0] == 200:
                log.info("demo_recorder_ready", pid=process.pid)
                return
            time.sleep(0.05)
        raise self._failed(f"was not ready within {timeout:.0f} s")

    def wait_written(self, count: int, timeout: float) -> None:
        """Until /metrics shows `count` messages journaled; a shortfall shows up in the checks."""
        deadline, written = time.monotonic() + timeout, 0
        while written < count and time.monotonic() < deadline:
            response = self._get("/metrics")
            lines = response[1].splitlines() if response is not None else []
            written = sum(int(float(n.split()[-1])) for n in lines if n.startswith(_WRITTEN))
            time.sleep(0 if written >= count else 0.05)
        if written < count:
            log.warning("demo_recorder_behind", written=written, expected=count)

    def stop(self, timeout: float) -> int | None:
        """SIGTERM (drain, fsync, seal), SIGKILL after `timeout`: the exit code, None if killed."""
        process = self.process
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            log.error("demo_recorder_killed", pid=process.pid, timeout_s=timeout)
            return None
        log.info("demo_recorder_stopped", pid=process.pid, exit_code=code)
        return code
