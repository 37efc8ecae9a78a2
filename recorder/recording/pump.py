"""The writer thread: moves the intake into the journal in batches, off the event loop.

It owns the JournalWriter: appends, fsync policy, rotation by age or on demand, and the
recovery from write and fsync errors (mark not ready, retry the writer's resume with backoff).
A message counts as written only once an fsync covers it: after a failed fsync the writer keeps
it and writes it again, and until then it is neither written nor dropped.
"""

from __future__ import annotations

import operator
import shutil
import threading
import time
from collections import deque
from dataclasses import dataclass

from recorder.errors import JournalError, JournalWriteError
from recorder.journal.record import Incoming, MarkerType
from recorder.journal.writer import JournalWriter
from recorder.log import get_logger
from recorder.recording.intake import Intake
from recorder.recording.metrics import Metrics
from recorder.units import MiB

log = get_logger("pump")

_IDLE_WAIT_S = 0.002
_HOUSEKEEPING_S = 0.1
_BACKOFF_START_S = 0.1
_BACKOFF_MAX_S = 5.0
_PAYLOAD = operator.itemgetter(4)  # Incoming.payload, read in C


@dataclass(frozen=True, slots=True)
class PumpOptions:
    batch_max: int = 1024
    batch_max_bytes: int = 4 * MiB
    min_free_bytes: int = 0
    # Core NATS cannot redeliver, so what the writer could not take is dropped (and counted);
    # JetStream puts it back at the head of the queue, to be written once the disk recovers.
    drop_on_write_error: bool = True


