"""End-to-end ingest: the highest offered rate `recorder run` keeps with zero loss (issue 3).

    .venv/bin/python bench/ingest.py [--sizes 1024,4096] [--duration S] [--repeat R]
        [--targets bare,interval,always,jetstream] [--refine N] [--pin split|none]
        [--recorder-src DIR] [--dir DIR] [--json] [--profile RATE]

One nats-server on loopback (JetStream on, `sync_interval: always`, store on the real disk) and
one publisher process (nats-py) that offers MeshSync-like ADDED Pod envelopes at a paced rate in
steps. Each target is measured alone, in a process of its own:

  bare       a nats-py subscriber whose callback only counts (the ceiling for a Python consumer)
  interval   `recorder run --fsync interval` (the default)
  always     `recorder run --fsync always` (group commit: one fsync per written batch)
  jetstream  no client at all: a file stream on the same subject, server `sync_interval: always`

A step publishes `rate x duration` messages, paced against the clock, then flushes (PING/PONG,
so the server has them all). It passes when the target has every message within a grace of
max(0.25 s, 10% of the step) after that flush and no loss was signalled (recorder: messages
dropped by any reason or a broker disconnect; bare: a nats-py slow-consumer error or a
disconnect; jetstream: the stream's message count). The catch-up grace matters: nats-py's pending
limits (the recorder's defaults, 1M messages / 1 GiB, the same for both clients) absorb seconds of
overload, so "no drop within a short step" alone would report rates nobody can sustain. The grace
bounds that optimism to about 10%, equally for every target. Rates climb a ladder until a step
fails, then `--refine` geometric bisections narrow the bracket; the figure is the highest passing
rate. Later repeats start at the previous figure and move by x1.25. Targets and sizes run
interleaved in a rotating order; the table shows medians. A step the publisher could not offer
(below 97% of its rate) ends the climb: the figure is then a lower bound (">="), and a check it
decides is INCONCLUSIVE. `--pin split` (default) puts the publisher and nats-server on the first
CPU and the target on the others, so load generation does not starve the target. Each step also
reports CPU per message (target, its event-loop thread, server, publisher) and the load of other
processes on the machine; CPU per message at a common rate is the noise-resistant comparison.
Exits 1 when a target fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import math
import multiprocessing
import os
import platform
import pstats
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

import nats
from nats.js.api import StorageType

from recorder.config import NatsConfig
from recorder.embedded import find_nats_server, free_port

SUBJECT = "meshery.meshsync.core"
STREAM = "BENCH_MESHSYNC"
PAYLOAD_POOL = 64  # distinct payloads cycled through
TARGETS = ("bare", "interval", "always", "jetstream")
LABELS = {
    "bare": "bare nats-py",
    "interval": "recorder interval",
    "always": "recorder always",
    "jetstream": "jetstream sync",
}
# Offered rates (msgs/s) climbed in round 1 until a step fails.
LADDER = (5_000, 10_000, 20_000, 40_000, 60_000, 80_000, 120_000, 160_000, 240_000, 320_000)
JETSTREAM_LADDER = (250, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, *LADDER[4:])
LATER_ROUND_FACTOR = 1.25
MIN_RATE = 100
PUBLISHER_SHORTFALL = 0.97  # a step offered below 97% of its rate tested nothing
PENDING_MSGS = NatsConfig.pending_msgs_limit  # the recorder's defaults, used for both clients
PENDING_BYTES = NatsConfig.pending_bytes_limit
SETTLE_QUIET_S = 0.3
SETTLE_MAX_S = 30.0
POLL_S = 0.05
VERDICT = {True: "PASS", False: "FAIL", None: "INCONCLUSIVE"}

# Targets from issue 3.
TARGET_INTERVAL_VS_BARE = {1024: 0.90, 4096: 0.75}
TARGET_ALWAYS_VS_JETSTREAM = 10.0


# -- payloads -------------------------------------------------------------------------------


def meshsync_payloads(size: int, count: int = PAYLOAD_POOL) -> list[bytes]:
    """Compact JSON like WIRE.md's ADDED Pod envelope, exactly `size` bytes, `count` variants."""
    rng = random.Random(size)
    spec = json.dumps(
        {
            "containers": [{"image": "nginx:1.27", "name": "nginx", "ports": [80]}],
            "dnsPolicy": "ClusterFirst",
            "nodeName": "kind-worker",
            "restartPolicy": "Always",
            "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 30,
        },
        separators=(",", ":"),
        sort_keys=True,
    )
    escaped = json.dumps(spec)[1:-1]  # the attribute is a JSON string holding JSON text
    payloads = []
    for index in range(count):
        suffix = "".join(rng.choices("bcdfghjklmnpqrstvwxz2456789", k=5))
        envelope = {
            "ObjectType": "meshsync-data",
            "EventType": "ADDED",
            "Request": None,
            "Object": {
                "id": "",
                "apiVersion": "v1",
                "kind": "Pod",
                "model": "",
                "metadata": {
                    "id": "",
                    "name": f"nginx-7c5ddbdf54-{suffix}",
                    "generateName": "nginx-7c5ddbdf54-",
                    "namespace": "default",
                    "uid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "resourceVersion": str(48213 + index),
                    "creationTimestamp": "2025-03-14T09:26:51Z",
                    "labels": [
                        {"id": "", "unique_id": "", "kind": "label", "key": "app", "value": "nginx"}
                    ],
                    "cluster_id": "",
                },
                "spec": {"id": "", "attribute": "@FILL@"},
                "cluster_id": "5b1d3c6e-8f2a-4c71-9e0d-3a7b2f4c9d18",
                "pattern_resource": None,
                "component_metadata": None,
            },
        }
        frame = json.dumps(envelope, separators=(",", ":"))
        room = size - (len(frame) - len("@FILL@"))
        if room < 0:  # smaller than an envelope: still `size` bytes, no longer JSON
            payloads.append(frame.encode()[:size])
            continue
        fill = (escaped * (room // len(escaped) + 1))[:room]
        if fill.endswith("\\"):  # never leave a dangling escape before the closing quote
            fill = fill[:-1] + " "
        payload = frame.replace("@FILL@", fill).encode()
        assert len(payload) == size
        payloads.append(payload)
    return payloads


# -- the broker -----------------------------------------------------------------------------


class Broker:
    """nats-server on loopback from a config file: JetStream with `sync_interval: always`."""

    def __init__(self, base: Path) -> None:
        self.workdir = base / "nats-server"
        self.workdir.mkdir()
        self.port = free_port()
        self.http_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "server.log"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid if self.process else 0

    def start(self) -> None:
        store = json.dumps(str(self.workdir / "store"))
        conf = self.workdir / "server.conf"
        conf.write_text(
            f"listen: 127.0.0.1:{self.port}\nhttp: 127.0.0.1:{self.http_port}\n"
            f"jetstream {{ store_dir: {store}, sync_interval: always }}\n"
        )
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [find_nats_server(), "-c", str(conf)],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited: {self.log_path.read_text()[-500:]}")
            with contextlib.suppress(OSError, ValueError):
                if self.monitor("/healthz").get("status") == "ok":
                    return
            time.sleep(0.05)
        raise RuntimeError("nats-server did not become healthy within 10 s")

    def monitor(self, path: str) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.http_port}{path}"
        with urllib.request.urlopen(url, timeout=5) as response:
            document: dict[str, Any] = json.loads(response.read())
        return document

    def sync_always(self) -> bool:
        return bool(self.monitor("/varz").get("jetstream", {}).get("config", {}).get("sync_always"))

    def version(self) -> str:
        return str(self.monitor("/varz").get("version", "?"))

    def stream_messages(self) -> int:
        document = self.monitor("/jsz?streams=true")
        for account in document.get("account_details") or []:
            for stream in account.get("stream_detail") or []:
                if stream.get("name") == STREAM:
                    return int(stream["state"]["messages"])
        return 0

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            stop_process(process)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15.0) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """User + system CPU time of a process (all its threads), or of one thread, from /proc."""
    path = f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat"
    try:
        fields = Path(path).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- child processes: the publisher and the bare subscriber ---------------------------------


