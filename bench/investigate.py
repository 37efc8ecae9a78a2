"""Investigation speed next to the dedup pass on the same journal (issue 15).

    .venv/bin/python bench/investigate.py [--events N] [--live N] [--clusters C] [--repeat R]
        [--seed S] [--json] [--keep]

bench/compact.py's simulated journal (generated first, not counted), then, R times interleaved
with the best run of each counting (the machine is shared):

- dedup:   `Compactor.feed_many` over the journal with markers: the baseline, as in compact.py
- stats:   `journal_stats` (decodes every payload, counts, rates, gaps)
- diff:    `diff_states` from a third of the way in to the end (one pass, two states)
- tail:    `last_items` with -n 20 (seconds; reads only the newest segments)
- history: `object_history` of the busiest Deployment (seconds; substring test before decoding)

Targets: stats and diff events/s >= 50% of dedup's; `tail -n 20` under a second. Exits 1 when a
target fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from common import emit, exit_status, quiet_logs, scratch_dir, table, verdict
from compact import generate, phase_dedup

TARGET_RATIO = 0.50
TARGET_TAIL_S = 1.0


def run_stats(journal: Path) -> dict[str, Any]:
    from recorder.investigate.stats import journal_stats

    started = time.perf_counter()
    result = journal_stats(journal)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "events_per_s": result.messages / seconds, "gaps": len(result.gaps)}


def run_diff(journal: Path, messages: int) -> dict[str, Any]:
    from recorder.compact.diff import Point, diff_states

    started = time.perf_counter()
    result = diff_states(journal, Point(seq=messages // 3), Point())
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "events_per_s": messages / seconds,
        "added": len(result.added),
        "deleted": len(result.deleted),
        "changed": len(result.changed),
    }


def run_tail(journal: Path) -> dict[str, Any]:
    from recorder.investigate.tail import TailRequest, last_items

    started = time.perf_counter()
    items, _last = last_items(TailRequest(journal, 20))
    return {"seconds": time.perf_counter() - started, "items": len(items)}


def run_history(journal: Path) -> dict[str, Any]:
    from recorder.investigate.events import EventFilter
    from recorder.investigate.history import ObjectSelector, object_history
    from recorder.investigate.tail import TailRequest, last_items

    # The newest Deployment event names an object with a history to show.
    items, _ = last_items(TailRequest(journal, 1, objects=EventFilter(kinds=("Deployment",))))
    event = items[0].event  # type: ignore[union-attr]
    selector = ObjectSelector(event.kind, event.name, event.namespace, event.cluster_id)
    started = time.perf_counter()
    lives = object_history(journal, selector, lambda doc: json.dumps(doc, indent=1))
    return {
        "seconds": time.perf_counter() - started,
        "versions": sum(len(life.versions) for life in lives),
    }


def report(results: dict[str, Any]) -> tuple[list[str], list[bool | None]]:
    dedup, stats, diff = results["dedup"], results["stats"], results["diff"]
    tail, history = results["tail"], results["history"]
    gen = results["generate"]
    lines = [
        f"journal: {gen['events']:,} messages, {gen['journal_mb']:.0f} MB, "
        f"{gen['live_objects']:,} live objects (generated in {gen['seconds']:.0f} s, not counted)",
        "",
        *table(
            [("pass", "<8"), ("seconds", ">8"), ("events/s", ">10"), ("vs dedup", ">9")],
            [
                [name, f"{p['seconds']:.2f}", f"{p['events_per_s']:,.0f}", f"{ratio:.2f}"]
                for name, p, ratio in (
                    ("dedup", dedup, 1.0),
                    ("stats", stats, stats["events_per_s"] / dedup["events_per_s"]),
                    ("diff", diff, diff["events_per_s"] / dedup["events_per_s"]),
                )
            ],
        ),
        "",
        f"tail -n 20: {tail['seconds']:.3f} s; history of one Deployment "
        f"({history['versions']} versions): {history['seconds']:.2f} s",
    ]
    outcomes: list[bool | None] = []
    for name in ("stats", "diff"):
        ratio = results[name]["events_per_s"] / dedup["events_per_s"]
        passed = ratio >= TARGET_RATIO
        outcomes.append(passed)
        lines.append(
            f"{name} events/s >= {TARGET_RATIO:.0%} of dedup's: {ratio:.2f} {verdict(passed)}"
        )
    passed = tail["seconds"] < TARGET_TAIL_S
    outcomes.append(passed)
    lines.append(
        f"tail -n 20 under {TARGET_TAIL_S:.0f} s: {tail['seconds']:.3f} s {verdict(passed)}"
    )
    return lines, outcomes


def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return min(runs, key=lambda run: run["seconds"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--live", type=int, default=50_000)
    parser.add_argument("--clusters", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the journal directory")
    args = parser.parse_args()
    quiet_logs()
    with scratch_dir("investigate", keep=args.keep) as workdir:
        journal = workdir / "journal"
        print("generating the journal ...", file=sys.stderr)
        results: dict[str, Any] = {
            "generate": generate(journal, args.events, args.live, args.clusters, args.seed)
        }
        runs: dict[str, list[dict[str, Any]]] = {"dedup": [], "stats": [], "diff": []}
        for round_ in range(args.repeat):
            print(f"round {round_ + 1} of {args.repeat} ...", file=sys.stderr)
            runs["dedup"].append(phase_dedup(journal, workdir))
            runs["stats"].append(run_stats(journal))
            runs["diff"].append(run_diff(journal, args.events))
        results |= {name: best(found) for name, found in runs.items()}
        results["tail"] = best([run_tail(journal) for _ in range(args.repeat)])
        results["history"] = run_history(journal)
    lines, outcomes = report(results)
    emit(lines, results if args.json else None)
    return exit_status(outcomes)


if __name__ == "__main__":
    sys.exit(main())
