"""The journal writer: append-only segments, rotation, fsync policy, retention, compression."""

from __future__ import annotations

import enum
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recorder import __version__
from recorder.errors import JournalError, JournalWriteError, PathAccessError
from recorder.fsutil import write_all
from recorder.journal.active import ActiveSegment, create_segment
from recorder.journal.lock import DirectoryLock
from recorder.journal.record import (
    FOOTER_SIZE,
    Incoming,
    Marker,
    MarkerType,
    encode_footer,
    encode_marker,
    encode_message_parts,
)
from recorder.journal.recovery import Recovery, recover
from recorder.journal.retention import RetentionPolicy, SteadyNow, enforce_retention
from recorder.journal.segment import (
    SegmentFile,
    compress_segment,
    ensure_dir,
    list_segments,
)
from recorder.log import get_logger

log = get_logger("journal")


class FsyncPolicy(enum.StrEnum):
    ALWAYS = "always"  # one fsync per appended batch (group commit)
    INTERVAL = "interval"  # at most one fsync per interval, and on rotation and close
    NEVER = "never"  # leave it to the kernel, except on rotation and close


class Compression(enum.StrEnum):
    NONE = "none"
    ZSTD = "zstd"


@dataclass(frozen=True, slots=True)
class WriterOptions:
    segment_max_bytes: int = 64 * 1024 * 1024
    segment_max_age_ns: int = 3600 * 10**9
    fsync: FsyncPolicy = FsyncPolicy.INTERVAL
    fsync_interval_ns: int = 10**9
    compression: Compression = Compression.NONE
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)