async def _publish_step(
    nc: Any, payloads: list[bytes], rate: float, seconds: float
) -> dict[str, Any]:
    """Publish rate x seconds messages, each due at start + i/rate; then flush (PING/PONG)."""
    total = max(1, round(rate * seconds))
    publish = nc.publish
    pool = len(payloads)
    clock = time.perf_counter
    sent = 0
    started = clock()
    while sent < total:
        due = min(total, int((clock() - started) * rate) + 1)
        while sent < due:
            await publish(SUBJECT, payloads[sent % pool])
            sent += 1
        # Yield (nats-py's flusher writes now) and sleep until the next message is due.
        await asyncio.sleep(max(0.0, started + sent / rate - clock()))
    published_s = clock() - started
    await nc.flush(timeout=60)
    return {"published": sent, "seconds": published_s, "flushed_s": clock() - started}


async def _publisher(conn: Connection, url: str) -> None:
    nc = await nats.connect(url, name="bench-publisher", pending_size=8 * 1024 * 1024)
    pools: dict[int, list[bytes]] = {}
    conn.send("ready")
    try:
        while True:
            command = await asyncio.to_thread(conn.recv)
            if command == "stop":
                break
            _, size, rate, seconds = command
            payloads = pools.setdefault(size, meshsync_payloads(size))
            conn.send(await _publish_step(nc, payloads, rate, seconds))
    finally:
        await nc.close()


