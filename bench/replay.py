"""`recorder replay --speed max` throughput next to a bare nats-py publish loop (issue 5).

    .venv/bin/python bench/replay.py [--count N] [--sizes 1024,4096] [--repeat R] [--json]

One nats-server on loopback (`max_pending` raised so a lagging subscriber is buffered, not cut
off) and one counting nats-py subscriber in a process of its own, which must receive every
message of every run. For each payload size, a journal of N messages (recorded 1 ms apart, which
flat-out replay ignores) is written once, then each repeat runs, in a rotating order:

  bare      a nats-py loop in this process publishing the same payloads from memory to the same
            subject, with a flush (PING/PONG) every 1024 messages and at the end: the baseline
  library   `recorder.replay.run.replay()` called in this process over `journal_batches()`: the
            journal read, the pacer and the publish loop, without process start-up
  cli       the real `recorder replay DIR --speed max` as a subprocess; its steady-state rate is
            taken from its own summary (`elapsed`, publishing only), and its wall time, start-up
            (imports, connect) included, is reported beside it

Rates are messages / seconds until the last flush returned. The table shows medians over the
repeats (the machine is shared and noisy). Target: the steady-state rate (library and cli) at
least 70% of the bare loop's; the start-up-inclusive figure has no target. Exits 1 on a FAIL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats

from recorder.config import NatsConfig
from recorder.demo.embedded import find_nats_server, free_port
from recorder.journal.options import WriterOptions
from recorder.journal.record import Incoming
from recorder.journal.writer import JournalWriter
from recorder.replay.publisher import Publisher
from recorder.replay.run import Pacer, ReplayStats, Selection, connect, journal_batches, replay

SUBJECT = "meshery.meshsync.core"
FLUSH_EVERY = 1024  # the same flow control as `--speed max`
TARGET = 0.70
DELIVERY_TIMEOUT_S = 60.0


# -- broker and subscriber ------------------------------------------------------------------


@contextlib.contextmanager
def nats_server(workdir: Path) -> Iterator[str]:
    port = free_port()
    conf = workdir / "server.conf"
    # A 1 GiB outbound buffer per client: the Python subscriber may lag the publisher for a
    # while, and must be buffered rather than disconnected as a slow consumer.
    conf.write_text('max_pending: 1073741824\nwrite_deadline: "30s"\n')
    log = (workdir / "server.log").open("wb")
    process = subprocess.Popen(
        [find_nats_server(), "-c", str(conf), "-a", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                raise RuntimeError((workdir / "server.log").read_text()[-500:])
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            if time.monotonic() > deadline:
                raise RuntimeError("nats-server did not listen within 10 s")
            time.sleep(0.05)
        yield f"nats://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _subscriber_main(url: str, count: Any, errors: Any, ready: Any) -> None:
    async def main() -> None:
        received = 0

        async def on_error(_exc: Exception) -> None:
            with errors.get_lock():
                errors.value += 1

        async def on_msg(_msg: Any) -> None:
            nonlocal received
            received += 1

        nc = await nats.connect(url, error_cb=on_error)
        await nc.subscribe(SUBJECT, cb=on_msg, pending_msgs_limit=-1, pending_bytes_limit=-1)
        await nc.flush()
        ready.set()
        while True:  # publish the count to the parent every 10 ms
            count.value = received
            await asyncio.sleep(0.01)

    asyncio.run(main())


class Subscriber:
    """A counting subscriber in its own process; `wait_for(n)` waits until n have arrived."""

    def __init__(self, url: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.count = context.Value("q", 0, lock=False)
        self.errors = context.Value("i", 0)
        ready = context.Event()
        self.process = context.Process(
            target=_subscriber_main, args=(url, self.count, self.errors, ready), daemon=True
        )
        self.process.start()
        if not ready.wait(20):
            self.stop()
            raise RuntimeError("subscriber did not start")

    def wait_for(self, total: int) -> float:
        """Seconds until `total` messages have arrived in all; raises if any go missing."""
        started = time.monotonic()
        while self.count.value < total:
            if self.errors.value or not self.process.is_alive():
                raise RuntimeError(f"subscriber failed after {self.count.value} messages")
            if time.monotonic() - started > DELIVERY_TIMEOUT_S:
                raise RuntimeError(f"only {self.count.value} of {total} messages arrived")
            time.sleep(0.005)
        if self.count.value != total:
            raise RuntimeError(f"{self.count.value} messages arrived, expected {total}")
        return time.monotonic() - started

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(10)


# -- the contenders -------------------------------------------------------------------------


def payloads(size: int, variants: int = 64) -> list[bytes]:
    rng = random.Random(size)
    return [rng.randbytes(size) for _ in range(variants)]


def write_journal(directory: Path, pool: list[bytes], count: int) -> None:
    writer = JournalWriter(directory, WriterOptions(segment_max_bytes=256 * 1024 * 1024))
    writer.open()
    start = time.time_ns() - count * 1_000_000
    batch: list[Incoming] = []
    for index in range(count):
        batch.append(
            Incoming(start + index * 1_000_000, SUBJECT, "", None, pool[index % len(pool)], None)
        )
        if len(batch) == 4096:
            writer.append_messages(batch)
            batch = []
    writer.append_messages(batch)
    writer.close()


async def bare(url: str, pool: list[bytes], count: int) -> float:
    nc = await nats.connect(url)
    try:
        started = time.perf_counter()
        for index in range(1, count + 1):
            await nc.publish(SUBJECT, pool[index % len(pool)])
            if index % FLUSH_EVERY == 0:
                await nc.flush(timeout=30)
        await nc.flush(timeout=30)
        return time.perf_counter() - started
    finally:
        await nc.close()


async def library(url: str, journal: Path, count: int) -> float:
    nc, errors = await connect(NatsConfig(urls=(url,)))
    try:
        stats = ReplayStats()
        batches = journal_batches(journal, Selection(), stats=stats)
        await replay(batches, Publisher(nc), errors, Pacer(None, None), asyncio.Event(), stats)
    finally:
        await nc.close()
    if stats.sent != count:
        raise RuntimeError(f"library replay sent {stats.sent} of {count}")
    return stats.elapsed_s


def cli(url: str, journal: Path, count: int) -> tuple[float, float]:
    """(steady-state seconds from the summary, wall seconds including start-up)."""
    command = [sys.executable, "-m", "recorder", "replay", str(journal), "--nats-url", url]
    started = time.perf_counter()
    result = subprocess.run(
        [*command, "--speed", "max"], capture_output=True, text=True, timeout=300, check=False
    )
    wall = time.perf_counter() - started
    sent = re.search(r"^sent (\d+) messages", result.stderr, re.MULTILINE)
    elapsed = re.search(r"^elapsed ([0-9.]+) s", result.stderr, re.MULTILINE)
    if result.returncode != 0 or not sent or not elapsed or int(sent[1]) != count:
        raise RuntimeError(f"recorder replay failed ({result.returncode}): {result.stderr[-500:]}")
    return float(elapsed[1]), wall


# -- running and reporting ------------------------------------------------------------------


def run(count: int, sizes: list[int], repeat: int, workdir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"count": count, "repeat": repeat, "target": TARGET, "sizes": {}}
    with nats_server(workdir) as url:
        subscriber = Subscriber(url)
        delivered = 0
        try:
            for size in sizes:
                pool = payloads(size)
                journal = workdir / f"journal-{size}"
                write_journal(journal, pool, count)
                rates: dict[str, list[float]] = {
                    "bare": [],
                    "library": [],
                    "cli": [],
                    "cli_wall": [],
                }
                for attempt in range(repeat):
                    order = ["bare", "library", "cli"]
                    order = order[attempt % 3 :] + order[: attempt % 3]
                    for name in order:
                        if name == "bare":
                            rates["bare"].append(count / asyncio.run(bare(url, pool, count)))
                        elif name == "library":
                            rates["library"].append(
                                count / asyncio.run(library(url, journal, count))
                            )
                        else:
                            steady, wall = cli(url, journal, count)
                            rates["cli"].append(count / steady)
                            rates["cli_wall"].append(count / wall)
                        delivered += count
                        subscriber.wait_for(delivered)
                shutil.rmtree(journal)
                medians = {name: statistics.median(values) for name, values in rates.items()}
                ratios = {
                    name: medians[name] / medians["bare"] for name in ("library", "cli", "cli_wall")
                }
                results["sizes"][str(size)] = {
                    "rates": rates,
                    "median_msgs_per_s": medians,
                    "ratio_to_bare": ratios,
                    "pass": ratios["library"] >= TARGET and ratios["cli"] >= TARGET,
                }
        finally:
            subscriber.stop()
    results["pass"] = all(entry["pass"] for entry in results["sizes"].values())
    return results


def report(results: dict[str, Any]) -> str:
    lines = [
        f"recorder replay --speed max vs a bare nats-py loop: {results['count']} messages, "
        f"median of {results['repeat']}, target >= {TARGET:.0%} of bare (steady state)",
        "",
        f"{'size':>6}  {'bare msg/s':>11}  {'library':>17}  {'cli steady':>17}  "
        f"{'cli incl. start':>17}  result",
    ]
    for size, entry in results["sizes"].items():
        medians, ratios = entry["median_msgs_per_s"], entry["ratio_to_bare"]
        cells = [
            f"{medians[name]:>9,.0f} {ratios[name]:>6.0%}"
            for name in ("library", "cli", "cli_wall")
        ]
        lines.append(
            f"{size:>6}  {medians['bare']:>11,.0f}  {cells[0]:>17}  {cells[1]:>17}  "
            f"{cells[2]:>17}  {'PASS' if entry['pass'] else 'FAIL'}"
        )
    lines += ["", "every message of every run reached the subscriber"]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=50_000, help="messages per run")
    parser.add_argument("--sizes", default="1024,4096", help="payload sizes in bytes")
    parser.add_argument("--repeat", type=int, default=5, help="runs per contender and size")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    try:
        results = run(args.count, sizes, args.repeat, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(results, indent=2) if args.json else report(results))
    return 0 if results["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
