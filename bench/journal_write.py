"""Journal append throughput next to a plain buffered write() of the same bytes (issue 2).

    .venv/bin/python bench/journal_write.py [--records N] [--repeat R] [--batch B]
        [--sizes 256,1024,4096] [--dir DIR] [--json] [--profile] [--baseline-src DIR]

For each payload size, each fsync policy appends N messages in batches of B (as the daemon's
writer task hands them over) to a fresh journal on the real disk, and a plain buffered
`open(..., "wb")` write loop writes the same frames, encoded once up front, with one final flush
and no fsync. Every configuration runs R times, interleaved in a rotating order, and the table
shows the median with min-max. MB/s counts framed record bytes (10**6 bytes per MB) on both
sides, so the ratio is a ratio of times. Opening and closing the journal are outside the timed
region; rotations (64 MiB segments, each sealed with an fsync) and the policy's own fsyncs are
inside it. A run shorter than the 1 s fsync interval sees no interval fsync (the fsyncs column
shows it): raise --records (e.g. --sizes 1024 --records 2000000) to measure it sustained.
With --baseline-src DIR (a checkout of the commit before a change), it runs once per tree in
alternating child processes and compares each policy's ratio to write() (journal_write_compare).
Exits 1 when a target fails.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import gc
import os
import platform
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import msgpack
from common import (
    MEMORY_FILESYSTEMS,
    SUBJECT,
    emit,
    exit_status,
    filesystem_of,
    log,
    parse_sizes,
    quiet_logs,
    scratch_dir,
    size_label,
    spread,
    summary,
    table,
    verdict,
)

from recorder.journal.options import FsyncPolicy, WriterOptions
from recorder.journal.record import Incoming, encode_messages
from recorder.journal.writer import JournalWriter

PAYLOAD_SIZES = (256, 1024, 4096)
POLICIES = (FsyncPolicy.ALWAYS, FsyncPolicy.INTERVAL, FsyncPolicy.NEVER)
BASELINE = "write()"
PAYLOAD_POOL = 64  # distinct payloads cycled through, so the workload is not one object
# The first message of a fresh journal follows its "started" marker (sequence 1).
FIRST_MESSAGE_SEQ = 2
STATS = ("records_per_s", "mb_per_s", "seconds", "cpu_us_per_record")

# Targets from issue 2.
TARGET_INTERVAL_1K_RECORDS_PER_S = 400_000
TARGET_4K_RATIO = 0.40


@dataclass(frozen=True, slots=True)
class Workload:
    payload_size: int
    batches: list[list[Incoming]]
    frames: list[bytes]  # the same messages encoded once, for the baseline
    frame_bytes: int

    @property
    def records(self) -> int:
        return len(self.frames)


@dataclass(frozen=True, slots=True)
class Run:
    seconds: float
    records_per_s: float
    mb_per_s: float
    cpu_us_per_record: float  # process CPU time (user + system) over the timed region
    fsyncs: int | None = None  # seen by the writer's fsync_observer while timed
    batches: int | None = None
    rotations: int | None = None  # each seals a segment with an fsync of its own
    close_seconds: float | None = None  # stop marker, seal and its fsync

    @classmethod
    def timed(cls, workload: Workload, seconds: float, cpu_seconds: float, **counts: Any) -> Run:
        return cls(
            seconds,
            workload.records / seconds,
            workload.frame_bytes / seconds / 1e6,
            cpu_seconds / workload.records * 1e6,
            **counts,
        )


@dataclass(slots=True)
class Result:
    payload_size: int
    policy: str
    records: int
    frame_bytes: int
    runs: list[Run] = field(default_factory=list)

    def values(self, attr: str) -> list[float]:
        return [getattr(run, attr) for run in self.runs]

    def median(self, attr: str) -> float:
        return float(statistics.median(self.values(attr)))


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    passed: bool | None  # None: skipped
    detail: str


# -- workload -------------------------------------------------------------------------------


def make_payloads(size: int) -> list[bytes]:
    """JSON-looking ASCII payloads of exactly `size` bytes (MeshSync sends JSON)."""
    payloads = []
    for index in range(PAYLOAD_POOL):
        head = b'{"kind":"Pod","i":%d,"data":"' % index
        filler = base64.b64encode(os.urandom(size))[: max(0, size - len(head) - 2)]
        payloads.append((head + filler + b'"}')[:size].ljust(size, b" "))
    return payloads


def build_workload(payload_size: int, records: int, batch: int) -> Workload:
    payloads = make_payloads(payload_size)
    start = time.time_ns()
    items: list[Incoming] = [
        Incoming(start + index * 1000, SUBJECT, "", None, payloads[index % PAYLOAD_POOL], None)
        for index in range(records)
    ]
    batches = [items[index : index + batch] for index in range(0, records, batch)]
    frames: list[bytes] = []
    for number, chunk in enumerate(batches):
        frames.extend(encode_messages(FIRST_MESSAGE_SEQ + number * batch, chunk))
    return Workload(payload_size, batches, frames, sum(map(len, frames)))


# -- the two sides --------------------------------------------------------------------------


def run_journal(base: Path, workload: Workload, policy: FsyncPolicy) -> Run:
    """Append every batch to a fresh journal; only the appends are timed."""
    directory = Path(tempfile.mkdtemp(prefix=f"journal-{policy}-", dir=base))
    fsyncs = 0

    def observe(_seconds: float) -> None:
        nonlocal fsyncs
        fsyncs += 1

    writer = JournalWriter(directory, WriterOptions(fsync=policy), fsync_observer=observe)
    try:
        writer.open()
        fsyncs = 0  # the "started" marker's own fsync under `always` is not an append batch
        first_segment = writer.active_segment
        append = writer.append_messages
        cpu_started = time.process_time()
        started = time.perf_counter()
        for chunk in workload.batches:
            append(chunk)
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
        timed_fsyncs = fsyncs
        last_segment = writer.active_segment
        rotations = (
            last_segment.number - first_segment.number if first_segment and last_segment else 0
        )
        started = time.perf_counter()
        writer.close()
        close_seconds = time.perf_counter() - started
    except BaseException:
        if writer.active_segment is not None:
            writer.abandon()  # release the lock and the background thread before cleaning up
        raise
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return Run.timed(
        workload,
        seconds,
        cpu_seconds,
        fsyncs=timed_fsyncs,
        batches=len(workload.batches),
        rotations=rotations,
        close_seconds=close_seconds,
    )


def run_baseline(base: Path, workload: Workload) -> Run:
    """Write the pre-encoded frames with a plain buffered file: a write loop and one flush."""
    path = base / "baseline.bin"
    try:
        with open(path, "wb") as file:
            write = file.write
            cpu_started = time.process_time()
            started = time.perf_counter()
            for frame in workload.frames:
                write(frame)
            file.flush()
            seconds = time.perf_counter() - started
            cpu_seconds = time.process_time() - cpu_started
    finally:
        path.unlink(missing_ok=True)
    return Run.timed(workload, seconds, cpu_seconds)


# -- running and reporting ------------------------------------------------------------------


def measure(base: Path, args: argparse.Namespace) -> list[Result]:
    results: list[Result] = []
    for size in args.sizes:
        workload = build_workload(size, args.records, args.batch)
        by_name = {
            name: Result(size, name, workload.records, workload.frame_bytes)
            for name in (BASELINE, *POLICIES)
        }
        order: list[str] = [BASELINE, *POLICIES]
        for repeat in range(args.repeat):
            # Rotate the order each repeat so no side always runs right after a heavy one.
            shift = repeat % len(order)
            for name in order[shift:] + order[:shift]:
                gc.collect()
                if name == BASELINE:
                    run = run_baseline(base, workload)
                else:
                    run = run_journal(base, workload, FsyncPolicy(name))
                by_name[name].runs.append(run)
            log(f"  {size} B: repeat {repeat + 1}/{args.repeat} done")
        results.extend(by_name.values())
        del workload
    return results


def ratio(results: list[Result], result: Result) -> float:
    baseline = next(
        other
        for other in results
        if other.payload_size == result.payload_size and other.policy == BASELINE
    )
    return result.median("mb_per_s") / baseline.median("mb_per_s")


def result_table(results: list[Result]) -> list[str]:
    columns = [
        ("payload", ">7"),
        ("policy", "<8"),
        ("records/s median [min-max]", ">31"),
        ("MB/s median [min-max]", ">21"),
        ("vs write", ">8"),
        ("CPU us/rec", ">10"),
        ("fsyncs/batches", ">14"),
        ("rotations", ">9"),
    ]
    rows = []
    for result in results:
        if result.policy == BASELINE:
            versus, fsyncs, rotations = "1.00", "-", "-"
        else:
            versus = f"{ratio(results, result):.2f}"
            fsyncs = f"{max(run.fsyncs or 0 for run in result.runs)}/{result.runs[0].batches}"
            rotations = str(max(run.rotations or 0 for run in result.runs))
        rows.append(
            [
                size_label(result.payload_size),
                result.policy,
                spread(result.values("records_per_s"), ",.0f", 9),
                spread(result.values("mb_per_s"), ".0f", 5),
                versus,
                f"{result.median('cpu_us_per_record'):.2f}",
                fsyncs,
                rotations,
            ]
        )
    return table(columns, rows)


def checks(results: list[Result]) -> list[Check]:
    """The issue's targets; a target whose payload size was not run is skipped (passed None)."""

    def find(size: int, policy: str) -> Result | None:
        return next((r for r in results if r.payload_size == size and r.policy == policy), None)

    outcome = []
    interval_1k = find(1024, FsyncPolicy.INTERVAL)
    target = f"target >= {TARGET_INTERVAL_1K_RECORDS_PER_S:,}"
    if interval_1k is None:
        outcome.append(Check("interval_1KiB_records_per_s", None, f"1 KiB not run, {target}"))
    else:
        rate = interval_1k.median("records_per_s")
        outcome.append(
            Check(
                "interval_1KiB_records_per_s",
                rate >= TARGET_INTERVAL_1K_RECORDS_PER_S,
                f"fsync interval, 1 KiB: {rate:,.0f} records/s (median), {target}",
            )
        )
    interval_4k = find(4096, FsyncPolicy.INTERVAL)
    target = f"target >= {TARGET_4K_RATIO:.0%}"
    if interval_4k is None:
        outcome.append(Check("interval_4KiB_vs_write", None, f"4 KiB not run, {target}"))
    else:
        share = ratio(results, interval_4k)
        outcome.append(
            Check(
                "interval_4KiB_vs_write",
                share >= TARGET_4K_RATIO,
                f"fsync interval, 4 KiB: {share:.0%} of plain write()'s MB/s (medians), {target}",
            )
        )
    always = [r for r in results if r.policy == FsyncPolicy.ALWAYS]
    mismatched = [
        f"{size_label(r.payload_size)}: {run.fsyncs} fsyncs for {run.batches} batches"
        f" + {run.rotations} seals"
        for r in always
        for run in r.runs
        if run.fsyncs != (run.batches or 0) + (run.rotations or 0)
    ]
    counts = ", ".join(
        f"{size_label(r.payload_size)} {'/'.join(str(run.fsyncs) for run in r.runs)}"
        f" for {r.runs[0].batches} batches"
        for r in always
    )
    outcome.append(
        Check(
            "always_group_commit",
            not mismatched,
            "fsync always: fsyncs == append batches + segment seals in every run ("
            + ("; ".join(mismatched) if mismatched else counts)
            + ")",
        )
    )
    return outcome