def publisher_main(conn: Connection, url: str) -> None:
    asyncio.run(_publisher(conn, url))


async def _bare(conn: Connection, url: str) -> None:
    state = {"received": 0, "slow": 0, "disconnects": 0}
    stop = asyncio.Event()

    async def on_error(exc: Exception) -> None:
        if isinstance(exc, nats.errors.SlowConsumerError):
            state["slow"] += 1

    async def on_disconnect() -> None:
        state["disconnects"] += 1

    nc = await nats.connect(
        url,
        name="bench-bare",
        error_cb=on_error,
        disconnected_cb=on_disconnect,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.2,
    )
    count = 0

    async def on_message(msg: Any) -> None:
        nonlocal count
        count += 1

    await nc.subscribe(
        SUBJECT,
        cb=on_message,
        pending_msgs_limit=PENDING_MSGS,
        pending_bytes_limit=PENDING_BYTES,
    )
    await nc.flush()

    def on_query() -> None:
        if conn.recv() == "stop":
            stop.set()
        conn.send((count, state["slow"] + state["disconnects"]))

    asyncio.get_running_loop().add_reader(conn.fileno(), on_query)
    conn.send("ready")
    await stop.wait()
    await nc.close()


def bare_main(conn: Connection, url: str) -> None:
    asyncio.run(_bare(conn, url))


class Child:
    """A spawned child process driven over a pipe."""

    def __init__(self, target: Callable[..., None], *args: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child_conn = context.Pipe()
        self.process = context.Process(target=target, args=(child_conn, *args), daemon=True)
        self.process.start()
        child_conn.close()
        if not self.conn.poll(30) or self.conn.recv() != "ready":
            self.stop()
            raise RuntimeError(f"{target.__name__} did not start")

    @property
    def pid(self) -> int:
        return self.process.pid or 0

    def ask(self, command: Any, timeout: float = 120.0) -> Any:
        self.conn.send(command)
        if not self.conn.poll(timeout):
            raise TimeoutError(f"no answer to {command!r} within {timeout} s")
        return self.conn.recv()

    def stop(self) -> None:
        with contextlib.suppress(OSError, EOFError):
            self.conn.send("stop")
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


# -- targets --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Progress:
    received: int  # messages the target has (counted, journaled, stored)
    lost: int  # loss signals so far (drops, slow-consumer errors, disconnects)


class Target(Protocol):
    name: str

    def progress(self) -> Progress: ...

    def pids(self) -> list[int]: ...

    def stop(self) -> dict[str, Any]: ...


class BareTarget:
    def __init__(self, broker: Broker) -> None:
        self.name = "bare"
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
    ) -> None:
        self.name = policy
        self.journal = Path(tempfile.mkdtemp(prefix=f"journal-{policy}-", dir=base))
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
        env = {
            **os.environ,
            "RECORDER_LOG_LEVEL": "warning",
            "RECORDER_LOG_FORMAT": "json",
            "RECORDER_NATS_PENDING_MSGS_LIMIT": str(PENDING_MSGS),
            "RECORDER_NATS_PENDING_BYTES_LIMIT": str(PENDING_BYTES),
        }
        if source is not None:  # another checkout's `recorder` package, to compare a change
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), env.get("PYTHONPATH")]))
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
        return Progress(self.broker.stream_messages(), 0)

    def pids(self) -> list[int]:
        return [self.broker.process.pid] if self.broker.process else []

    def stop(self) -> dict[str, Any]:
        asyncio.run(self._admin(create=False))
        return {}


