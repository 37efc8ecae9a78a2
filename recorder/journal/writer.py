"""The journal writer: append-only segments, rotation, fsync policy, retention, compression."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recorder import __version__
from recorder.errors import JournalError, JournalWriteError, PathAccessError
from recorder.fsutil import write_all
from recorder.journal.active import ActiveSegment, Chunk, create_segment
from recorder.journal.lock import DirectoryLock
from recorder.journal.options import Compression, FsyncPolicy, WriterOptions
from recorder.journal.postseal import PostSeal
from recorder.journal.record import (
    FOOTER_SIZE,
    Incoming,
    Marker,
    MarkerType,
    encode_footer,
    encode_marker,
    encode_message_parts,
    join_parts,
)
from recorder.journal.recovery import Recovery, recover
from recorder.journal.retention import SteadyNow
from recorder.journal.segment import SegmentFile, ensure_dir, list_segments
from recorder.journal.unsynced import Unsynced, abandon, records_in
from recorder.log import get_logger

log = get_logger("journal")


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
        self._active: ActiveSegment | None = None
        self._next_seq = 1
        self._unsynced = Unsynced()  # what a failed fsync would lose; see unsynced.py
        # The last sequence number as durable as the fsync policy makes it (`never`: written).
        self.durable_seq = 0
        self._dirty = False
        self._last_sync_ns = 0
        self._fsync_observer = fsync_observer
        self._post_seal = PostSeal(
            directory,
            self.options.compression is Compression.ZSTD,
            self.options.retention,
            self._steady_now,
            self._active_facts,
            on_sealed=on_sealed,
            may_delete=may_delete,
        )
        self.recovery: Recovery | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def open(self, started_fields: dict[str, Any] | None = None) -> Recovery:
        """Lock the directory, repair what a crashed writer left, start a new segment."""
        ensure_dir(self.directory)
        self._lock.acquire()
        try:
            recovery = recover(self.directory)
            self._next_seq = recovery.previous_last_seq + 1
            self.durable_seq = recovery.previous_last_seq
            self._open_segment(self._next_number())
            if recovery.clean is False:
                last_seq = recovery.previous_last_seq
                fields = {"clean": False, "detected": "at restart", "last_seq": last_seq}
                self.append_marker(MarkerType.STOPPED, fields)
            instance = {"instance": self.instance_id.hex(), "pid": os.getpid()}
            fields = {**instance, "version": __version__, **(started_fields or {})}
            self.append_marker(MarkerType.STARTED, fields)
        except BaseException:
            self._lock.release()
            raise
        self.recovery = recovery
        return recovery

    def close(self, *, clean: bool = True, fields: dict[str, Any] | None = None) -> None:
        """Write the stop marker, seal and fsync the segment, finish background work, unlock."""
        if not self._lock.held:
            return
        try:
            self._resume_or_give_up()
            if self._active is not None:
                self._close_active(clean, fields or {})
        finally:
            self._post_seal.shutdown()
            self._lock.release()

    def _close_active(self, clean: bool, fields: dict[str, Any]) -> None:
        try:
            self.append_marker(MarkerType.STOPPED, {"clean": clean, **fields})
            self._seal()
            return
        except JournalWriteError as exc:
            log.error("segment_not_sealed", error=str(exc))
        # One more try; else the segment stays cut back to its last fsync, for the next recovery.
        self._resume_or_give_up()
        if self._active is not None:
            self._resume_or_give_up(self._seal)

    def _resume_or_give_up(self, then: Callable[[], None] | None = None) -> None:
        try:
            self.resume()
            if then is not None:
                then()
        except JournalWriteError as exc:
            self._unsynced.give_up(exc)

    def abandon(self) -> None:
        """Drop the files as a crash would (no marker, no seal, no fsync): for tests and repair."""
        for active in (self._active, self._unsynced.failed):
            if active is not None:
                abandon(active)
        self._active = self._unsynced.failed = None
        self._post_seal.shutdown()
        self._lock.release()

    # -- appending --------------------------------------------------------------------------

    @property
    def next_seq(self) -> int:
        return self._next_seq

    @property
    def fault(self) -> JournalWriteError | None:
        """The write or fsync error that stopped the writer, until resume() succeeds."""
        return self._unsynced.fault

    @property
    def active_segment(self) -> SegmentFile | None:
        return self._active.file if self._active else None

    def append_messages(self, items: list[Incoming]) -> int:
        """Append a batch of messages; returns the sequence number of the last one.

        On JournalWriteError the first `written` are kept (resume() writes them again if need
        be); the others were not taken.
        """
        if not items:
            return self._next_seq - 1
        first_seq = self._next_seq
        try:
            self._append_messages(items)
        except JournalWriteError as exc:
            exc.written = self._next_seq - first_seq
            raise
        return self._next_seq - 1

    def _append_messages(self, items: list[Incoming]) -> None:
        if self.fault is not None:
            self.resume()
        parts = encode_message_parts(self._next_seq, items)
        size = sum(map(len, parts))
        active = self._ensure_active()
        if active.size + size <= self.options.segment_max_bytes - FOOTER_SIZE:
            # The common case: the whole batch fits in the active segment; gathered writes,
            # no copy into one buffer.
            earliest = min(item.time_ns for item in items)
            latest = max(item.time_ns for item in items)
            self._append_chunk(
                active, Chunk(parts, self._next_seq, len(items), earliest, latest, True)
            )
            self._after_write()
        else:
            times = [item.time_ns for item in items]
            self._append_from(join_parts(parts), times, messages=True)

    def append_marker(self, marker_type: MarkerType, fields: dict[str, Any] | None = None) -> int:
        """Append a marker; on JournalWriteError `written` (0 or 1) says whether it was kept."""
        first_seq = self._next_seq
        try:
            if self.fault is not None:
                self.resume()
            now = self._clock()
            frame = encode_marker(Marker(self._next_seq, now, marker_type, fields or {}))
            self._append_from([frame], [now], messages=False)
        except JournalWriteError as exc:
            exc.written = self._next_seq - first_seq
            raise
        return self._next_seq - 1

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
            data, seq, ends = b"".join(frames[start:end]), self._next_seq, times[start:end]
            self._append_chunk(
                active, Chunk(data, seq, end - start, min(ends), max(ends), messages)
            )
            start = end
            if start < len(frames):
                self.rotate("size")
        self._after_write()

    def _append_chunk(self, active: ActiveSegment, chunk: Chunk) -> None:
        """Write whole records, keep them until fsynced, and count them as appended."""
        size = self._put(active, chunk)
        self._next_seq += chunk.records
        if self.options.fsync is FsyncPolicy.NEVER:
            active.mark_synced()  # the policy promises nothing past the write
            self.durable_seq = self._next_seq - 1
        else:
            self._unsynced.keep(chunk, size)

    def _put(self, active: ActiveSegment, chunk: Chunk) -> int:
        size = self._write(active, chunk.data)
        active.account(chunk, size)
        return size

    def _write(self, active: ActiveSegment, data: bytes | list[bytes]) -> int:
        try:
            size = write_all(active.fd, data)
        except OSError as exc:
            raise self._fail(active, exc, "write") from exc
        self._dirty = True
        return size

    def _fail(self, active: ActiveSegment, exc: OSError, call: str) -> JournalWriteError:
        self._active = None
        return self._unsynced.fail(active, exc, call)

    def resume(self) -> None:
        """After a fault: seal the failed segment at its last fsync, write the records it lost
        into a fresh segment and fsync it; raises JournalWriteError while the disk still fails."""
        unsynced = self._unsynced
        if unsynced.fault is None:
            return
        unsynced.retreat_failed()
        self._open_segment(self._next_number())
        active = self._require_active()
        for chunk in unsynced.chunks:
            self._put(active, chunk)
        self._fsync(active)
        log.info("journal_resumed", segment=active.file.name, rewritten=records_in(unsynced.chunks))
        unsynced.fault = None
        self._committed(active)

    # -- durability -------------------------------------------------------------------------

    def _after_write(self) -> None:
        policy = self.options.fsync
        if policy is FsyncPolicy.ALWAYS:
            self.sync()
        elif policy is FsyncPolicy.INTERVAL:
            self.sync_if_due()

    def sync_if_due(self) -> None:
        if self.fault is not None:
            return  # the caller retries resume() on its own schedule
        if self._dirty and self._monotonic() - self._last_sync_ns >= self.options.fsync_interval_ns:
            self.sync()

    def sync(self) -> None:
        """Make every appended record durable now."""
        if self.fault is not None:
            self.resume()
        active = self._active
        if active is None or not self._dirty:
            return
        self._fsync(active)
        self._committed(active)

    def _fsync(self, active: ActiveSegment) -> None:
        started = time.perf_counter()
        try:
            os.fsync(active.fd)
        except OSError as exc:
            raise self._fail(active, exc, "fsync") from exc
        if self._fsync_observer is not None:
            self._fsync_observer(time.perf_counter() - started)

    def _committed(self, active: ActiveSegment) -> None:
        """An fsync of the active segment succeeded: everything appended so far is durable."""
        active.mark_synced()
        self._unsynced.clear()
        self.durable_seq = self._next_seq - 1
        self._dirty = False
        self._last_sync_ns = self._monotonic()

    # -- rotation ---------------------------------------------------------------------------

    def rotate_if_old(self) -> bool:
        active = self._active
        if active is None or not active.records or self.fault is not None:
            return False
        if self._monotonic() - active.opened_ns < self.options.segment_max_age_ns:
            return False
        self.rotate("age")
        return True

    def rotate(self, reason: str = "demand") -> SegmentFile | None:
        """Seal the active segment and open the next; a segment with no records is kept."""
        if self.fault is not None:
            self.resume()
        active = self._require_active()
        if not active.records:
            return None
        number = active.file.number
        with self._post_seal.lock:
            self._seal()
            log.info("segment_rotated", segment=number, reason=reason)
            return self._open_segment(number + 1)

    def _seal(self) -> None:
        active = self._require_active()
        active.size += self._write(active, encode_footer(active.footer()))
        self._fsync(active)
        self._committed(active)
        os.close(active.fd)
        self._active = None
        self._post_seal.submit(active.file)

    def _active_facts(self) -> tuple[int | None, int]:
        active = self._active
        return (active.file.number, active.size) if active else (None, 0)

    def apply_retention(self) -> list[str]:
        """Delete the oldest sealed segments beyond the retention bounds; never the active one."""
        return self._post_seal.apply_retention()

    def wait_background(self) -> None:
        self._post_seal.wait()

    def _open_segment(self, number: int) -> SegmentFile:
        active = create_segment(self.directory, number, self._clock(), self.instance_id)
        active.opened_ns = self._last_sync_ns = self._monotonic()
        self._active = active
        return active.file

    def _ensure_active(self) -> ActiveSegment:
        """The active segment, opening the next one if a failed rotation left none."""
        if self._active is None and self._lock.held:
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