class Pump(threading.Thread):
    """Drains an Intake into a JournalWriter until stopped, then writes what is left."""

    def __init__(
        self,
        writer: JournalWriter,
        intake: Intake,
        metrics: Metrics,
        options: PumpOptions | None = None,
    ) -> None:
        super().__init__(name="journal-writer", daemon=True)
        self.writer = writer
        self.intake = intake
        self.metrics = metrics
        self.options = options or PumpOptions()
        self._wake = threading.Event()
        self._stopping = False
        self._rotate_requested = False
        self._dequeued = 0
        self._dropped_marked = 0
        self._write_failed = 0
        # Batches the writer took but no fsync covers yet: (last seq, batch).
        self._not_durable: deque[tuple[int, list[Incoming]]] = deque()
        self._retry_at = 0.0
        self._backoff = _BACKOFF_START_S
        self._last_housekeeping = 0.0
        self.failure: BaseException | None = None

    # -- called from other threads --------------------------------------------------------

    def request_rotation(self) -> None:
        self._rotate_requested = True
        self._wake.set()

    def stop(self) -> None:
        """Finish: write everything queued (retrying errors a bounded time), then close."""
        self._stopping = True
        self._wake.set()

    # -- the thread -----------------------------------------------------------------------

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # the daemon must learn of it and exit non-zero
            self.failure = exc
            log.exception("writer_thread_failed")
            self.metrics.journal_writable = False

    def _loop(self) -> None:
        deadline: float | None = None
        while True:
            now = time.monotonic()
            if now - self._last_housekeeping >= _HOUSEKEEPING_S:
                self._housekeeping(now)
            worked = self._step(now)
            if self._stopping:
                if deadline is None:
                    deadline = now + 10.0
                if self._drained() or now >= deadline:
                    break
            if not worked:
                self._wake.wait(_IDLE_WAIT_S)
                self._wake.clear()
        self._close()

    def _drained(self) -> bool:
        return not self.intake.items and not self.intake.controls and not self._pending_drops()

    def _close(self) -> None:
        lost = len(self.intake.items)
        if lost:
            log.error("messages_not_written_at_stop", count=lost)
        clean = lost == 0 and self.metrics.journal_writable
        self.writer.close(clean=clean, fields={"dropped_total": self.metrics.dropped_total()})
        self._count_durable()
        # The disk failed to the end: the writer cut these out of the journal, never durable.
        unsynced = [item for _seq, batch in self._not_durable for item in batch]
        if unsynced:
            log.error("messages_not_durable_at_stop", count=len(unsynced))
            if self.options.drop_on_write_error:
                self.metrics.count_dropped(unsynced, "write_error")
        while self.intake.controls:
            control = self.intake.controls.popleft()
            if control.done is not None:
                control.done(False)

    def _count_durable(self) -> None:
        durable, pending = self.writer.durable_seq, self._not_durable
        while pending and pending[0][0] <= durable:
            self.metrics.count_written(pending.popleft()[1])

    def _step(self, now: float) -> bool:
        if now < self._retry_at:
            return False
        try:
            if self.writer.fault is not None:
                self.writer.resume()
                self._recovered()
            if self._pending_drops():
                self._write_drop_marker()
                # The marker reached the disk: writable again even if no message follows.
                self._recovered()
            if self.intake.controls and self.intake.controls[0].after <= self._dequeued:
                self._run_control()
                return True
            return self._write_messages()
        except JournalWriteError as exc:
            self._on_write_error(exc, now)
            return False
        finally:
            self._count_durable()

    def _write_messages(self) -> bool:
        intake = self.intake
        count = len(intake.items)
        if intake.controls:
            count = min(count, intake.controls[0].after - self._dequeued)
        count = min(count, self.options.batch_max)
        if count <= 0:
            return False
        batch, nbytes = self._take(count)
        try:
            last_seq = self.writer.append_messages(batch)
        except JournalWriteError as exc:
            taken, lost = batch[: exc.written], batch[exc.written :]
            if taken:
                self._not_durable.append((self.writer.next_seq - 1, taken))
            if lost and self.options.drop_on_write_error:
                self._write_failed += len(lost)
                self.metrics.count_dropped(lost, "write_error")
            elif lost:
                self.intake.items.extendleft(reversed(lost))
                self._dequeued -= len(lost)
                nbytes -= sum(len(item.payload) for item in lost)
            raise
        finally:
            # Written or not, the batch is gone from the intake with this frame (what is queued
            # again stays counted): the intake may take as many bytes again.
            intake.release(nbytes)
        self._not_durable.append((last_seq, batch))
        self._recovered()
        return True

    def _take(self, count: int) -> tuple[list[Incoming], int]:
        """Pop up to `count` messages, fewer once they reach batch_max_bytes (at least one).

        The encoder copies every payload it frames, so a batch costs about twice its bytes
        while it is written: bounding it keeps that copy small next to queue_max_bytes.
        """
        popleft = self.intake.items.popleft
        limit = self.options.batch_max_bytes
        if self.intake.held_bytes() <= limit:
            # The common case: all that is queued fits, so no per-message check is needed.
            batch = [popleft() for _ in range(count)]
            nbytes = sum(map(len, map(_PAYLOAD, batch)))
        else:
            batch, nbytes = [], 0
            while count and nbytes < limit:
                item = popleft()
                batch.append(item)
                nbytes += len(item.payload)
                count -= 1
        self._dequeued += len(batch)
        return batch, nbytes

    def _run_control(self) -> None:
        """Run the first control; it stays queued (to be retried) if the writer did not take it."""
        controls = self.intake.controls
        control = controls[0]
        marker = control.marker
        if marker is not None:
            try:
                self.writer.append_marker(marker, control.fields)
            except JournalWriteError as exc:
                if exc.written:  # kept by the writer, to be written again: not a second time
                    self._marker_done(marker)
                raise
            self._marker_done(marker)
        if control.done is not None:
            # Every message before the barrier was taken by the writer (what it could not take
            # went back to the queue, ahead of the barrier): durable once this fsync succeeds.
            self.writer.sync()
            controls.popleft()
            control.done(True)

    def _marker_done(self, marker: MarkerType) -> None:
        self.intake.controls.popleft()
        self.metrics.count_marker(marker)

    def _pending_drops(self) -> int:
        intake = self.intake
        total = intake.dropped + intake.slow_consumer_dropped + self._write_failed
        return total - self._dropped_marked

    def _write_drop_marker(self) -> None:
        intake = self.intake
        count = self._pending_drops()
        try:
            self.writer.append_marker(
                MarkerType.DROPPED,
                {
                    "count": count,
                    "queue_full_total": intake.dropped,
                    "slow_consumer_total": intake.slow_consumer_dropped,
                    "write_error_total": self._write_failed,
                },
            )
        except JournalWriteError as exc:
            if exc.written:  # kept by the writer, to be written again: marked all the same
                self._drops_marked(count)
            raise
        self._drops_marked(count)

    def _drops_marked(self, count: int) -> None:
        intake = self.intake
        self._dropped_marked += count
        self.metrics.fold_drops("queue_full", intake.dropped_by_subject)
        self.metrics.fold_drops("slow_consumer", intake.slow_consumer_by_subject)
        self.metrics.count_marker(MarkerType.DROPPED)
        log.warning("messages_dropped", count=count)

    def _on_write_error(self, exc: JournalWriteError, now: float) -> None:
        self.metrics.write_errors += 1
        self.metrics.journal_writable = False
        self.metrics.journal_fault = str(exc)
        log.error("journal_write_failed", error=str(exc), errno=exc.errno, retry_in_s=self._backoff)
        self._retry_at = now + self._backoff
        self._backoff = min(self._backoff * 2, _BACKOFF_MAX_S)

    def _recovered(self) -> None:
        if not self.metrics.journal_writable:
            log.info("journal_writable_again")
        self.metrics.journal_writable = True
        self.metrics.journal_fault = ""
        self._backoff = _BACKOFF_START_S

    def _housekeeping(self, now: float) -> None:
        self._last_housekeeping = now
        try:
            if self._rotate_requested:
                self._rotate_requested = False
                log.info("rotation_requested", signal="SIGHUP")
                self.writer.rotate("demand")
            self.writer.rotate_if_old()
            self.writer.sync_if_due()
        except (JournalError, OSError) as exc:
            log.error("journal_housekeeping_failed", error=str(exc))
            if self.writer.fault is not None and isinstance(exc, JournalWriteError):
                self._on_write_error(exc, now)
        self._count_durable()
        self._update_gauges()

    def _update_gauges(self) -> None:
        metrics = self.metrics
        metrics.queue_depth = len(self.intake.items)
        metrics.queue_bytes = self.intake.held_bytes()
        try:
            metrics.free_disk_bytes = shutil.disk_usage(self.writer.directory).free
        except OSError:
            metrics.free_disk_bytes = 0
        active = self.writer.active_segment
        metrics.active_segment = active.number if active else 0
        metrics.disk_ok = metrics.free_disk_bytes >= self.options.min_free_bytes