@contextlib.contextmanager
def pinned(cpus: set[int] | None) -> Iterator[None]:
    """Processes started inside inherit this CPU affinity (None: no pinning)."""
    if cpus is None:
        yield
        return
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, saved)


def cpu_split(mode: str) -> tuple[set[int] | None, set[int] | None]:
    """(load side: publisher and nats-server, consumer side) CPU sets for --pin."""
    cpus = sorted(os.sched_getaffinity(0))
    if mode == "none" or len(cpus) < 2:
        return None, None
    return {cpus[0]}, set(cpus[1:])


def start_target(name: str, broker: Broker, base: Path, source: Path | None) -> Target:
    if name == "bare":
        return BareTarget(broker)
    if name == "jetstream":
        return JetStreamTarget(broker)
    return RecorderTarget(broker, base, name, source=source)


# -- one step, one search -------------------------------------------------------------------


@dataclass(slots=True)
class Step:
    rate: float
    published: int
    offered_rate: float  # what the publisher achieved
    received: int  # within the grace
    late: int  # arrived after the grace (settled count - received)
    lost: int  # never arrived, or loss signals
    catch_up_s: float
    passed: bool
    publisher_limited: bool
    # CPU seconds over the step and its grace: the target's processes (jetstream: nats-server),
    # nats-server, the publisher, and everything else on the machine (the noise).
    target_cpu: float
    target_loop_cpu: float  # of it, the main thread's (the asyncio event loop's)
    broker_cpu: float
    publisher_cpu: float
    other_cpu: float
    wall_s: float

    @property
    def target_us_per_msg(self) -> float:
        return self.target_cpu / max(self.published, 1) * 1e6


def machine_busy() -> float:
    """Busy CPU seconds of the whole machine since boot (all CPUs), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds used by the target, the broker, the publisher and the rest since creation."""

    def __init__(self, target: Target, broker_pid: int, publisher_pid: int) -> None:
        self.target_pids = target.pids()
        self.pids = {"broker": broker_pid, "publisher": publisher_pid}
        self.started = self._sample()

    def _sample(self) -> dict[str, float]:
        sample = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        sample["target"] = sum(cpu_seconds(pid) for pid in self.target_pids)
        sample["target_loop"] = sum(cpu_seconds(pid, pid) for pid in self.target_pids)
        sample["machine"] = machine_busy()
        sample["wall"] = time.monotonic()
        return sample

    def read(self) -> dict[str, float]:
        now = self._sample()
        used = {name: now[name] - self.started[name] for name in now}
        ours = used["broker"] + used["publisher"]
        if self.pids["broker"] not in self.target_pids:
            ours += used["target"]
        used["other"] = max(0.0, used["machine"] - ours)
        return used


def settle(target: Target) -> Progress:
    """Wait until the target's count stops moving: the previous step is fully absorbed."""
    last = target.progress()
    quiet_since = time.monotonic()
    deadline = quiet_since + SETTLE_MAX_S
    while time.monotonic() < deadline:
        time.sleep(POLL_S * 2)
        now = target.progress()
        if now != last:
            last, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since >= SETTLE_QUIET_S:
            break
    return last


def run_step(
    target: Target, broker: Broker, publisher: Child, size: int, rate: float, duration: float
) -> Step:
    before = settle(target)
    meter = CpuMeter(target, broker.pid, publisher.pid)
    result = publisher.ask(("step", size, rate, duration), timeout=duration * 20 + 60)
    published = result["published"]
    offered = published / result["seconds"] if result["seconds"] > 0 else rate
    flushed_at = time.monotonic()
    deadline = flushed_at + max(0.25, 0.1 * duration)
    while True:
        now = target.progress()
        got = now.received - before.received
        if got >= published or time.monotonic() >= deadline:
            break
        time.sleep(POLL_S)
    catch_up = time.monotonic() - flushed_at
    cpu = meter.read()
    signals = now.lost - before.lost
    passed = got == published and signals == 0
    late = lost = 0
    if not passed:
        after = settle(target)
        late = max(0, after.received - now.received)
        lost = max(0, published - (after.received - before.received)) + (after.lost - before.lost)
    return Step(
        rate,
        published,
        offered,
        got,
        late,
        lost,
        catch_up,
        passed,
        offered < PUBLISHER_SHORTFALL * rate,
        cpu["target"],
        cpu["target_loop"],
        cpu["broker"],
        cpu["publisher"],
        cpu["other"],
        cpu["wall"],
    )


