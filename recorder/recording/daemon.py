"""`recorder run`: lifecycle of the recording daemon.

Start: open the journal (repairing what a crash left), start the writer thread and the HTTP
listener, tell systemd we are ready, connect and subscribe (STATUS and /readyz say when).
Stop (SIGTERM/SIGINT): stop intake, drain the subscription, write what is queued, fsync, seal,
exit 0. A second signal skips the drain, never the fsync. SIGHUP rotates the segment.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from recorder import __version__
from recorder.config import Config
from recorder.errors import JournalError, PathAccessError, RecorderError
from recorder.journal.options import Compression, FsyncPolicy, WriterOptions
from recorder.journal.record import MarkerType
from recorder.journal.retention import RetentionPolicy
from recorder.journal.segment import SegmentFile, list_segments
from recorder.journal.writer import JournalWriter
from recorder.log import get_logger
from recorder.meshsync import INFORMER_STORE, REQUEST_SUBJECT, RESYNC_DISCOVERY, request_payload
from recorder.recording.bridge import Bridge
from recorder.recording.http import HealthServer
from recorder.recording.intake import Intake
from recorder.recording.jetstream import JetStreamIntake
from recorder.recording.metrics import JournalSize, Metrics
from recorder.recording.pump import Pump, PumpOptions
from recorder.recording.sdnotify import Notifier

log = get_logger("daemon")

DRAIN_TIMEOUT_S = 5.0
_CLOSE_TIMEOUT_S = 2.0
_STATUS_INTERVAL_S = 5.0


def baseline_request(kind: str, reply_subject: str) -> tuple[str, bytes]:
    """The MeshSync control request that makes it (re)publish every object (WIRE.md, section 1)."""
    if kind == "informer-store":
        return REQUEST_SUBJECT, request_payload(INFORMER_STORE, reply_subject)
    return REQUEST_SUBJECT, request_payload(RESYNC_DISCOVERY)


def writer_options(cfg: Config) -> WriterOptions:
    journal = cfg.journal
    return WriterOptions(
        segment_max_bytes=journal.segment_max_bytes,
        segment_max_age_ns=int(journal.segment_max_age * 1e9),
        fsync=FsyncPolicy(journal.fsync),
        fsync_interval_ns=int(journal.fsync_interval * 1e9),
        compression=Compression(journal.compression),
        retention=RetentionPolicy(
            max_bytes=journal.retention.max_bytes,
            max_age_ns=int(journal.retention.max_age * 1e9),
            max_segments=journal.retention.max_segments,
        ),
    )


class SegmentShipper(Protocol):
    """What the daemon needs of an off-host archiver; the CLI builds one and hands it in."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def segment_sealed(self, segment: SegmentFile) -> None: ...
    def may_delete(self, segment: SegmentFile) -> bool: ...
    def render_metrics(self) -> str: ...


@dataclass(frozen=True, slots=True)
class RunResult:
    exit_code: int
    messages_written: int
    dropped: int


def open_failure(directory: Path, exc: OSError) -> str:
    """What stopped the journal from opening, naming the file that refused rather than guessing."""
    reason = exc.strerror or str(exc)
    culprit = Path(exc.filename) if exc.filename else None
    if isinstance(exc, PermissionError):
        # A file that exists refused us (an unreadable LOCK or segment); otherwise the directory
        # refused a new file.
        if culprit is not None and culprit != directory and os.path.lexists(culprit):
            return f"{culprit}: cannot open journal file ({reason})"
        return f"{directory}: journal directory not writable ({reason})"
    if isinstance(exc, NotADirectoryError):
        return f"{directory}: cannot create the journal directory: {reason} (a parent is a file)"
    return f"{culprit or directory}: cannot open journal: {reason}"


