"""ingest.py's figures (the median zero-loss rate per target and size), checks and report."""

from __future__ import annotations

import argparse
import math
import os
import statistics
from dataclasses import dataclass

from common import size_label, spread, table, verdict
from ingest_search import LABELS, LADDER, Search, Step

# Targets from issue 3.
TARGET_INTERVAL_VS_BARE = {1024: 0.90, 4096: 0.75}
TARGET_ALWAYS_VS_JETSTREAM = 10.0


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


def figure_table(figs: list[Figure]) -> list[str]:
    columns = [
        ("payload", ">7"),
        ("target", "<17"),
        ("zero-loss msgs/s median [min-max]", ">34"),
        ("MB/s", ">6"),
        ("vs bare", ">7"),
        ("CPU us/msg", ">10"),
    ]
    rows = []
    for fig in figs:
        bare = find(figs, "bare", fig.size)
        rows.append(
            [
                size_label(fig.size),
                LABELS[fig.target],
                (">=" if fig.capped else "") + spread(fig.rates, ",.0f"),
                f"{fig.median * fig.size / 1e6:.1f}",
                f"{fig.median / bare.median:.2f}" if bare and bare.median else "-",
                f"{fig.cpu_us_per_msg:.1f}" if fig.cpu_us_per_msg is not None else "-",
            ]
        )
    return table(columns, rows)


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


def report(
    figs: list[Figure],
    outcome: list[tuple[bool | None, str]],
    results: list[Search],
    args: argparse.Namespace,
) -> list[str]:
    return [
        *figure_table(figs),
        "zero-loss = every message counted/journaled/stored within max(0.25 s, 10% of the"
        " step) of the publisher's flush, no drop or disconnect; CPU us/msg = the target's"
        " process CPU (jetstream: the whole nats-server) per message at its best step;"
        " >= : the publisher or --max-rate was the limit",
        *cpu_at_common_rate(results, args),
        *(f"{verdict(passed)} {detail}" for passed, detail in outcome),
    ]