@dataclass(slots=True)
class Search:
    target: str
    size: int
    rate: float  # highest passing offered rate (0: even the lowest failed)
    capped: bool  # the search hit the publisher's or --max-rate's ceiling, not a failure
    steps: list[Step] = field(default_factory=list)
    seconds: float = 0.0
    stop_info: dict[str, Any] = field(default_factory=dict)


def rungs(name: str, start: float | None, max_rate: float) -> Iterator[float]:
    """Round 1 climbs the ladder; later rounds start at the previous figure, x1.25 each."""
    if start is None:
        yield from (
            r for r in (JETSTREAM_LADDER if name == "jetstream" else LADDER) if r <= max_rate
        )
        return
    rate = start
    while rate <= max_rate:
        yield rate
        rate *= LATER_ROUND_FACTOR


def search(
    target: Target,
    broker: Broker,
    publisher: Child,
    size: int,
    start: float | None,
    args: argparse.Namespace,
    report: Callable[[str], None],
) -> Search:
    outcome = Search(target.name, size, 0.0, capped=False)
    began = time.monotonic()

    def attempt(rate: float) -> Step:
        step = run_step(target, broker, publisher, size, round(rate), args.duration)
        outcome.steps.append(step)
        report(describe_step(target.name, size, step))
        return step

    low, high = 0.0, math.inf
    for rate in rungs(target.name, start, args.max_rate):
        step = attempt(rate)
        if step.publisher_limited and step.passed:
            outcome.capped = True
            low = step.offered_rate
            break
        if not step.passed:
            high = rate
            break
        low = rate
    else:
        outcome.capped = True
    if start is not None and low == 0.0 and high < math.inf:
        # A later round whose first rate failed walks down until one passes.
        rate = high / LATER_ROUND_FACTOR
        while rate >= MIN_RATE:
            if attempt(rate).passed:
                low = rate
                break
            high, rate = rate, rate / LATER_ROUND_FACTOR
    if high < math.inf and not outcome.capped:
        for _ in range(args.refine):
            middle = math.sqrt(max(low, MIN_RATE) * high)
            step = attempt(middle)
            if step.passed:
                low = middle
            else:
                high = middle
    outcome.rate = round(low)
    outcome.seconds = time.monotonic() - began
    return outcome


def describe_step(name: str, size: int, step: Step) -> str:
    def per_msg(seconds: float) -> str:
        return f"{seconds / max(step.published, 1) * 1e6:4.1f}"

    verdict = "ok  " if step.passed else "FAIL"
    loop = f" (loop {per_msg(step.target_loop_cpu)})" if name in ("interval", "always") else ""
    text = (
        f"  {size_label(size):>6} {LABELS[name]:<17} {step.rate:>8,.0f}/s {verdict}"
        f" offered {step.offered_rate:>8,.0f}/s got {step.received:,}/{step.published:,}"
        f" +{step.catch_up_s:.2f}s | cpu us/msg target {per_msg(step.target_cpu)}{loop}"
        f" server {per_msg(step.broker_cpu)} pub {per_msg(step.publisher_cpu)}"
        f" | others {step.other_cpu / step.wall_s:.1f} cores"
    )
    if not step.passed:
        text += f" | late {step.late:,} lost {step.lost:,}"
    if step.publisher_limited:
        text += " (publisher short of the rate)"
    return text


# -- running --------------------------------------------------------------------------------


def measure(base: Path, broker: Broker, publisher: Child, args: argparse.Namespace) -> list[Search]:
    results: list[Search] = []
    previous: dict[tuple[str, int], list[float]] = {}
    jobs = [(size, name) for size in args.sizes for name in args.targets]
    for round_index in range(args.repeat):
        shift = round_index % len(args.targets)
        order = args.targets[shift:] + args.targets[:shift]
        for size in args.sizes:
            for name in order:
                key = (name, size)
                start = statistics.median(previous[key]) if key in previous else None
                if start is not None and start < MIN_RATE:
                    start = None
                with pinned(cpu_split(args.pin)[1]):
                    target = start_target(name, broker, base, args.recorder_src)
                try:
                    outcome = search(target, broker, publisher, size, start, args, log)
                finally:
                    info = target.stop()
                outcome.stop_info = info
                if info.get("exit_code") not in (None, 0):
                    log(f"  recorder exited with {info['exit_code']}: {info['log_tail']}")
                results.append(outcome)
                previous.setdefault(key, []).append(outcome.rate)
                cap = " (ceiling)" if outcome.capped else ""
                log(
                    f"round {round_index + 1}/{args.repeat} {size_label(size)} {LABELS[name]}: "
                    f"{outcome.rate:,.0f} msgs/s{cap} in {outcome.seconds:.0f} s"
                )
    assert len(jobs) * args.repeat == len(results)
    return results