def environment(base: Path, args: argparse.Namespace) -> dict[str, Any]:
    mount, fstype, device = filesystem_of(base)
    return {
        "records": args.records,
        "repeat": args.repeat,
        "batch": args.batch,
        "sizes": args.sizes,
        "directory": str(base),
        "filesystem": {"mount": mount, "type": fstype, "device": device},
        "python": platform.python_version(),
        "recorder_src": str(Path(sys.modules[JournalWriter.__module__].__file__ or "").parents[2]),
        "msgpack": ".".join(map(str, msgpack.version)),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


def profile(base: Path, args: argparse.Namespace) -> None:
    """One 1 KiB `interval` run under cProfile, top functions by own time."""
    workload = build_workload(1024, args.records, args.batch)
    profiler = cProfile.Profile()
    profiler.enable()
    run = run_journal(base, workload, FsyncPolicy.INTERVAL)
    profiler.disable()
    print(
        f"1 KiB interval under cProfile: {run.records_per_s:,.0f} records/s (slowed by profiling)"
    )
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(15)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000, help="messages per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration")
    parser.add_argument("--batch", type=int, default=256, help="messages per append_messages")
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=list(PAYLOAD_SIZES),
        help="payload sizes in bytes, comma-separated (default 256,1024,4096)",
    )
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to put the journals (default: cwd)"
    )
    parser.add_argument("--json", action="store_true", help="JSON results on stdout")
    parser.add_argument("--profile", action="store_true", help="cProfile the 1 KiB interval case")
    parser.add_argument(
        "--baseline-src",
        type=Path,
        default=None,
        help="compare with the recorder in this checkout (ratios to write(), same run)",
    )
    args = parser.parse_args(argv)
    for name in ("records", "repeat", "batch"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.baseline_src is not None:
        from journal_write_compare import compare

        return compare(args)
    quiet_logs()
    with scratch_dir("journal", args.dir) as base:
        env = environment(base, args)
        fs = env["filesystem"]
        log(
            f"journal on {fs['type']} ({fs['device']} at {fs['mount']}): {base}; "
            f"{args.records:,} records x {args.repeat} repeats, batches of {args.batch}"
        )
        if fs["type"] in MEMORY_FILESYSTEMS:
            log(f"WARNING: {base} is in memory ({fs['type']}): fsync costs nothing here")
        if args.profile:
            profile(base, args)
            return 0
        results = measure(base, args)

    outcome = checks(results)
    report = [
        *result_table(results),
        "MB/s = framed record bytes / timed seconds; vs write = MB/s median / write() median;"
        " CPU us/rec = process CPU time (user + sys) per record, median;"
        " fsyncs = seen by fsync_observer (batches and seals); rotations = 64 MiB segments sealed,"
        " each with an fsync of its own",
        *(f"{verdict(check.passed, 'SKIP')} {check.detail}" for check in outcome),
    ]
    document = {
        "environment": env,
        "results": [
            {
                "payload_size": r.payload_size,
                "policy": r.policy,
                "records": r.records,
                "frame_bytes": r.frame_bytes,
                **summary(r.runs, STATS),
                "ratio_vs_write": 1.0 if r.policy == BASELINE else ratio(results, r),
                "runs": [asdict(run) for run in r.runs],
            }
            for r in results
        ],
        "checks": [asdict(check) for check in outcome],
    }
    emit(report, document if args.json else None)
    return exit_status(check.passed for check in outcome)


if __name__ == "__main__":
    sys.exit(main())
