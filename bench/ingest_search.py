"""One step (a paced burst and its grace) and the search for the highest rate that passes."""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from common import Broker, Child, cpu_seconds, machine_busy, size_label
from ingest_targets import Progress, Target

LABELS = {
    "bare": "bare nats-py",
    "interval": "recorder interval",
    "always": "recorder always",
    "jetstream": "jetstream sync",
    "baseline": "baseline interval",
}
# Offered rates (msgs/s) climbed in round 1 until a step fails.
LADDER = (5_000, 10_000, 20_000, 40_000, 60_000, 80_000, 120_000, 160_000, 240_000, 320_000)
JETSTREAM_LADDER = (250, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, *LADDER[4:])
LATER_ROUND_FACTOR = 1.25
MIN_RATE = 100
PUBLISHER_SHORTFALL = 0.97  # a step offered below 97% of its rate tested nothing
SETTLE_QUIET_S = 0.3
SETTLE_MAX_S = 30.0
POLL_S = 0.05


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
        elif time.monotonic() - quiet_since >= SETTLE_QUIET_S + target.count_lag_s:
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
    deadline = flushed_at + max(0.25, 0.1 * duration) + target.count_lag_s
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