@dataclass(slots=True)
class Figure:
    target: str
    size: int
    rates: list[float]
    capped: bool
    cpu_us_per_msg: float | None  # at the highest passing step, median over rounds

    @property
    def median(self) -> float:
        return statistics.median(self.rates)


def figures(results: list[Search], args: argparse.Namespace) -> list[Figure]:
    out = []
    for size in args.sizes:
        for name in args.targets:
            mine = [r for r in results if r.target == name and r.size == size]
            cpu = []
            for r in mine:
                passing = [s for s in r.steps if s.passed]
                if passing:
                    best = max(passing, key=lambda s: s.rate)
                    cpu.append(best.target_us_per_msg)
            out.append(
                Figure(
                    name,
                    size,
                    [r.rate for r in mine],
                    any(r.capped for r in mine),
                    statistics.median(cpu) if cpu else None,
                )
            )
    return out


def find(figs: list[Figure], name: str, size: int) -> Figure | None:
    return next((f for f in figs if f.target == name and f.size == size), None)


def compare(num: Figure, den: Figure, target: float) -> tuple[bool | None, float]:
    """Ratio of medians against a target; a capped figure is only a bound."""
    if den.median <= 0:
        return (None if num.median <= 0 else True), math.inf
    ratio = num.median / den.median
    if num.capped and den.capped:
        return None, ratio
    if num.capped:  # ratio is a lower bound
        return (True if ratio >= target else None), ratio
    if den.capped:  # ratio is an upper bound
        return (False if ratio < target else None), ratio
    return ratio >= target, ratio


def checks(
    figs: list[Figure], results: list[Search], args: argparse.Namespace
) -> list[tuple[bool | None, str]]:
    out: list[tuple[bool | None, str]] = []
    for size in args.sizes:
        interval, bare = find(figs, "interval", size), find(figs, "bare", size)
        goal = TARGET_INTERVAL_VS_BARE.get(size)
        if interval and bare and goal is not None:
            verdict, ratio = compare(interval, bare, goal)
            detail = (
                f"fsync interval, {size_label(size)}: {ratio:.0%} of the bare subscriber's "
                f"zero-loss rate ({interval.median:,.0f} vs {bare.median:,.0f} msgs/s), "
                f"target >= {goal:.0%}"
            )
            by_cpu = cpu_ratio(results, size)
            if verdict is None and by_cpu is not None:
                detail += f" (a ceiling hid the answer; CPU per message says {by_cpu:.0%})"
            out.append((verdict, detail))
        always, jetstream = find(figs, "always", size), find(figs, "jetstream", size)
        if always and jetstream:
            verdict, ratio = compare(always, jetstream, TARGET_ALWAYS_VS_JETSTREAM)
            out.append(
                (
                    verdict,
                    f"fsync always, {size_label(size)}: {ratio:.1f}x JetStream sync-always "
                    f"({always.median:,.0f} vs {jetstream.median:,.0f} msgs/s), "
                    f"target >= {TARGET_ALWAYS_VS_JETSTREAM:.0f}x",
                )
            )
    return out


def table(figs: list[Figure]) -> str:
    header = (
        f"{'payload':>7}  {'target':<17}  {'zero-loss msgs/s median [min-max]':>34}  "
        f"{'MB/s':>6}  {'vs bare':>7}  {'CPU us/msg':>10}"
    )
    lines = [header, "-" * len(header)]
    for fig in figs:
        bare = find(figs, "bare", fig.size)
        versus = f"{fig.median / bare.median:.2f}" if bare and bare.median else "-"
        cap = ">=" if fig.capped else ""
        rates = f"{cap}{fig.median:,.0f} [{min(fig.rates):,.0f}-{max(fig.rates):,.0f}]"
        cpu = f"{fig.cpu_us_per_msg:.1f}" if fig.cpu_us_per_msg is not None else "-"
        lines.append(
            f"{size_label(fig.size):>7}  {LABELS[fig.target]:<17}  {rates:>34}  "
            f"{fig.median * fig.size / 1e6:>6.1f}  {versus:>7}  {cpu:>10}"
        )
    return "\n".join(lines)


