"""Compaction speed and memory next to the naive decode floor, and snapshot writing (issue 4).

    .venv/bin/python bench/compact.py [--events N] [--live N] [--clusters C] [--repeat R]
        [--seed S] [--json] [--keep]

A simulated MeshSync (recorder.demo.simulator: real wire format, ~3.8 KB pods, kubectl-applied
Deployments, ADDED / MODIFIED / DELETED churn, resync-discovery re-lists and informer-store dumps)
fills a journal in a temporary directory under the current one (real disk). Generating it is timed
on its own and not counted. Then every phase runs in a fresh Python process, so that its peak RSS
(`ru_maxrss`) is its own:

- read:     iterate the journal's records (the I/O and framing floor)
- decode:   the same reader and `orjson.loads` of every payload, nothing kept (for reference)
- baseline: the same reader, `orjson.loads` of every payload and the parsed object stored in a
            dict keyed by (cluster_id, uid): the naive decode floor the issue compares against
- dedup:    `Compactor.feed_many` over the same reader with markers, as `recorder compact` does
- yaml:     dedup, then the YAML snapshot written as `recorder compact` writes it (one file per
            cluster, `iter_yaml` into `atomic_file`); the write is timed apart from the dedup
- json:     the same with the JSON `List`

baseline and dedup, then yaml and json, run R times, interleaved, and the best run of each counts
(the machine is shared: one run of a write phase can take 40 % longer than the next). MB are
10**6 bytes of payload. Targets: dedup events/s >= 60% of the baseline's, the peak RSS of the yaml
phase (a whole `compact --format yaml`: dedup plus writing) < 4x the size of the YAML snapshot it
writes, and YAML writing >= 50% of JSON writing's MB/s (each counts the bytes of its own snapshot;
objects/s, and the same ratio in CPU time, are printed beside it). Exits 1 when a target fails.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import exit_status, peak_rss_mb, quiet_logs, scratch_dir, table, verdict

MB = 1_000_000
TARGET_RATIO = 0.60
TARGET_RSS_FACTOR = 4.0
TARGET_YAML_SPEED = 0.50  # YAML snapshot MB/s over JSON's, both written in this run
OBJECTS_PER_APP_BESIDES_PODS = 4  # ConfigMap, Deployment, ReplicaSet, Service
PER_NAMESPACE = 2  # the Namespace and its Secret
APPS_PER_NAMESPACE = 20
PODS_PER_APP = 3
ENVELOPE = b'{"ObjectType":"meshsync-data","EventType":"'


# -- generating the journal (a process of its own, not counted) -----------------------------


def simulator_options(events: int, live: int, clusters: int) -> dict[str, Any]:
    """Simulator sizes for about `live` live objects and a few re-lists over `events`."""
    per_cluster = live / clusters
    per_namespace = PER_NAMESPACE + APPS_PER_NAMESPACE * (
        OBJECTS_PER_APP_BESIDES_PODS + PODS_PER_APP
    )
    return {
        "clusters": clusters,
        "namespaces": max(1, round((per_cluster - 1) / per_namespace)),
        "apps_per_namespace": APPS_PER_NAMESPACE,
        "pods_per_app": PODS_PER_APP,
        # In churn steps (~1.4 events each): about 4 resync-discovery re-lists and 2 dumps.
        "resync_every": max(500, events // 8),
        "store_every": max(750, events // 5),
    }


def generate(directory: Path, events: int, live: int, clusters: int, seed: int) -> dict[str, Any]:
    """Fill `directory` with the simulated journal; returns what it holds and how long it took."""
    from recorder.demo.simulator import Simulator
    from recorder.journal.options import FsyncPolicy, WriterOptions
    from recorder.journal.record import Incoming
    from recorder.journal.writer import JournalWriter
    from recorder.meshsync import REQUEST_SUBJECT, STORE_SUBJECT

    started = time.perf_counter()
    options = simulator_options(events, live, clusters)
    sim = Simulator(seed, **options)
    writer = JournalWriter(directory, WriterOptions(fsync=FsyncPolicy.NEVER))
    writer.open()
    mix: Counter[str] = Counter()
    payload_bytes = 0
    batch = []
    for message in sim.events(events):
        payload = message.payload
        payload_bytes += len(payload)
        if message.subject == STORE_SUBJECT:
            mix["dump replies"] += 1
        elif message.subject == REQUEST_SUBJECT:
            mix["re-list requests"] += 1
        elif payload.startswith(ENVELOPE):
            mix[payload[len(ENVELOPE) : payload.index(b'"', len(ENVELOPE))].decode()] += 1
        else:
            mix["other"] += 1
        batch.append(Incoming(message.time_ns, message.subject, "", None, payload, None))
        if len(batch) == 1000:
            writer.append_messages(batch)
            batch = []
    writer.append_messages(batch)
    writer.close()
    journal_bytes = sum(path.stat().st_size for path in directory.glob("*.seg"))
    return {
        "seconds": time.perf_counter() - started,
        "events": events,
        "live_objects": len(sim.truth()),
        "payload_mb": payload_bytes / MB,
        "mean_payload_bytes": payload_bytes / events,
        "journal_mb": journal_bytes / MB,
        "mix": dict(mix.most_common()),
        "simulator": options,
    }


# -- phases (each in its own process) -------------------------------------------------------


def phase_read(journal: Path, _out: Path) -> dict[str, Any]:
    from recorder.journal.reader import JournalReader
    from recorder.journal.record import Message

    base = peak_rss_mb()
    started = time.perf_counter()
    events = payload = 0
    for _, record in JournalReader(journal, markers=True):
        if type(record) is Message:
            events += 1
            payload += len(record.payload)
    return _rate(started, events, payload, base)


def phase_baseline(journal: Path, _out: Path) -> dict[str, Any]:
    import orjson

    from recorder.journal.reader import JournalReader

    base = peak_rss_mb()
    started = time.perf_counter()
    loads = orjson.loads
    state: dict[tuple[Any, Any], Any] = {}
    events = payload = 0
    for _, record in JournalReader(journal):  # without markers: messages only
        events += 1
        payload += len(record.payload)
        doc = loads(record.payload)
        obj = doc.get("Object")
        for item in obj if type(obj) is list else (obj,):
            if type(item) is dict:
                state[(item.get("cluster_id"), item["metadata"]["uid"])] = item
    result = _rate(started, events, payload, base)
    result["objects"] = len(state)
    return result


def phase_decode(journal: Path, _out: Path) -> dict[str, Any]:
    import orjson

    from recorder.journal.reader import JournalReader

    base = peak_rss_mb()
    started = time.perf_counter()
    loads = orjson.loads
    events = payload = 0
    for _, record in JournalReader(journal):
        events += 1
        payload += len(record.payload)
        loads(record.payload)
    return _rate(started, events, payload, base)


def phase_dedup(journal: Path, _out: Path) -> dict[str, Any]:
    from recorder.compact.state import Compactor
    from recorder.journal.reader import JournalReader
    from recorder.journal.record import Message

    base = peak_rss_mb()
    payload = 0

    def records() -> Any:
        nonlocal payload
        for _, record in JournalReader(journal, markers=True):
            if type(record) is Message:
                payload += len(record.payload)
            yield record

    started = time.perf_counter()
    compactor = Compactor()
    compactor.feed_many(records())
    stats = compactor.stats()
    result = _rate(started, stats.messages, payload, base)
    result |= {
        "objects": stats.objects,
        "tombstones": stats.tombstones,
        "object_events": stats.object_events,
        "applied": stats.applied,
        "duplicates": stats.duplicates,
        "deleted": stats.deleted,
        "undecodable": stats.undecodable,
    }
    return result


def _write_phase(journal: Path, out: Path, fmt: str) -> dict[str, Any]:
    from recorder.compact.snapshot import YAML_EMITTER, iter_json, iter_yaml, snapshot_meta
    from recorder.compact.state import Compactor
    from recorder.fsutil import atomic_file
    from recorder.journal.reader import JournalReader

    base = peak_rss_mb()
    started = time.perf_counter()
    compactor = Compactor()
    compactor.feed_many(record for _, record in JournalReader(journal, markers=True))
    stats = compactor.stats()
    dedup_seconds = time.perf_counter() - started
    dedup_rss = peak_rss_mb()
    render = iter_yaml if fmt == "yaml" else iter_json
    written = objects = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    # As recorder.compact.run writes it: one file per cluster, streamed into an atomic file.
    for cluster in compactor.clusters():
        live = compactor.objects(cluster)
        meta = snapshot_meta(live, stats, journal=str(journal), created_ns=time.time_ns())
        path = out / f"snapshot.{cluster}.{fmt}"
        with atomic_file(path) as handle:
            for chunk in render(live, meta):
                handle.write(chunk)
        written += path.stat().st_size
        objects += len(live)
        path.unlink()
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    return {
        "dedup_seconds": dedup_seconds,
        "dedup_rss_mb": dedup_rss,
        "write_seconds": seconds,
        "snapshot_mb": written / MB,
        "write_mb_per_s": written / MB / seconds,
        # CPU time (user + system) moves less than wall time when other processes take the CPU.
        "write_cpu_seconds": cpu_seconds,
        "write_mb_per_cpu_s": written / MB / cpu_seconds,
        "objects": objects,
        "objects_per_s": objects / seconds,
        "rss_mb": peak_rss_mb(),
        "base_rss_mb": base,
        "emitter": YAML_EMITTER if fmt == "yaml" else "orjson",
    }


def _rate(started: float, events: int, payload: int, base_rss: float) -> dict[str, Any]:
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "events": events,
        "events_per_s": events / seconds,
        "mb_per_s": payload / MB / seconds,
        "rss_mb": peak_rss_mb(),
        "base_rss_mb": base_rss,  # the interpreter and imports, before the phase started
    }


PHASES: dict[str, Callable[[Path, Path], dict[str, Any]]] = {
    "read": phase_read,
    "baseline": phase_baseline,
    "decode": phase_decode,
    "dedup": phase_dedup,
    "yaml": functools.partial(_write_phase, fmt="yaml"),
    "json": functools.partial(_write_phase, fmt="json"),
}


def run_phase(name: str, journal: Path, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One phase in a fresh interpreter; its JSON result comes back on stdout."""
    # ru_maxrss survives execve (Linux keeps the larger of the old and new peaks), so the parent
    # stays small: it imports no recorder code and generates the journal in a child of its own.
    command = [sys.executable, __file__, "--phase", name, "--dir", str(journal), "--out", str(out)]
    command += ["--events", str(args.events), "--live", str(args.live)]
    command += ["--clusters", str(args.clusters), "--seed", str(args.seed)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"phase {name} failed:\n{result.stderr}")
    return dict(json.loads(result.stdout.splitlines()[-1]))


