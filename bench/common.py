"""What the benchmarks share: scratch directories on the real disk, summaries, tables and
verdicts, process helpers, CPU and RSS sampling, and a nats-server to measure against.

compact.py's phase processes import this module and report their own peak RSS, so anything
beyond the standard library's basics (statistics, multiprocessing, urllib, structlog, recorder)
is imported inside the function that needs it.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

SUBJECT = "meshery.meshsync.core"
MEMORY_FILESYSTEMS = {"tmpfs", "ramfs", "devtmpfs"}


# -- arguments and output -------------------------------------------------------------------


def parse_sizes(text: str) -> list[int]:
    sizes = [int(part) for part in text.split(",")]
    if any(size < 1 for size in sizes):
        raise ValueError(text)
    return sizes


def size_label(size: int) -> str:
    return f"{size // 1024} KiB" if size >= 1024 and size % 1024 == 0 else f"{size} B"


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def quiet_logs(level: str = "warning") -> None:
    """Keep the recorder's structlog output below `level` out of the benchmark's output."""
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(level))


def spread(values: Sequence[float], spec: str, width: int = 0) -> str:
    """`median [min-max]`, each formatted with `spec`; the median right-aligned to `width`."""
    import statistics

    median = format(statistics.median(values), spec).rjust(width)
    return f"{median} [{min(values):{spec}}-{max(values):{spec}}]"


def summary(runs: Sequence[Any], attrs: Iterable[str]) -> dict[str, dict[str, float]]:
    """{"median"|"min"|"max": {attr: that statistic of the runs' attr}}, for JSON output."""
    import statistics

    columns = {attr: [getattr(run, attr) for run in runs] for attr in attrs}
    return {
        name: {attr: how(values) for attr, values in columns.items()}
        for name, how in (("median", statistics.median), ("min", min), ("max", max))
    }


def table(
    columns: Sequence[tuple[str, str]],
    rows: Iterable[Sequence[str]],
    sep: str = "  ",
    rule: bool = True,
) -> list[str]:
    """Header, optional rule and rows; `columns` are (title, alignment and width, e.g. ">10")."""
    header = sep.join(format(title, spec) for title, spec in columns)
    lines = [header, "-" * len(header)] if rule else [header]
    for row in rows:
        lines.append(
            sep.join(format(cell, spec) for cell, (_, spec) in zip(row, columns, strict=True))
        )
    return lines


def emit(report: list[str], document: dict[str, Any] | None) -> None:
    """The report on stdout; with a JSON document, that on stdout and the report on stderr."""
    if document is None:
        print("\n".join(report))
        return
    print("\n".join(report), file=sys.stderr)
    print(json.dumps(document, indent=2))


def verdict(passed: bool | None, undecided: str = "INCONCLUSIVE") -> str:
    return "PASS" if passed else "FAIL" if passed is False else undecided


def exit_status(outcomes: Iterable[bool | None]) -> int:
    """1 when a target failed; skipped and inconclusive checks do not fail the run."""
    return 1 if any(passed is False for passed in outcomes) else 0


# -- the disk -------------------------------------------------------------------------------


@contextlib.contextmanager
def scratch_dir(name: str, parent: Path | None = None, keep: bool = False) -> Iterator[Path]:
    """A fresh `.bench-NAME-*` directory under `parent` (default: the current directory).

    Not under /tmp: that is often tmpfs, where fsync costs nothing and the numbers lie.
    """
    parent = (parent or Path.cwd()).resolve()
    parent.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix=f".bench-{name}-", dir=parent))
    try:
        yield base
    finally:
        if keep:
            print(f"kept {base}", file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)


def filesystem_of(path: Path) -> tuple[str, str, str]:
    """(mount point, type, device) of the mount holding `path`, from /proc/mounts."""
    target = str(path.resolve())
    best = ("?", "unknown", "?")
    best_length = -1
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return best
    for line in lines:
        device, mount, fstype = line.split()[:3]
        mount = mount.replace("\\040", " ")
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= best_length:  # the last, deepest mount wins
            best, best_length = (mount, fstype, device), len(mount)
    return best


