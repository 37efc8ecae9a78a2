"""`journal_write.py --baseline-src DIR`: the same benchmark from two source trees, in one run.

Each round runs the benchmark once (one repeat) in a child process per tree, alternating which
goes first, with `recorder` imported from that tree (PYTHONPATH); the table gives each tree's
median ratio to plain write() and their quotient, so a change is judged against its parent on
the same machine at the same time. The ratio, not records/s, is compared: the machine is shared
and its speed drifts between runs, while both sides of a ratio drift together.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from common import emit, exit_status, log, size_label, table, verdict

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).with_name("journal_write.py")
# Below this quotient the change made the write path slower than noise explains.
NO_WORSE = 0.95
# Process CPU time per record: steadier than wall-clock ratios when other jobs share the cores.
CPU = ("cpu_us_per_record",)


def child(source: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One repeat of the benchmark with `recorder` from `source`; its JSON document."""
    argv = [sys.executable, str(SCRIPT), "--json", "--repeat", "1"]
    argv += ["--records", str(args.records), "--batch", str(args.batch)]
    argv += ["--sizes", ",".join(map(str, args.sizes))]
    if args.dir is not None:
        argv += ["--dir", str(args.dir)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(source), str(SCRIPT.parent)])}
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if not result.stdout.strip():
        raise SystemExit(f"journal_write.py from {source} failed:\n{result.stderr}")
    document: dict[str, Any] = json.loads(result.stdout)
    used = Path(document["environment"]["recorder_src"]).resolve()
    if used != source:
        raise SystemExit(f"the child imported recorder from {used}, not {source}")
    return document


def medians(documents: list[dict[str, Any]], figure: str) -> dict[tuple[int, str], float]:
    """Median of a figure per (payload size, policy) over the rounds' runs."""
    collected: dict[tuple[int, str], list[float]] = {}
    for document in documents:
        for result in document["results"]:
            key = (int(result["payload_size"]), str(result["policy"]))
            values = [run[figure] for run in result["runs"]] if figure in CPU else []
            collected.setdefault(key, []).extend(values or [float(result[figure])])
    return {key: float(statistics.median(values)) for key, values in collected.items()}


def compare(args: argparse.Namespace) -> int:
    trees = {"baseline": args.baseline_src.resolve(), "this tree": ROOT}
    documents: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
    for round_ in range(args.repeat):
        order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
        for name in order:
            documents[name].append(child(trees[name], args))
        log(f"  round {round_ + 1}/{args.repeat} done")
    before, after = (medians(documents[name], "ratio_vs_write") for name in trees)
    cpu_before, cpu_after = (medians(documents[name], CPU[0]) for name in trees)
    rows, checks = [], []
    for key in sorted(after):
        if key[1] == "write()":
            continue
        quotient = after[key] / before[key]
        checks.append(quotient >= NO_WORSE)
        rows.append(
            [
                size_label(key[0]),
                key[1],
                f"{before[key]:.3f}",
                f"{after[key]:.3f}",
                f"{quotient:.3f}",
                verdict(quotient >= NO_WORSE),
                f"{cpu_before[key]:.2f}",
                f"{cpu_after[key]:.2f}",
            ]
        )
    columns = [
        ("payload", ">7"),
        ("policy", "<8"),
        ("baseline vs write", ">17"),
        ("this tree vs write", ">18"),
        ("this/baseline", ">13"),
        ("", "<4"),
        ("CPU us/rec baseline", ">19"),
        ("this tree", ">9"),
    ]
    report = [
        f"baseline: {trees['baseline']}; this tree: {trees['this tree']}; "
        f"{args.repeat} alternating rounds of {args.records:,} records, medians",
        *table(columns, rows),
        f"PASS when this/baseline >= {NO_WORSE} (the ratio to write() is no worse, within noise)",
    ]
    document = {
        "baseline_src": str(trees["baseline"]),
        "rows": [dict(zip([c[0] for c in columns], row, strict=True)) for row in rows],
        "rounds": documents,
    }
    emit(report, document if args.json else None)
    return exit_status(checks)