class JournalWriter:
    """Appends records to DIR; not thread-safe: one thread (the daemon's writer) drives it.

    Two clocks: `clock` (wall) only stamps markers and segment headers; `monotonic` times every
    interval (fsync, segment age, retention's view of "now"), so a wall-clock step neither
    stalls nor storms them.
    """

    def __init__(
        self,
        directory: Path,
        options: WriterOptions | None = None,
        *,
        clock: Callable[[], int] = time.time_ns,
        monotonic: Callable[[], int] = time.monotonic_ns,
        instance_id: bytes | None = None,
        fsync_observer: Callable[[float], None] | None = None,
        on_sealed: Callable[[SegmentFile], None] | None = None,
        may_delete: Callable[[SegmentFile], bool] | None = None,
    ) -> None:
        """`on_sealed` gets each segment once sealed (and compressed); retention deletes only
        segments `may_delete` allows (an archive's: only what is archived)."""
        self.directory = directory
        self.options = options or WriterOptions()
        self.instance_id = instance_id or uuid.uuid4().bytes
        self._clock = clock
        self._monotonic = monotonic
        self._steady_now = SteadyNow(clock, monotonic)
        self._lock = DirectoryLock(directory)
        self._lock_held = False
        self._active: ActiveSegment | None = None
        self._next_seq = 1
        self._dirty = False
        self._last_sync_ns = 0
        self._fsync_observer = fsync_observer
        self._on_sealed = on_sealed
        self._may_delete = may_delete
        self._background = ThreadPoolExecutor(1, thread_name_prefix="journal-post-seal")
        self._pending: list[Future[None]] = []
        self._retention_lock = threading.Lock()
        self.recovery: Recovery | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def open(self, started_fields: dict[str, Any] | None = None) -> Recovery:
        """Lock the directory, repair what a crashed writer left, start a new segment."""
        ensure_dir(self.directory)
        self._lock.acquire()
        self._lock_held = True
        try:
            recovery = recover(self.directory)
            self._next_seq = recovery.previous_last_seq + 1
            self._open_segment(self._next_number())
            if recovery.clean is False:
                self.append_marker(
                    MarkerType.STOPPED,
                    {
                        "clean": False,
                        "detected": "at restart",
                        "last_seq": recovery.previous_last_seq,
                    },
                )
            self.append_marker(
                MarkerType.STARTED,
                {
                    "instance": self.instance_id.hex(),
                    "pid": os.getpid(),
                    "version": __version__,
                    **(started_fields or {}),
                },
            )
        except BaseException:
            self._lock_held = False
            self._lock.release()
            raise
        self.recovery = recovery
        return recovery

    def close(self, *, clean: bool = True, fields: dict[str, Any] | None = None) -> None:
        """Write the stop marker, seal and fsync the segment, finish background work, unlock."""
        if not self._lock_held:
            return
        try:
            if self._active is not None:
                self._close_active(clean, fields or {})
        finally:
            self._background.shutdown(wait=True)
            self._lock_held = False
            self._lock.release()

    def _close_active(self, clean: bool, fields: dict[str, Any]) -> None:
        active = self._require_active()
        try:
            self.append_marker(MarkerType.STOPPED, {"clean": clean, **fields})
        except JournalWriteError as exc:
            log.warning("stop_marker_not_written", segment=active.file.name, error=str(exc))
        try:
            self._seal()
        except JournalWriteError as exc:
            # Left unsealed: the next writer's recovery seals it; nothing written is lost.
            log.error("segment_not_sealed", segment=active.file.name, error=str(exc))
            os.close(active.fd)
            self._active = None

    def abandon(self) -> None:
        """Drop the files as a crash would (no marker, no seal, no fsync): for tests and repair."""
        if self._active is not None:
            os.close(self._active.fd)
            self._active = None
        self._background.shutdown(wait=True)
        self._lock_held = False
        self._lock.release()

    # -- appending --------------------------------------------------------------------------

    @property
    def next_seq(self) -> int:
        return self._next_seq

    @property
    def active_segment(self) -> SegmentFile | None:
        return self._active.file if self._active else None

    def append_messages(self, items: list[Incoming]) -> int:
        """Append a batch of messages; returns the sequence number of the last one."""
        if not items:
            return self._next_seq - 1
        parts = encode_message_parts(self._next_seq, items)
        size = sum(map(len, parts))
        active = self._ensure_active()
        if active.size + size <= self.options.segment_max_bytes - FOOTER_SIZE:
            # The common case: the whole batch fits in the active segment; gathered writes,
            # no copy into one buffer.
            earliest = min(item.time_ns for item in items)
            latest = max(item.time_ns for item in items)
            self._append_chunk(active, parts, len(items), earliest, latest, messages=True)
            self._after_write()
        else:
            frames = [parts[index] + parts[index + 1] for index in range(0, len(parts), 2)]
            self._append_frames(frames, [item.time_ns for item in items], messages=True)
        return self._next_seq - 1

    def append_marker(self, marker_type: MarkerType, fields: dict[str, Any] | None = None) -> int:
        now = self._clock()
        frame = encode_marker(Marker(self._next_seq, now, marker_type, fields or {}))
        self._append_frames([frame], [now], messages=False)
        return self._next_seq - 1

    def _append_frames(self, frames: list[bytes], times: list[int], *, messages: bool) -> None:
        first_seq = self._next_seq
        try:
            self._append_from(frames, times, messages=messages)
        except JournalWriteError as exc:
            exc.written = self._next_seq - first_seq
            raise

    def _append_from(self, frames: list[bytes], times: list[int], *, messages: bool) -> None:
        limit = self.options.segment_max_bytes - FOOTER_SIZE
        start = 0
        while start < len(frames):
            active = self._ensure_active()
            room = limit - active.size
            end = start
            while end < len(frames) and len(frames[end]) <= room:
                room -= len(frames[end])
                end += 1
            if end == start:
                if active.records:
                    self.rotate("size")
                    continue
                end = start + 1  # a record larger than a whole segment gets one of its own
            chunk_times = times[start:end]
            self._append_chunk(
                active,
                b"".join(frames[start:end]),
                end - start,
                min(chunk_times),
                max(chunk_times),
                messages=messages,
            )
            start = end
            if start < len(frames):
                self.rotate("size")
        self._after_write()

    def _append_chunk(
        self,
        active: ActiveSegment,
        data: bytes | list[bytes],
        count: int,
        earliest_ns: int,
        latest_ns: int,
        *,
        messages: bool,
    ) -> None:
        """Write `count` whole records and account for them in the segment's footer.

        The footer keeps the earliest and latest receive time, not the first and last record's:
        the wall clock can step back, and time filters and retention must still be right.
        """
        self._write(active, data)
        if not active.records:
            active.first_seq = self._next_seq
            active.first_time_ns, active.last_time_ns = earliest_ns, latest_ns
        else:
            active.first_time_ns = min(active.first_time_ns, earliest_ns)
            active.last_time_ns = max(active.last_time_ns, latest_ns)
        active.records += count
        active.messages += count if messages else 0
        self._next_seq += count
        active.last_seq = self._next_seq - 1

    def _write(self, active: ActiveSegment, data: bytes | list[bytes]) -> None:
        try:
            size = write_all(active.fd, data)
        except OSError as exc:
            # Cut back to the last whole record so no torn record stays behind.
            try:
                os.ftruncate(active.fd, active.size)
                os.lseek(active.fd, active.size, os.SEEK_SET)
            except OSError as undo:
                log.error("truncate_after_write_error_failed", error=str(undo))
            raise JournalWriteError(active.file.name, exc.errno, exc.strerror or str(exc)) from exc
        active.size += size
        self._dirty = True

    # -- durability -------------------------------------------------------------------------

    def _after_write(self) -> None:
        policy = self.options.fsync
        if policy is FsyncPolicy.ALWAYS:
            self.sync()
        elif policy is FsyncPolicy.INTERVAL:
            self.sync_if_due()

    def sync_if_due(self) -> None:
        if self._dirty and self._monotonic() - self._last_sync_ns >= self.options.fsync_interval_ns:
            self.sync()

    def sync(self) -> None:
        """Make every appended record durable now."""
        active = self._active
        if active is None or not self._dirty:
            return
        self._fsync(active)

    def _fsync(self, active: ActiveSegment) -> None:
        started = time.perf_counter()
        try:
            os.fsync(active.fd)
        except OSError as exc:
            raise JournalWriteError(active.file.name, exc.errno, f"fsync: {exc.strerror}") from exc
        self._dirty = False
        self._last_sync_ns = self._monotonic()
        if self._fsync_observer is not None:
            self._fsync_observer(time.perf_counter() - started)

    # -- rotation ---------------------------------------------------------------------------

    def rotate_if_old(self) -> bool:
        active = self._active
        if active is None or not active.records:
            return False
        if self._monotonic() - active.opened_ns < self.options.segment_max_age_ns:
            return False
        self.rotate("age")
        return True

    def rotate(self, reason: str = "demand") -> SegmentFile | None:
        """Seal the active segment and open the next; a segment with no records is kept."""
        active = self._require_active()
        if not active.records:
            return None
        number = active.file.number
        # Held until the next segment is active, so post-seal retention never sees the writer
        # between segments and takes it for a closed one.
        with self._retention_lock:
            self._seal()
            log.info("segment_rotated", segment=number, reason=reason)
            return self._open_segment(number + 1)

    def _seal(self) -> None:
        active = self._require_active()
        self._write(active, encode_footer(active.footer()))
        self._fsync(active)
        os.close(active.fd)
        self._active = None
        self._pending = [future for future in self._pending if not future.done()]
        self._pending.append(self._background.submit(self._after_seal, active.file))

    def _after_seal(self, sealed: SegmentFile) -> None:
        try:
            if self.options.compression is Compression.ZSTD:
                sealed = compress_segment(sealed)
                log.info("segment_compressed", segment=sealed.number)
            if self._on_sealed is not None:
                self._on_sealed(sealed)
            self.apply_retention()
        except Exception as exc:  # noqa: BLE001 - background work must never take the writer down
            log.error("post_seal_failed", segment=sealed.number, error=repr(exc))

    def apply_retention(self) -> list[str]:
        """Delete the oldest sealed segments beyond the retention bounds; never the active one."""
        if not self.options.retention.enabled:
            return []
        with self._retention_lock:
            active = self._active
            return enforce_retention(
                self.directory,
                self.options.retention,
                active.file.number if active else None,
                active.size if active else 0,
                self._steady_now(),
                self._may_delete,
            )

    def wait_background(self) -> None:
        for future in list(self._pending):
            future.result()

    def _open_segment(self, number: int) -> SegmentFile:
        active = create_segment(self.directory, number, self._clock(), self.instance_id)
        active.opened_ns = self._last_sync_ns = self._monotonic()
        self._active = active
        return active.file

    def _ensure_active(self) -> ActiveSegment:
        """The active segment, opening the next one if a failed rotation left none."""
        if self._active is None and self._lock_held:
            try:
                number = self._next_number()
            except PathAccessError as exc:  # the directory's read permission was taken away
                raise JournalWriteError(exc.path, exc.errno, exc.reason) from None
            self._open_segment(number)
        return self._require_active()

    def _require_active(self) -> ActiveSegment:
        if self._active is None:
            raise JournalError(f"{self.directory}: journal writer is not open")
        return self._active

    def _next_number(self) -> int:
        segments = list_segments(self.directory)
        return segments[-1].number + 1 if segments else 1
