"""`recorder demo`: the whole product on loopback, checked against a simulator's ground truth.

An embedded nats-server, the real daemon (`python -m recorder run` as a child process), simulated
MeshSync churn published from this process, then verify, inspect, compact and a replayed slice.
Every child process is stopped on the way out, whatever happens: the daemon with SIGTERM (then
SIGKILL), the broker through `EmbeddedBroker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path
from typing import Final

import nats
from nats.aio.msg import Msg

from recorder.compact.run import CompactRequest, run_compaction
from recorder.config import NatsConfig
from recorder.demo.embedded import EmbeddedBroker, find_nats_server
from recorder.demo.recorder_child import RecorderChild
from recorder.demo.simulator import SimMessage, Simulator
from recorder.errors import UsageError
from recorder.journal.maintenance import inspect_journal, verify_journal
from recorder.journal.reader import JournalReader
from recorder.journal.record import Message
from recorder.log import get_logger
from recorder.meshsync import REQUEST_SUBJECT, Boundary, decode
from recorder.replay.publisher import Publisher
from recorder.replay.run import (
    Pacer,
    ReplayStats,
    Selection,
    connect,
    journal_batches,
    replay,
)
from recorder.replay.snapshot_source import load_snapshot
from recorder.subjects import SubjectMap

log = get_logger("demo")

MIN_EVENTS: Final = 300  # fewer and the stream may end before both kinds of re-list
REPLAY_SUBJECT: Final = "demo.replay.>"
REPLAY_MAP: Final = ">=demo.replay.>"
_READY_TIMEOUT_S: Final = 20.0
_WRITTEN_TIMEOUT_S: Final = 10.0
_STOP_TIMEOUT_S: Final = 15.0
_REPLAY_TIMEOUT_S: Final = 20.0


@dataclass(frozen=True, slots=True)
class DemoRequest:
    directory: Path  # must be missing or empty: journal, snapshot and the daemon's log go here
    events: int = 2000
    seconds: float = 10.0  # how long publishing the events takes
    replay_count: int = 100
    seed: int = 1
    env: Mapping[str, str] = field(default_factory=dict)  # base environment of the daemon


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(slots=True)
class DemoStats:
    directory: Path
    journal_dir: Path
    snapshot_path: Path
    log_path: Path
    broker_url: str = ""
    broker_pid: int | None = None
    recorder_pid: int | None = None
    recorder_exit: int | None = None
    http_listen: str = ""
    published: int = 0
    published_by_subject: dict[str, int] = field(default_factory=dict)
    relists: dict[str, int] = field(default_factory=dict)
    recorded: int = 0
    recorded_identical: bool = False  # each subject's payloads, in order, as published
    segments: int = 0
    segment_states: dict[str, int] = field(default_factory=dict)
    verify_problems: list[str] = field(default_factory=list)
    snapshot_per_kind: dict[str, int] = field(default_factory=dict)
    truth_per_kind: dict[str, int] = field(default_factory=dict)
    snapshot_differences: int = 0  # objects missing, extra, or at another resourceVersion
    replay_sent: int = 0
    replay_received: int = 0
    elapsed_s: float = 0.0

    @property
    def checks(self) -> list[Check]:
        recorded = f"{self.recorded} of {self.published}"
        objects = sum(self.snapshot_per_kind.values())
        same_objects = (
            self.snapshot_per_kind == self.truth_per_kind and not self.snapshot_differences
        )
        return [
            Check(
                "recorded == published",
                self.recorded == self.published > 0 and self.recorded_identical,
                recorded if self.recorded_identical else f"{recorded}, payloads differ",
            ),
            Check(
                "journal verifies",
                not self.verify_problems,
                "; ".join(self.verify_problems[:3]) or "clean",
            ),
            Check(
                "recorder stopped cleanly", self.recorder_exit == 0, f"exit {self.recorder_exit}"
            ),
            Check(
                "snapshot == ground truth",
                same_objects and objects > 0,
                f"{objects} objects, {self.snapshot_differences} differences",
            ),
            Check(
                "replayed == received",
                self.replay_sent == self.replay_received > 0,
                f"{self.replay_received} of {self.replay_sent}",
            ),
        ]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)


def run_demo(request: DemoRequest) -> DemoStats:
    """Run every step, record what each found, and stop all child processes before returning."""
    if request.events < MIN_EVENTS:
        raise UsageError(f"--events: at least {MIN_EVENTS}, got {request.events}")
    if request.seconds <= 0:
        raise UsageError(f"--seconds: must be positive, got {request.seconds}")
    find_nats_server()  # its absence is the likeliest failure: say so before creating anything
    directory = request.directory
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise UsageError(
            f"--dir: {directory} exists and is not an empty directory",
            hint="give a new directory; the demo's counts only hold for a journal of its own",
        )
    directory.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    stats = DemoStats(
        directory, directory / "journal", directory / "snapshot.yaml", directory / "recorder.log"
    )
    sim = _simulator(request)
    messages = list(sim.events(request.events))
    _count_published(messages, stats)
    log.info("demo_traffic_generated", messages=stats.published, relists=stats.relists)
    with contextlib.ExitStack() as stack:
        # Cleanups are registered before each start, so an interrupt mid-start still stops it.
        broker = EmbeddedBroker(port=0)
        stack.callback(broker.stop)
        stats.broker_url = broker.start()
        # EmbeddedBroker has no public pid; the report names it so nobody has to hunt for it.
        stats.broker_pid = broker.pid
        log.info("demo_broker_started", pid=stats.broker_pid, url=stats.broker_url)
        daemon = stack.enter_context(
            RecorderChild(stats.journal_dir, broker.url, stats.log_path, request.env)
        )
        stats.recorder_pid, stats.http_listen = daemon.process.pid, daemon.listen
        daemon.wait_ready(_READY_TIMEOUT_S)
        asyncio.run(_publish(broker.url, messages, request.seconds))
        log.info("demo_published", messages=len(messages), seconds=request.seconds)
        daemon.wait_written(len(messages), _WRITTEN_TIMEOUT_S)
        stats.recorder_exit = daemon.stop(_STOP_TIMEOUT_S)
        _check_journal(messages, stats)
        _check_snapshot(sim, stats)
        stats.replay_sent, stats.replay_received = asyncio.run(
            asyncio.wait_for(
                _replay_slice(broker.url, stats.journal_dir, request.replay_count),
                _REPLAY_TIMEOUT_S,
            )
        )
        log.info("demo_replayed", sent=stats.replay_sent, received=stats.replay_received)
    stats.elapsed_s = time.monotonic() - started
    log.info("demo_finished", ok=stats.ok, elapsed_s=round(stats.elapsed_s, 2))
    return stats


def _simulator(request: DemoRequest) -> Simulator:
    # Re-lists are counted in churn steps (about 1.2 messages each): an informer-store dump about
    # every sixth of the stream and a resync-discovery about every third.
    return Simulator(
        request.seed,
        namespaces=3,
        apps_per_namespace=4,
        pods_per_app=3,
        store_every=max(1, request.events // 6),
        resync_every=max(2, request.events // 3),
    )


def _count_published(messages: Sequence[SimMessage], stats: DemoStats) -> None:
    stats.published = len(messages)
    stats.published_by_subject = dict(Counter(message.subject for message in messages))
    boundaries = (decode(m.payload, m.subject) for m in messages if m.subject == REQUEST_SUBJECT)
    stats.relists = dict(Counter(b.entity for b in boundaries if isinstance(b, Boundary)))


async def _publish(url: str, messages: Sequence[SimMessage], seconds: float) -> None:
    """Publish evenly over `seconds` from one connection, then flush so the broker has them all."""
    nc = await nats.connect(url, connect_timeout=5, allow_reconnect=False)
    loop = asyncio.get_running_loop()
    try:
        start, interval = loop.time(), seconds / len(messages)
        for index, message in enumerate(messages):
            delay = start + index * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await nc.publish(message.subject, message.payload)
        await nc.flush(timeout=10)
    finally:
        await nc.close()


def _check_journal(messages: Sequence[SimMessage], stats: DemoStats) -> None:
    report = verify_journal(stats.journal_dir)
    stats.verify_problems = [
        f"{problem.segment}@{problem.offset}: {problem.reason}" for problem in report.problems
    ]
    infos = inspect_journal(stats.journal_dir)
    stats.segments = len(infos)
    stats.segment_states = dict(Counter(info.state for info in infos))
    records = (record for _, record in JournalReader(stats.journal_dir))
    recorded = _by_subject((r.subject, r.payload) for r in records if isinstance(r, Message))
    stats.recorded = sum(info.messages for info in infos)
    stats.recorded_identical = recorded == _by_subject((m.subject, m.payload) for m in messages)
    log.info("demo_journal_checked", recorded=stats.recorded, problems=len(report.problems))


def _by_subject(messages: Iterable[tuple[str, bytes]]) -> dict[str, list[bytes]]:
    """Payloads in order per subject: the order core NATS keeps from one publisher."""
    payloads: dict[str, list[bytes]] = {}
    for subject, payload in messages:
        payloads.setdefault(subject, []).append(payload)
    return payloads


def _check_snapshot(sim: Simulator, stats: DemoStats) -> None:
    result = run_compaction(
        CompactRequest(directory=stats.journal_dir, format="yaml", out=stats.snapshot_path)
    )
    # Read the file back: the check is on what a user would `kubectl apply`, not on memory.
    manifests = load_snapshot(stats.snapshot_path)
    found = {
        str(m["metadata"].get("uid")): str(m["metadata"].get("resourceVersion")) for m in manifests
    }
    truth = {uid: version for (_cluster, uid), version in sim.truth().items()}
    stats.snapshot_per_kind = dict(sorted(Counter(str(m["kind"]) for m in manifests).items()))
    live = sim.live_objects().values()
    stats.truth_per_kind = dict(sorted(Counter(str(obj["kind"]) for obj in live).items()))
    stats.snapshot_differences = len(set(found.items()) ^ set(truth.items()))
    differences = stats.snapshot_differences
    log.info("demo_snapshot_checked", objects=result.objects_written, differences=differences)


async def _replay_slice(url: str, journal: Path, count: int) -> tuple[int, int]:
    """Replay the first `count` messages flat out into demo.replay.>, counted by a subscriber."""
    received = 0

    async def on_message(_msg: Msg) -> None:
        nonlocal received
        received += 1

    listener = await nats.connect(url, connect_timeout=5, allow_reconnect=False)
    try:
        await listener.subscribe(REPLAY_SUBJECT, cb=on_message)
        await listener.flush(timeout=5)
        nc, errors = await connect(NatsConfig(urls=(url,)))
        try:
            outgoing = list(
                islice(
                    chain.from_iterable(
                        journal_batches(journal, Selection(), maps=(SubjectMap.parse(REPLAY_MAP),))
                    ),
                    count,
                )
            )
            stats = await replay(
                [outgoing], Publisher(nc), errors, Pacer(None, None), asyncio.Event(), ReplayStats()
            )
        finally:
            await nc.close()
        # The replay flushed, so the broker has routed every message; one round trip on the
        # listener's own connection and they have all been delivered to it.
        await listener.flush(timeout=5)
        deadline = time.monotonic() + 5
        while received < stats.sent and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    finally:
        await listener.close()
    return stats.sent, received
