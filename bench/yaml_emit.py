"""The YAML emitters alone: the C extension next to the Python reference and orjson (issue 14).

    .venv/bin/python bench/yaml_emit.py [--events N] [--repeat R] [--json]

The manifests of a simulated MeshSync (recorder.demo.simulator through the Compactor, as
bench/compact.py builds them) are made once; then each emitter writes every one of them, R times
in a rotating order so that a burst of load on the shared machine hits each alike, best run
counting:

  c       recorder.compact._yamlemit.dump: what `to_yaml` uses where the extension is built
  python  YamlEmitter.dump(...).encode(): the reference, and the fallback without a compiler
  json    orjson.dumps with the JSON snapshot's options (indent 2, sorted keys), for scale

Targets: the C output is byte for byte the Python output for every document, and the C emitter
is at least 5x as fast as the Python one. Exits 1 when a target fails.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from typing import Any

from common import emit, exit_status, quiet_logs, table, verdict
from compact import simulator_options

TARGET_SPEEDUP = 5.0
MB = 1e6


def manifests(events: int, seed: int) -> list[dict[str, Any]]:
    from recorder.compact.state import compact
    from recorder.demo.simulator import Simulator

    options = simulator_options(events, events // 2, 2)
    state, _ = compact(Simulator(seed, **options).messages(events))
    return [obj.manifest() for obj in state.objects()]


def emitters() -> dict[str, Callable[[Any], bytes | None]]:
    import orjson

    from recorder.compact.snapshot import c_emitter
    from recorder.compact.yaml_emit import YamlEmitter

    c_dump = c_emitter()
    if c_dump is None:
        sys.exit("the C emitter is not built here (pip install -e . with a C compiler)")
    python = YamlEmitter()
    option = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
    return {
        "c": lambda document: c_dump(document, False),
        "python": lambda document: python.dump(document).encode(),
        "json": lambda document: orjson.dumps(document, option=option),
    }


def timed(emit: Callable[[Any], bytes | None], documents: list[dict[str, Any]]) -> dict[str, Any]:
    started = time.perf_counter()
    size = 0
    for document in documents:
        size += len(emit(document) or b"")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "mb": size / MB, "mb_per_s": size / MB / seconds}


def report(results: dict[str, Any], events: int, repeat: int) -> list[str]:
    best, documents = results["best"], results["documents"]
    columns = [("emitter", "<8"), ("best s", ">7"), ("MB", ">6"), ("MB/s", ">7"), ("docs/s", ">9")]
    rows = [
        [
            name,
            f"{run['seconds']:.3f}",
            f"{run['mb']:.1f}",
            f"{run['mb_per_s']:.0f}",
            f"{documents / run['seconds']:,.0f}",
        ]
        for name, run in best.items()
    ]
    c, orjson_run = best["c"], best["json"]
    passed = results["passed"]
    return [
        f"{documents:,} manifests from {events:,} simulated events; best of {repeat}",
        *table(columns, rows, sep=" ", rule=False),
        f"{verdict(passed['identical'])}: the C emitter's bytes equal the Python emitter's "
        "for every document",
        f"{verdict(passed['speedup'])}: C / Python speed = {results['speedup']:.1f}x "
        f"(target >= {TARGET_SPEEDUP:.0f}x)",
        f"info: C YAML / orjson JSON: {c['mb_per_s'] / orjson_run['mb_per_s']:.0%} in MB/s, "
        f"{orjson_run['seconds'] / c['seconds']:.0%} in documents/s",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    quiet_logs("error")
    documents = manifests(args.events, args.seed)
    gc.collect()
    gc.freeze()  # the emitters make no containers: no collection should walk the documents
    writers = emitters()
    identical = all(writers["c"](doc) == writers["python"](doc) for doc in documents)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in writers}
    names = list(writers)
    for attempt in range(args.repeat):
        for name in names[attempt % len(names) :] + names[: attempt % len(names)]:
            runs[name].append(timed(writers[name], documents))
    best = {name: min(results, key=lambda run: run["seconds"]) for name, results in runs.items()}
    speedup = best["python"]["seconds"] / best["c"]["seconds"]
    passed = {"identical": identical, "speedup": speedup >= TARGET_SPEEDUP}
    results = {"documents": len(documents), "best": best, "speedup": speedup, "passed": passed}
    emit(report(results, args.events, args.repeat), results if args.json else None)
    return exit_status(passed.values())


if __name__ == "__main__":
    sys.exit(main())