# -- report ---------------------------------------------------------------------------------


def report(results: dict[str, Any]) -> list[str]:
    gen = results["generate"]
    phases = results["phases"]
    lines = [
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs",
        f"journal: {gen['events']:,} events, {gen['payload_mb']:.0f} MB payload "
        f"(mean {gen['mean_payload_bytes']:.0f} B), {gen['journal_mb']:.0f} MB on disk, "
        f"{gen['live_objects']:,} live objects at the end; generated in {gen['seconds']:.1f} s "
        "(not counted)",
        "mix: " + ", ".join(f"{kind} {count:,}" for kind, count in gen["mix"].items()),
        "",
    ]
    columns = [("phase", "<10"), ("seconds", ">8"), ("events/s", ">10"), ("MB/s", ">7")]
    rows = [
        [
            name,
            f"{p['seconds']:.2f}",
            f"{p['events_per_s']:,.0f}",
            f"{p['mb_per_s']:.1f}",
            f"{p['rss_mb']:.0f}",
        ]
        for name, p in ((name, phases[name]) for name in ("read", "decode", "baseline", "dedup"))
    ]
    lines += table([*columns, ("peak RSS MB", ">12")], rows, sep=" ", rule=False)
    lines.append(
        f"(interpreter and imports alone: {phases['dedup']['base_rss_mb']:.0f} MB; "
        f"dedup kept {phases['dedup']['objects']:,} objects and "
        f"{phases['dedup']['tombstones']:,} tombstones from "
        f"{phases['dedup']['object_events']:,} object events)"
    )
    columns = [("snapshot", "<10"), ("write s", ">8"), ("MB", ">7"), ("MB/s", ">7")]
    columns += [("objects/s", ">10"), ("dedup s", ">8"), ("peak RSS MB", ">12")]
    rows = [
        [
            name,
            f"{p['write_seconds']:.2f}",
            f"{p['snapshot_mb']:.1f}",
            f"{p['write_mb_per_s']:.1f}",
            f"{p['objects_per_s']:,.0f}",
            f"{p['dedup_seconds']:.2f}",
            f"{p['rss_mb']:.0f}",
        ]
        for name, p in ((name, phases[name]) for name in ("yaml", "json"))
    ]
    lines += ["", *table(columns, rows, sep=" ", rule=False)]
    ratio, factor = results["ratio"], results["rss_factor"]
    yaml_phase = phases["yaml"]
    lines += [
        "",
        f"{results['verdicts']['ratio']}: dedup events/s / baseline events/s = {ratio:.0%} "
        f"(target >= {TARGET_RATIO:.0%}; best of {results['repeat']} each)",
        f"info: dedup events/s / decode-only events/s = {results['decode_ratio']:.0%} (orjson.loads "
        "with nothing kept: the baseline also pays for keeping every parsed object)",
        f"{results['verdicts']['rss']}: peak RSS of dedup + YAML writing / YAML snapshot size = "
        f"{yaml_phase['rss_mb']:.0f} MB / {yaml_phase['snapshot_mb']:.0f} MB = {factor:.2f}x "
        f"(target < {TARGET_RSS_FACTOR:.0f}x; dedup alone peaks at "
        f"{phases['dedup']['rss_mb']:.0f} MB)",
    ]
    lines.append(
        f"{results['verdicts']['yaml_speed']}: YAML writing MB/s / JSON writing MB/s = "
        f"{yaml_phase['write_mb_per_s']:.1f} / {phases['json']['write_mb_per_s']:.1f} = "
        f"{results['yaml_speed']:.0%} (target >= {TARGET_YAML_SPEED:.0%}; in objects/s "
        f"{results['yaml_objects_speed']:.0%}; best of {results['repeat']} each; "
        f"{yaml_phase['emitter']} YAML emitter)"
    )
    lines.append(
        f"info: in CPU time, YAML writing MB/s / JSON writing MB/s = "
        f"{yaml_phase['write_mb_per_cpu_s']:.1f} / {phases['json']['write_mb_per_cpu_s']:.1f} = "
        f"{results['yaml_cpu_speed']:.0%} (CPU seconds {yaml_phase['write_cpu_seconds']:.2f} / "
        f"{phases['json']['write_cpu_seconds']:.2f}: less disturbed by a busy machine)"
    )
    dominant = max(
        ("dedup", phases["dedup"]["seconds"]),
        ("YAML writing", yaml_phase["write_seconds"]),
        key=lambda pair: pair[1],
    )
    lines.append(
        f"note: a YAML compaction spends {phases['dedup']['seconds']:.1f} s in dedup and "
        f"{yaml_phase['write_seconds']:.1f} s writing YAML; {dominant[0]} dominates"
    )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--live", type=int, default=50_000)
    parser.add_argument("--clusters", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each timed phase")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the journal directory")
    parser.add_argument("--phase", choices=[*PHASES, "generate"], help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "generate":
        quiet_logs("error")
        result = generate(args.dir, args.events, args.live, args.clusters, args.seed)
        print(json.dumps(result))
        return 0
    if args.phase:
        print(json.dumps(PHASES[args.phase](args.dir, args.out)))
        return 0

    with scratch_dir("compact", keep=args.keep) as workdir:
        journal, out = workdir / "journal", workdir / "out"
        out.mkdir()
        print(f"generating {args.events:,} events ...", file=sys.stderr)
        results: dict[str, Any] = {
            "generate": run_phase("generate", journal, out, args),
            "repeat": args.repeat,
        }
        phases: dict[str, Any] = {}
        timed = ["baseline", "dedup", "yaml", "json"]
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in timed}
        order = ["read", "decode"] + timed * args.repeat
        for name in order:
            print(f"phase {name} ...", file=sys.stderr)
            result = run_phase(name, journal, out, args)
            if name in runs:
                runs[name].append(result)
            else:
                phases[name] = result
    for name, attempts in runs.items():
        timed = "write_seconds" if name in ("yaml", "json") else "seconds"
        phases[name] = min(attempts, key=lambda run: float(run[timed]))
        phases[name]["runs_seconds"] = [run[timed] for run in attempts]
    results["phases"] = phases
    results["ratio"] = phases["dedup"]["events_per_s"] / phases["baseline"]["events_per_s"]
    results["decode_ratio"] = phases["dedup"]["events_per_s"] / phases["decode"]["events_per_s"]
    results["rss_factor"] = phases["yaml"]["rss_mb"] / phases["yaml"]["snapshot_mb"]
    yaml_phase, json_phase = phases["yaml"], phases["json"]
    results["yaml_speed"] = yaml_phase["write_mb_per_s"] / json_phase["write_mb_per_s"]
    results["yaml_objects_speed"] = yaml_phase["objects_per_s"] / json_phase["objects_per_s"]
    results["yaml_cpu_speed"] = yaml_phase["write_mb_per_cpu_s"] / json_phase["write_mb_per_cpu_s"]
    passed = {
        "ratio": results["ratio"] >= TARGET_RATIO,
        "rss": results["rss_factor"] < TARGET_RSS_FACTOR,
        "yaml_speed": results["yaml_speed"] >= TARGET_YAML_SPEED,
    }
    results["verdicts"] = {name: verdict(ok) for name, ok in passed.items()}
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print("\n".join(report(results)))
    return exit_status(passed.values())


if __name__ == "__main__":
    sys.exit(main())
