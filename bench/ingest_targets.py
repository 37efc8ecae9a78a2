"""The consumers ingest.py measures, each in a process of its own, behind one interface."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import nats
from common import SUBJECT, Broker, Child, stop_process
from ingest_children import bare_main
from nats.js.api import StorageType

from recorder.demo.embedded import free_port

STREAM = "BENCH_MESHSYNC"


def recorder_env(source: Path | None, **extra: str) -> dict[str, str]:
    """This environment plus `extra`, with another checkout's `recorder` package first when
    `source` is given (to compare a change)."""
    env = {**os.environ, **extra}
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), env.get("PYTHONPATH")]))
    return env


@dataclass(frozen=True, slots=True)
class Progress:
    received: int  # messages the target has (counted, journaled, stored)
    lost: int  # loss signals so far (drops, slow-consumer errors, disconnects)


class Target(Protocol):
    name: str
    # How long after receiving a message the target may count it: the recorder counts a message
    # as written once an fsync covers it, so `--fsync interval` counts up to an interval late.
    count_lag_s: float

    def progress(self) -> Progress: ...

    def pids(self) -> list[int]: ...

    def stop(self) -> dict[str, Any]: ...


class BareTarget:
    def __init__(self, broker: Broker) -> None:
        self.name = "bare"
        self.count_lag_s = 0.0
        self.child = Child(bare_main, broker.url)

    def progress(self) -> Progress:
        received, lost = self.child.ask("count", timeout=30)
        return Progress(received, lost)

    def pids(self) -> list[int]:
        return [self.child.pid]

    def stop(self) -> dict[str, Any]:
        self.child.stop()
        return {}


_METRIC = re.compile(r"^meshsync_recorder_(\w+)(?:\{[^}]*\})? (\S+)$", re.M)


class RecorderTarget:
    """`recorder run` as an operator starts it, configured with flags and RECORDER_* vars."""

    def __init__(
        self,
        broker: Broker,
        base: Path,
        policy: str,
        cprofile: Path | None = None,
        source: Path | None = None,
        name: str | None = None,
    ) -> None:
        self.name = name or policy
        self.count_lag_s = 1.0 if policy == "interval" else 0.0  # the default fsync interval
        self.journal = Path(tempfile.mkdtemp(prefix=f"journal-{self.name}-", dir=base))
        self.log_path = self.journal.with_suffix(".log")
        self.http_port = free_port()
        profile = ["-m", "cProfile", "-o", str(cprofile)] if cprofile else []
        command = [sys.executable, *profile, "-m", "recorder", "run"]
        command += ["--nats-url", broker.url, "--subject", SUBJECT, "--fsync", policy]
        command += [
            "--journal-dir",
            str(self.journal),
            "--http-listen",
            f"127.0.0.1:{self.http_port}",
        ]
        env = recorder_env(
            source,
            RECORDER_LOG_LEVEL="warning",
            RECORDER_LOG_FORMAT="json",
        )
        with self.log_path.open("ab") as log:
            # cwd: not the checkout, whose `recorder/` `-m` would import before PYTHONPATH's.
            self.process = subprocess.Popen(
                command, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env, cwd=base
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"recorder exited: {self.log_path.read_text()[-800:]}")
            with contextlib.suppress(OSError):
                if self._get("/readyz").startswith("ready"):
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("recorder not ready within 30 s")

    def _get(self, path: str) -> str:
        url = f"http://127.0.0.1:{self.http_port}{path}"
        with urllib.request.urlopen(url, timeout=30) as response:
            return str(response.read().decode())

    def metrics(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for name, value in _METRIC.findall(self._get("/metrics")):
            totals[name] = totals.get(name, 0.0) + float(value)
        return totals

    def progress(self) -> Progress:
        totals = self.metrics()
        lost = totals.get("messages_dropped_total", 0) + totals.get("gaps_total", 0)
        return Progress(int(totals.get("messages_written_total", 0)), int(lost))

    def pids(self) -> list[int]:
        return [self.process.pid]

    def stop(self) -> dict[str, Any]:
        code = stop_process(self.process, timeout=30)
        log_tail = [
            line for line in self.log_path.read_text(errors="replace").splitlines() if line
        ][-5:]
        shutil.rmtree(self.journal, ignore_errors=True)
        self.log_path.unlink(missing_ok=True)
        return {"exit_code": code, "log_tail": log_tail}


class JetStreamTarget:
    """A file stream on the subject; the server fsyncs every write (`sync_interval: always`)."""

    def __init__(self, broker: Broker) -> None:
        self.name = "jetstream"
        self.count_lag_s = 0.0
        self.broker = broker
        asyncio.run(self._admin(create=True))

    async def _admin(self, *, create: bool) -> None:
        nc = await nats.connect(self.broker.url, name="bench-admin")
        try:
            js = nc.jetstream()
            if create:
                await js.add_stream(name=STREAM, subjects=[SUBJECT], storage=StorageType.FILE)
            else:
                await js.delete_stream(STREAM)
        finally:
            await nc.close()

    def progress(self) -> Progress:
        return Progress(self.broker.stream_messages(STREAM), 0)

    def pids(self) -> list[int]:
        return [self.broker.process.pid] if self.broker.process else []

    def stop(self) -> dict[str, Any]:
        asyncio.run(self._admin(create=False))
        return {}


def start_target(
    name: str, broker: Broker, base: Path, source: Path | None, baseline: Path | None = None
) -> Target:
    if name == "baseline":
        # The same `recorder run --fsync interval`, from another checkout: before/after a change
        # measured in one run, interleaved with the other targets.
        return RecorderTarget(broker, base, "interval", source=baseline, name="baseline")
    if name == "bare":
        return BareTarget(broker)
    if name == "jetstream":
        return JetStreamTarget(broker)
    return RecorderTarget(broker, base, name, source=source)