# -- processes and what they use ------------------------------------------------------------


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15.0) -> int:
    """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


class Child:
    """A spawned child process driven over a pipe: `target(conn, *args)` sends "ready" first."""

    def __init__(self, target: Callable[..., None], *args: Any) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.conn, child_conn = context.Pipe()
        self.process = context.Process(target=target, args=(child_conn, *args), daemon=True)
        self.process.start()
        child_conn.close()
        if not self.conn.poll(30) or self.conn.recv() != "ready":
            self.stop()
            raise RuntimeError(f"{target.__name__} did not start")

    @property
    def pid(self) -> int:
        return self.process.pid or 0

    def ask(self, command: Any, timeout: float = 120.0) -> Any:
        self.conn.send(command)
        if not self.conn.poll(timeout):
            raise TimeoutError(f"no answer to {command!r} within {timeout} s")
        return self.conn.recv()

    def stop(self) -> None:
        with contextlib.suppress(OSError, EOFError):
            self.conn.send("stop")
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


@contextlib.contextmanager
def pinned(cpus: set[int] | None) -> Iterator[None]:
    """Processes started inside inherit this CPU affinity (None: no pinning)."""
    if cpus is None:
        yield
        return
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, saved)


def cpu_split(mode: str) -> tuple[set[int] | None, set[int] | None]:
    """(load side: publisher and nats-server, consumer side) CPU sets for --pin split|none."""
    cpus = sorted(os.sched_getaffinity(0))
    if mode == "none" or len(cpus) < 2:
        return None, None
    return {cpus[0]}, set(cpus[1:])


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """User + system CPU time of a process (all its threads), or of one thread, from /proc."""
    path = f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat"
    try:
        fields = Path(path).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """Busy CPU seconds of the whole machine since boot (all CPUs), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb() -> float:
    """This process's peak RSS (ru_maxrss, which survives execve) in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# -- nats-server ----------------------------------------------------------------------------


class Broker:
    """nats-server on loopback from a config file: JetStream with `sync_interval: always`."""

    def __init__(self, base: Path) -> None:
        from recorder.demo.embedded import free_port

        self.workdir = base / "nats-server"
        self.workdir.mkdir()
        self.port = free_port()
        self.http_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "server.log"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid if self.process else 0

    def start(self) -> None:
        from recorder.demo.embedded import find_nats_server

        store = json.dumps(str(self.workdir / "store"))
        conf = self.workdir / "server.conf"
        conf.write_text(
            f"listen: 127.0.0.1:{self.port}\nhttp: 127.0.0.1:{self.http_port}\n"
            f"jetstream {{ store_dir: {store}, sync_interval: always }}\n"
        )
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                [find_nats_server(), "-c", str(conf)],
                stdout=log_file,
                stderr=log_file,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited: {self.log_path.read_text()[-500:]}")
            with contextlib.suppress(OSError, ValueError):
                if self.monitor("/healthz").get("status") == "ok":
                    return
            time.sleep(0.05)
        raise RuntimeError("nats-server did not become healthy within 10 s")

    def monitor(self, path: str) -> dict[str, Any]:
        import urllib.request

        url = f"http://127.0.0.1:{self.http_port}{path}"
        with urllib.request.urlopen(url, timeout=5) as response:
            document: dict[str, Any] = json.loads(response.read())
        return document

    def sync_always(self) -> bool:
        return bool(self.monitor("/varz").get("jetstream", {}).get("config", {}).get("sync_always"))

    def version(self) -> str:
        return str(self.monitor("/varz").get("version", "?"))

    def stream_messages(self, stream: str) -> int:
        document = self.monitor("/jsz?streams=true")
        for account in document.get("account_details") or []:
            for detail in account.get("stream_detail") or []:
                if detail.get("name") == stream:
                    return int(detail["state"]["messages"])
        return 0

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            stop_process(process)
