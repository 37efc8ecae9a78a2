"""End-to-end ingest: the highest offered rate `recorder run` keeps with zero loss (issue 3).

    .venv/bin/python bench/ingest.py [--sizes 1024,4096] [--duration S] [--repeat R]
        [--targets bare,interval,always,jetstream] [--refine N] [--pin split|none]
        [--max-rate R] [--recorder-src DIR] [--baseline-src DIR] [--dir DIR] [--json]
        [--profile RATE]

One nats-server on loopback (JetStream on, `sync_interval: always`, store on the real disk) and
one publisher process (nats-py) that offers MeshSync-like ADDED Pod envelopes at a paced rate in
steps. Each target is measured alone, in a process of its own:

  bare       a nats-py subscriber whose callback only counts (the ceiling for a Python consumer)
  interval   `recorder run --fsync interval` (the default)
  always     `recorder run --fsync always` (group commit: one fsync per written batch)
  jetstream  no client at all: a file stream on the same subject, server `sync_interval: always`
  baseline   `recorder run --fsync interval` from `--baseline-src DIR` (say, the commit before a
             change), so a change is judged against its parent in the same run

A step publishes `rate x duration` messages, paced against the clock, then flushes (PING/PONG,
so the server has them all). It passes when the target has every message within a grace of
max(0.25 s, 10% of the step) after that flush, plus the fsync interval for `interval` (the
recorder counts a message written once an fsync covers it), and no loss was signalled (recorder: messages
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
import contextlib
import importlib.metadata
import os
import platform
import pstats
import statistics
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from common import (
    Broker,
    Child,
    cpu_split,
    emit,
    exit_status,
    log,
    parse_sizes,
    pinned,
    scratch_dir,
    size_label,
)
from ingest_children import PENDING_BYTES, PENDING_MSGS, publisher_main
from ingest_report import checks, figures, report
from ingest_search import LABELS, MIN_RATE, Search, describe_step, run_step, search
from ingest_targets import RecorderTarget, recorder_env, start_target

TARGETS = ("bare", "interval", "always", "jetstream", "baseline")


def measure(base: Path, broker: Broker, publisher: Child, args: argparse.Namespace) -> list[Search]:
    results: list[Search] = []
    previous: dict[tuple[str, int], list[float]] = {}
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
                    target = start_target(name, broker, base, args.recorder_src, args.baseline_src)
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
    return results


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


def parse_targets(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names or any(name not in TARGETS for name in names):
        raise ValueError(text)
    return names


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", type=parse_sizes, default=[1024, 4096], help="payload bytes")
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per step")
    parser.add_argument("--repeat", type=int, default=2, help="searches per target and size")
    parser.add_argument("--refine", type=int, default=3, help="bisection steps per search")
    parser.add_argument(
        "--targets", type=parse_targets, default=list(TARGETS[:-1]), help="comma-separated subset"
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
        "--baseline-src",
        type=Path,
        default=None,
        help="the `baseline` target: `recorder run --fsync interval` from this checkout",
    )
    parser.add_argument(
        "--profile",
        type=float,
        default=None,
        metavar="RATE",
        help="instead: cProfile the recorder (interval, first size) at RATE msgs/s, --repeat steps",
    )
    args = parser.parse_args(argv)
    if ("baseline" in args.targets) != (args.baseline_src is not None):
        parser.error("the baseline target and --baseline-src go together")
    if args.repeat < 1 or args.refine < 0 or args.duration <= 0:
        parser.error("--repeat >= 1, --refine >= 0 and --duration > 0")
    return args


def recorder_location(base: Path, source: Path | None) -> str:
    """Where the `recorder` package the targets run comes from (it may be --recorder-src)."""
    found = subprocess.run(
        [sys.executable, "-c", "import recorder; print(recorder.__file__)"],
        capture_output=True,
        text=True,
        env=recorder_env(source),
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
        "queue_max_messages": PENDING_MSGS,
        "queue_max_bytes": PENDING_BYTES,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.monotonic()
    with scratch_dir("ingest", args.dir) as base, contextlib.ExitStack() as running:
        broker = Broker(base)
        running.callback(broker.stop)
        with pinned(cpu_split(args.pin)[0]):
            broker.start()
        if not broker.sync_always():
            raise RuntimeError("nats-server did not take `sync_interval: always`")
        with pinned(cpu_split(args.pin)[0]):
            publisher = Child(publisher_main, broker.url)
        running.callback(publisher.stop)
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
    figs = figures(results, args)
    outcome = checks(figs, results, args)
    document = {
        "environment": env,
        "figures": [{**asdict(f), "median": f.median} for f in figs],
        "checks": [{"passed": v, "detail": d} for v, d in outcome],
        "searches": [asdict(r) for r in results],
    }
    report_lines = [
        *report(figs, outcome, results, args),
        f"total {time.monotonic() - began:.0f} s",
    ]
    emit(report_lines, document if args.json else None)
    return exit_status(passed for passed, _ in outcome)


if __name__ == "__main__":
    sys.exit(main())