def common_rate_cpu(
    results: list[Search], size: int, clients: list[str]
) -> tuple[float, dict[str, tuple[float, float]]] | None:
    """(rate, {client: (CPU us/msg, event-loop thread's us/msg)}) at the highest ladder rate
    every client passed, medians over rounds; None when there is no such rate."""
    passed: dict[str, dict[float, list[Step]]] = {}
    for r in results:
        if r.size == size and r.target in clients:
            for step in r.steps:
                if step.passed:
                    passed.setdefault(r.target, {}).setdefault(step.rate, []).append(step)
    common = [rate for rate in LADDER if all(rate in passed.get(name, {}) for name in clients)]
    if not common or not clients:
        return None
    rate = common[-1]
    cpu = {}
    for name in clients:
        steps = passed[name][rate]
        cpu[name] = (
            statistics.median(s.target_us_per_msg for s in steps),
            statistics.median(s.target_loop_cpu / s.published * 1e6 for s in steps),
        )
    return rate, cpu


def cpu_ratio(results: list[Search], size: int) -> float | None:
    """bare / interval CPU per message at a common rate: the rate ratio one dedicated core gives."""
    found = common_rate_cpu(results, size, ["bare", "interval"])
    return found[1]["bare"][0] / found[1]["interval"][0] if found else None


def cpu_at_common_rate(results: list[Search], args: argparse.Namespace) -> list[str]:
    """CPU per message of each client at the highest ladder rate all of them passed.

    On a busy machine the zero-loss rate moves with everyone else's load; the consumer's CPU
    per message at one offered rate moves much less, and its inverse is the rate one dedicated
    core would sustain.
    """
    clients = [name for name in args.targets if name != "jetstream"]
    lines = []
    for size in args.sizes:
        found = common_rate_cpu(results, size, clients)
        if found is None:
            continue
        rate, cpu = found
        parts = [
            f"{LABELS[name]} {total:.1f}" + (f" (loop {loop:.1f})" if name != "bare" else "")
            for name, (total, loop) in cpu.items()
        ]
        line = f"CPU us/msg at {rate:,} msgs/s, {size_label(size)}: " + ", ".join(parts)
        ratio = cpu_ratio(results, size) if {"bare", "interval"} <= set(clients) else None
        if ratio is not None:
            line += f"; bare/interval = {ratio:.2f}"
        lines.append(line)
    noise = [s.other_cpu / s.wall_s for r in results for s in r.steps]
    if noise:
        lines.append(
            f"other load on the machine during steps: median {statistics.median(noise):.1f}"
            f" cores, max {max(noise):.1f} (of {os.cpu_count()})"
        )
    return lines


def profile(base: Path, broker: Broker, publisher: Child, args: argparse.Namespace) -> None:
    """The recorder (fsync interval, first size) under cProfile at a fixed offered rate."""
    output = base / "recorder.prof"
    with pinned(cpu_split(args.pin)[1]):
        target = RecorderTarget(broker, base, "interval", cprofile=output, source=args.recorder_src)
    try:
        for _ in range(args.repeat):
            log(
                describe_step(
                    "interval",
                    args.sizes[0],
                    run_step(target, broker, publisher, args.sizes[0], args.profile, args.duration),
                )
            )
    finally:
        target.stop()
    print(f"recorder event-loop thread under cProfile at {args.profile:,.0f} msgs/s offered:")
    pstats.Stats(str(output), stream=sys.stdout).sort_stats("tottime").print_stats(25)


def size_label(size: int) -> str:
    return f"{size // 1024} KiB" if size >= 1024 and size % 1024 == 0 else f"{size} B"


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def parse_list(text: str) -> list[int]:
    sizes = [int(part) for part in text.split(",")]
    if any(size < 1 for size in sizes):
        raise ValueError(text)
    return sizes


