"""Archive throughput against the same library's bare puts, and compact from the archive
against compact from the local journal (issue 16), on moto's S3 server on loopback.

    .venv/bin/python bench/archive.py [--megabytes 64] [--segment-mib 4] [--repeat 3] [--json]

One journal of MeshSync sample messages is written once, in segments of `--segment-mib`. Each
repeat, in alternating order, uploads its sealed segments to a fresh bucket two ways:

  bare      obstore.put of each segment file's bytes, two at a time (the archiver's default
            concurrency), with nothing else: multipart above 5 MiB, obstore's default
  single    the same with use_multipart=False: one PUT per segment, as the archiver makes them
  archiver  recorder.archive's Archiver from start to the index naming every segment: reading,
            its MD5, the entity-tag check and the index puts included

The target is on bare, the issue's baseline (a bare put with the library's defaults). The
archiver makes single PUTs (their entity tag is the MD5 it checks), which moto serves faster
than multipart, so the ratio to single is printed beside it: that one is the archiver's own
cost, mostly the MD5 of every byte, computed on the same two cores as the server's.

and compacts it two ways, each a real `recorder compact --format json` subprocess:

  local     from the journal directory
  archive   from the archive URL (each segment fetched as the reader reaches it)

Medians over the repeats. Targets: archiver at least 80% of bare's MB/s; compact from the
archive at least 50% of the local rate. Exits 1 on a FAIL. moto (the `test` extra) runs in its own process.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import emit, exit_status, log, quiet_logs, scratch_dir, verdict

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "tests" / "data" / "meshsync-samples"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_REGION": "us-east-1",
}


def write_journal(directory: Path, megabytes: int, segment_mib: int) -> int:
    """A journal of sample MeshSync messages, sealed; returns its bytes."""
    from recorder.journal.record import Incoming
    from recorder.journal.writer import JournalWriter, WriterOptions

    payloads = [path.read_bytes() for path in sorted(SAMPLES.glob("core-*.json"))]
    writer = JournalWriter(directory, WriterOptions(segment_max_bytes=segment_mib << 20))
    writer.open()
    written, now = 0, time.time_ns()
    while written < megabytes << 20:
        batch = [
            Incoming(now + i, "meshery.meshsync.core", "", None, payloads[i % len(payloads)], None)
            for i in range(256)
        ]
        writer.append_messages(batch)
        written += sum(len(item.payload) for item in batch)
    writer.close()
    return sum(path.stat().st_size for path in directory.glob("*.seg"))


def bare_put(endpoint: str, bucket: str, files: list[Path], *, single: bool = False) -> float:
    from obstore import put
    from obstore.store import S3Store

    store = S3Store(bucket, endpoint=endpoint, client_options={"allow_http": True})
    options = {"use_multipart": False} if single else {}
    prefix = "single" if single else "bare"
    started = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(
            pool.map(
                lambda path: put(store, f"{prefix}/{path.name}", path.read_bytes(), **options),
                files,
            )
        )
    return time.perf_counter() - started


def archiver_upload(endpoint: str, bucket: str, journal: Path, segments: int) -> float:
    from recorder.archive.setup import build_archiver

    archiver = build_archiver(f"s3://{bucket}", endpoint, "bench", journal, 2)
    started = time.perf_counter()
    archiver.start()
    while archiver.status().archived_segments < segments:
        time.sleep(0.01)  # polling granularity: under 1 % of a run, and light on the GIL
    elapsed = time.perf_counter() - started
    archiver.stop()
    return elapsed


def compact_seconds(source: str, endpoint: str, out: Path) -> float:
    argv = [sys.executable, "-m", "recorder", "compact", source, "--format", "json"]
    argv += ["--out", str(out), "--endpoint", endpoint]
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env={**os.environ, **CREDENTIALS})
    return time.perf_counter() - started


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    """moto's server in a process of its own: in ours it would share the GIL with the client."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, f"http://127.0.0.1:{port}"
        time.sleep(0.05)
    server.kill()
    raise SystemExit("moto server did not start")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=64)
    parser.add_argument("--segment-mib", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    quiet_logs()
    os.environ.update(CREDENTIALS)
    import boto3

    server, endpoint = start_moto()
    client = boto3.client("s3", endpoint_url=endpoint)
    runs: dict[str, list[float]] = {
        "bare": [],
        "single": [],
        "archiver": [],
        "local": [],
        "archive": [],
    }
    try:
        with scratch_dir("archive") as base:
            journal = base / "journal"
            total = write_journal(journal, args.megabytes, args.segment_mib)
            files = sorted(journal.glob("*.seg"))
            log(f"journal: {len(files)} segments, {total / 1e6:.1f} MB")
            for repeat in range(args.repeat):
                bucket = f"bench-{repeat}"
                client.create_bucket(Bucket=bucket)
                (journal / "archive.id").unlink(missing_ok=True)
                order = ["bare", "single", "archiver"]
                for way in order if repeat % 2 == 0 else reversed(order):
                    if way != "archiver":
                        runs[way].append(bare_put(endpoint, bucket, files, single=way == "single"))
                    else:
                        runs["archiver"].append(
                            archiver_upload(endpoint, bucket, journal, len(files))
                        )
                url = f"s3://{bucket}"
                for way in ["local", "archive"] if repeat % 2 == 0 else ["archive", "local"]:
                    source = str(journal) if way == "local" else url
                    runs[way].append(compact_seconds(source, endpoint, base / f"{way}.json"))
    finally:
        server.terminate()
        server.wait(15)
    medians = {way: statistics.median(seconds) for way, seconds in runs.items()}
    upload_ratio = medians["bare"] / medians["archiver"]
    own_cost_ratio = medians["single"] / medians["archiver"]
    compact_ratio = medians["local"] / medians["archive"]
    checks = {"upload": upload_ratio >= 0.8, "compact": compact_ratio >= 0.5}
    report = [
        f"segments {len(files)}, {total / 1e6:.1f} MB, medians of {args.repeat} runs",
        f"upload   bare {total / 1e6 / medians['bare']:.1f} MB/s  single PUTs "
        f"{total / 1e6 / medians['single']:.1f} MB/s  archiver "
        f"{total / 1e6 / medians['archiver']:.1f} MB/s",
        f"         ratio to bare {upload_ratio:.2f} (>= 0.80) {verdict(checks['upload'])}; "
        f"to single PUTs {own_cost_ratio:.2f} (information: the archiver's own cost)",
        f"compact  local {medians['local']:.2f} s  archive {medians['archive']:.2f} s  "
        f"ratio {compact_ratio:.2f} (>= 0.50) {verdict(checks['compact'])}",
    ]
    document = {
        "bytes": total,
        "segments": len(files),
        "seconds": runs,
        "upload_ratio": round(upload_ratio, 3),
        "upload_ratio_to_single_puts": round(own_cost_ratio, 3),
        "compact_ratio": round(compact_ratio, 3),
        "passed": checks,
    }
    emit(report, document if args.json else None)
    return exit_status(checks.values())


if __name__ == "__main__":
    sys.exit(main())