class Daemon:
    """One recorder process: journal writer thread, NATS bridge, HTTP listener, signals."""

    def __init__(
        self, cfg: Config, env: Mapping[str, str], shipper: SegmentShipper | None = None
    ) -> None:
        self.cfg = cfg
        self.metrics = Metrics()
        self.intake = Intake(cfg.queue_max_messages, cfg.queue_max_bytes)
        self.notifier = Notifier(env)
        self.shipper = shipper
        self.writer = JournalWriter(
            cfg.journal.dir,
            writer_options(cfg),
            fsync_observer=self.metrics.observe_fsync,
            on_sealed=shipper.segment_sealed if shipper else None,
            may_delete=shipper.may_delete if shipper else None,
        )
        if shipper is not None:
            self.metrics.extra.append(shipper.render_metrics)
        self.metrics.journal_size = self._journal_size
        self.pump = Pump(
            self.writer,
            self.intake,
            self.metrics,
            PumpOptions(
                min_free_bytes=cfg.journal.min_free_bytes,
                drop_on_write_error=cfg.mode == "core",
            ),
        )
        self.bridge = Bridge(cfg.nats, self.intake, self.metrics)
        self.http: HealthServer | None = None
        self.jetstream: JetStreamIntake | None = None
        self._stop = asyncio.Event()
        self._signals = 0
        self._stop_signal = ""
        self._hurry = asyncio.Event()

    async def run(self) -> RunResult:
        await self._open_journal()
        try:
            await self._start()
            await self._stop.wait()
            log.info("stop_requested", signal=self._stop_signal, count=self._signals)
        finally:
            await self._shutdown()
        failed = self.pump.failure is not None
        return RunResult(
            1 if failed else 0,
            sum(self.metrics.written_msgs.values()),
            self.metrics.dropped_total(),
        )

    async def _open_journal(self) -> None:
        started = {
            "subjects": list(self.cfg.subjects),
            "mode": self.cfg.mode,
            "urls": self.bridge.servers,
        }
        try:
            recovery = await asyncio.to_thread(self.writer.open, started)
        except OSError as exc:
            raise JournalError(open_failure(self.cfg.journal.dir, exc)) from None
        except PathAccessError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM) and not os.path.lexists(exc.path):
                # No file refused us: the directory refused a new one (the LOCK, a segment).
                reason = os.strerror(exc.errno)
                raise JournalError(
                    f"{self.cfg.journal.dir}: journal directory not writable ({reason})"
                ) from None
            raise
        log.info(
            "journal_opened",
            dir=str(self.cfg.journal.dir),
            next_seq=self.writer.next_seq,
            previous_clean=recovery.clean,
            repaired=list(recovery.repaired),
        )
        # open() wrote these markers itself, past the pump that counts the others.
        if recovery.clean is False:
            self.metrics.count_marker(MarkerType.STOPPED)
        self.metrics.count_marker(MarkerType.STARTED)
        self.pump.start()
        if self.shipper is not None:
            self.shipper.start()

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_stop_signal, signum)
        loop.add_signal_handler(signal.SIGHUP, self._on_hup)
        address = self.cfg.http.address
        if address is not None:
            self.http = HealthServer(self.metrics, *address)
            try:
                await self.http.start()
            except OSError as exc:
                raise RecorderError(
                    f"http.listen: cannot listen on {self.cfg.http.listen}: {exc.strerror or exc}"
                ) from None
        # Ready for systemd once the journal is open and the listener serves: waiting for the
        # broker is reported (STATUS, /readyz), never a start that hangs until it comes back.
        self.notifier.ready(self._status())
        asyncio.create_task(self._heartbeat(), name="heartbeat")  # noqa: RUF006 - ends with the loop
        await self.bridge.connect(retry=self.cfg.nats.retry_on_start, stop=self._stop)
        if self._stop.is_set():
            return
        subjects = self.cfg.subjects
        if self.cfg.baseline == "informer-store":
            subjects = (*subjects, self.cfg.baseline_reply_subject)
        if self.cfg.mode == "jetstream":
            self.jetstream = JetStreamIntake(self.bridge, self.intake, self.metrics, self.cfg)
            await self.jetstream.start()
        else:
            await self.bridge.subscribe(subjects, self.cfg.queue_group)
        await self._send_baseline()
        self.notifier.status(self._status())
        log.info("recorder_ready", version=__version__, mode=self.cfg.mode)

    async def _send_baseline(self) -> None:
        if self.cfg.baseline == "none":
            return
        subject, payload = baseline_request(self.cfg.baseline, self.cfg.baseline_reply_subject)
        await self.bridge.publish(subject, payload)
        log.info("baseline_requested", kind=self.cfg.baseline, subject=subject)

    async def _heartbeat(self) -> None:
        """systemd watchdog pings at half its interval, and a STATUS line with counters."""
        interval = self.notifier.watchdog_interval_s or _STATUS_INTERVAL_S
        while not self._stop.is_set():
            if self.pump.failure is not None:
                log.error("writer_thread_died_stopping")
                self._stop.set()
                return
            if self.notifier.watchdog_interval_s and self.pump.is_alive():
                self.notifier.watchdog()
            self.notifier.status(self._status())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=min(interval, _STATUS_INTERVAL_S))

    def _status(self) -> str:
        """systemd's STATUS line: where the broker stands, then the counters."""
        metrics = self.metrics
        if metrics.subscribed:
            broker = "subscribed"
        elif metrics.connected:
            broker = "connected, not subscribed"
        else:
            broker = "waiting for the broker at " + ", ".join(self.bridge.servers)
        written = sum(metrics.written_msgs.values())
        return (
            f"{broker}; written={written} dropped={metrics.dropped_total()} "
            f"queue={len(self.intake)}"
        )

    def _on_stop_signal(self, signum: int) -> None:
        # Only flags and events here: no logging, no I/O that could fail or block (a closed
        # stderr, a full pipe) between a signal and the stop it asks for. run() logs it.
        self._signals += 1
        self._stop_signal = signal.Signals(signum).name
        self._stop.set()
        if self._signals > 1:
            self._hurry.set()  # second signal: skip the drain; the writer still flushes and fsyncs

    def _on_hup(self) -> None:
        # A hung-up terminal sends SIGHUP too: rotate, and leave the logging to the writer.
        self.pump.request_rotation()

    async def _shutdown(self) -> None:
        self.notifier.stopping()
        await self._stop_intake()
        self.pump.stop()
        await asyncio.to_thread(self.pump.join)
        if self.shipper is not None:
            # After the writer closed: its last sealed segment gets its chance to go too.
            await asyncio.to_thread(self.shipper.stop)
        if self.http is not None:
            await self.http.close()
        log.info(
            "recorder_stopped",
            written=sum(self.metrics.written_msgs.values()),
            dropped=self.metrics.dropped_total(),
        )

    async def _stop_intake(self) -> None:
        """Drain within DRAIN_TIMEOUT_S unless a second signal comes; then close, also bounded.

        nats-py's drain and close can wait on a broker that stopped answering, and do not give
        way to cancellation promptly, so they run as tasks that are abandoned, never awaited
        past their bound: nothing here may stand between a stop and the journal's fsync.
        """
        if self.jetstream is not None:
            await _bounded(self.jetstream.stop(), DRAIN_TIMEOUT_S, self._hurry)
        if not await _bounded(self.bridge.drain(), DRAIN_TIMEOUT_S, self._hurry):
            log.warning(
                "drain_skipped", reason="second signal" if self._hurry.is_set() else "timeout"
            )
            await _bounded(self.bridge.close(), _CLOSE_TIMEOUT_S, None)

    def _journal_size(self) -> JournalSize:
        segments = list_segments(self.cfg.journal.dir)
        total = 0
        for segment in segments:
            with contextlib.suppress(OSError):
                total += segment.path.stat().st_size
        return JournalSize(len(segments), total)


async def _bounded(
    work: Coroutine[Any, Any, None], timeout: float, hurry: asyncio.Event | None
) -> bool:
    """Run `work` until it ends, `timeout` passes or `hurry` is set; True when it ended well."""
    task = asyncio.ensure_future(work)
    task.add_done_callback(_retrieve)
    waiters: set[asyncio.Future[Any]] = {task}
    hurried = asyncio.ensure_future(hurry.wait()) if hurry is not None else None
    if hurried is not None:
        waiters.add(hurried)
    await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    if hurried is not None:
        hurried.cancel()
    if not task.done():
        task.cancel()
        return False
    return task.exception() is None


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Consume an abandoned task's outcome, so asyncio does not report it as never retrieved."""
    if not task.cancelled() and task.exception() is not None:
        log.warning("shutdown_step_failed", error=repr(task.exception()))


def run_daemon(
    cfg: Config, env: Mapping[str, str], shipper: SegmentShipper | None = None
) -> RunResult:
    """Run the daemon on a fresh event loop, and leave in bounded time even if nats-py lingers."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(Daemon(cfg, env, shipper).run())
    finally:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.wait(pending, timeout=_CLOSE_TIMEOUT_S))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