def parse_targets(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names or any(name not in TARGETS for name in names):
        raise ValueError(text)
    return names


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", type=parse_list, default=[1024, 4096], help="payload bytes")
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per step")
    parser.add_argument("--repeat", type=int, default=2, help="searches per target and size")
    parser.add_argument("--refine", type=int, default=3, help="bisection steps per search")
    parser.add_argument(
        "--targets", type=parse_targets, default=list(TARGETS), help="comma-separated subset"
    )
    parser.add_argument("--max-rate", type=float, default=400_000, help="highest rate offered")
    parser.add_argument("--dir", type=Path, default=None, help="journals and store (default: cwd)")
    parser.add_argument("--json", action="store_true", help="JSON results on stdout")
    parser.add_argument(
        "--pin",
        choices=("split", "none"),
        default="split",
        help="split: publisher and nats-server on the first CPU, the target on the others",
    )
    parser.add_argument(
        "--recorder-src",
        type=Path,
        default=None,
        help="run `recorder` from this directory (PYTHONPATH), e.g. a checkout with a change",
    )
    parser.add_argument(
        "--profile",
        type=float,
        default=None,
        metavar="RATE",
        help="instead: cProfile the recorder (interval, first size) at RATE msgs/s, --repeat steps",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.refine < 0 or args.duration <= 0:
        parser.error("--repeat >= 1, --refine >= 0 and --duration > 0")
    return args


def recorder_location(base: Path, source: Path | None) -> str:
    """Where the `recorder` package the targets run comes from (it may be --recorder-src)."""
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), env.get("PYTHONPATH")]))
    found = subprocess.run(
        [sys.executable, "-c", "import recorder; print(recorder.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=base,
        check=True,
    )
    return str(Path(found.stdout.strip()).parent)


def environment(base: Path, broker: Broker, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "recorder": recorder_location(base, args.recorder_src),
        "pin": args.pin,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "sizes": args.sizes,
        "duration_s": args.duration,
        "repeat": args.repeat,
        "refine": args.refine,
        "directory": str(base),
        "nats_server": broker.version(),
        "jetstream_sync_always": broker.sync_always(),
        "nats_py": importlib.metadata.version("nats-py"),
        "pending_msgs_limit": PENDING_MSGS,
        "pending_bytes_limit": PENDING_BYTES,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    parent = (args.dir or Path.cwd()).resolve()
    base = Path(tempfile.mkdtemp(prefix=".bench-ingest-", dir=parent))
    broker = Broker(base)
    publisher: Child | None = None
    began = time.monotonic()
    try:
        with pinned(cpu_split(args.pin)[0]):
            broker.start()
        if not broker.sync_always():
            raise RuntimeError("nats-server did not take `sync_interval: always`")
        with pinned(cpu_split(args.pin)[0]):
            publisher = Child(publisher_main, broker.url)
        env = environment(base, broker, args)
        log(
            f"nats-server {env['nats_server']} (JetStream sync_always={env['jetstream_sync_always']})"
            f", store and journals in {base}; {args.duration:g} s steps, {args.repeat} rounds;"
            f" recorder from {env['recorder']}; pin={args.pin}"
        )
        if args.profile:
            profile(base, broker, publisher, args)
            return 0
        results = measure(base, broker, publisher, args)
    finally:
        if publisher is not None:
            publisher.stop()
        broker.stop()
        shutil.rmtree(base, ignore_errors=True)
    figs = figures(results, args)
    outcome = checks(figs, results, args)
    report = "\n".join(
        [
            table(figs),
            "zero-loss = every message counted/journaled/stored within max(0.25 s, 10% of the"
            " step) of the publisher's flush, no drop or disconnect; CPU us/msg = the target's"
            " process CPU (jetstream: the whole nats-server) per message at its best step;"
            " >= : the publisher or --max-rate was the limit",
            *cpu_at_common_rate(results, args),
            *(f"{VERDICT[verdict]} {detail}" for verdict, detail in outcome),
            f"total {time.monotonic() - began:.0f} s",
        ]
    )
    if args.json:
        print(report, file=sys.stderr)
        document = {
            "environment": env,
            "figures": [{**asdict(f), "median": f.median} for f in figs],
            "checks": [{"passed": v, "detail": d} for v, d in outcome],
            "searches": [asdict(r) for r in results],
        }
        print(json.dumps(document, indent=2))
    else:
        print(report)
    return 0 if all(v is not False for v, _ in outcome) else 1


if __name__ == "__main__":
    sys.exit(main())
