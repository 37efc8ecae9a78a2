"""The archiver: copies every sealed segment to the store once, in the background.

Threads, not the event loop: uploads read whole segments and hash them, and the daemon's loop
must never wait on a slow store. Resuming is by comparison, not by a local ledger: at start the
index object says what is archived, the directory what is sealed; the difference is uploaded.
A segment counts as archived (and may be deleted locally) only once an index naming it is
stored, so a crash between an upload and its index leaves the segment local and re-uploaded
under the same key, never lost and never stored under a second name.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from recorder.archive.index import ArchiveIndex, IndexEntry, decode_index
from recorder.archive.metrics import ArchiveStatus, render_archive_metrics
from recorder.archive.store import ArchiveStore
from recorder.errors import ArchiveError, JournalError, SegmentGoneError
from recorder.journal.segment import (
    SegmentFile,
    list_segments,
    open_segment,
    summarize_open,
)
from recorder.log import get_logger

log = get_logger("archive")

INDEX_INTERVAL_S = 5.0


@dataclass(frozen=True, slots=True)
class ArchiveOptions:
    name: str  # the journal's name under the archive prefix: keys never collide across journals
    concurrency: int = 2
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    drain_timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class _Waiting:
    segment: SegmentFile
    size: int
    since: float  # wall time the segment was sealed (its mtime)


def md5_hex(data: bytes) -> str:
    """MD5: what S3 gives as a single put's entity tag, so one hash both verifies the upload
    and lets restore check the object (integrity, not security: the store is trusted)."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def segment_key(name: str, number: int) -> str:
    """One key per segment, compressed or not, so a segment is never stored under two names."""
    return f"{name}/segments/{number:08d}"


def index_key(name: str) -> str:
    return f"{name}/index.json"


class Archiver:
    """Background uploads of one journal's sealed segments to one archive location."""

    def __init__(
        self,
        store: ArchiveStore,
        directory: Path,
        options: ArchiveOptions,
        *,
        on_archived: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.directory = directory
        self.options = options
        self._on_archived = on_archived
        self._index = ArchiveIndex(options.name)
        self._stored: set[int] = set()  # numbers named by an index object in the store
        self._waiting: dict[int, _Waiting] = {}
        self._busy: dict[int, _Waiting] = {}  # taken by a worker, maybe retrying
        self._errors: dict[str, int] = {}
        self._failing: str | None = None  # the failure kind last logged, until a success
        self._cond = threading.Condition()
        self._index_lock = threading.Lock()
        self._stop = threading.Event()
        # Uploads wait for the index: one begun before it loads would be overwritten by it,
        # and its segment uploaded a second time.
        self._resumed = False
        self._threads: list[threading.Thread] = []
        self._index_stored_at = 0.0
        self._hasher = ThreadPoolExecutor(options.concurrency, thread_name_prefix="archive-hash")

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Load the index and queue what is sealed but not archived, then upload, all in the
        background: a store that is down at start delays archiving, never recording."""
        starter = threading.Thread(target=self._resume, name="archive-resume", daemon=True)
        self._threads.append(starter)
        for worker in range(self.options.concurrency):
            thread = threading.Thread(target=self._work, name=f"archive-{worker}", daemon=True)
            self._threads.append(thread)
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Give the backlog `drain_timeout_s` to finish, then leave the rest for the next start."""
        deadline = time.monotonic() + self.options.drain_timeout_s
        with self._cond:
            while (
                self._waiting or self._busy or self._index_lock.locked()
            ) and time.monotonic() < deadline:
                self._cond.wait(min(0.2, max(0.0, deadline - time.monotonic())))
            left = len(self._waiting) + len(self._busy)
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=max(0.1, deadline - time.monotonic()))
        self._hasher.shutdown(wait=False)
        log.info("archive_stopped", left_waiting=left, archived=len(self._stored))

    # -- hooks for the journal writer -------------------------------------------------------

    def segment_sealed(self, segment: SegmentFile) -> None:
        """Queue a segment the writer just sealed (and compressed, when that is on)."""
        self._enqueue(segment)

    def may_delete(self, segment: SegmentFile) -> bool:
        """Local retention may delete only what a stored index names."""
        with self._cond:
            return segment.number in self._stored

    def render_metrics(self) -> str:
        return render_archive_metrics(self.status())

    def status(self) -> ArchiveStatus:
        with self._cond:
            # A segment a worker is retrying waits as much as one not yet taken.
            waiting = [*self._waiting.values(), *self._busy.values()]
            errors = dict(self._errors)
            archived = len(self._stored)
        oldest = min((item.since for item in waiting), default=None)
        return ArchiveStatus(
            waiting_segments=len(waiting),
            waiting_bytes=sum(item.size for item in waiting),
            oldest_waiting_age_s=max(0.0, time.time() - oldest) if oldest is not None else 0.0,
            archived_segments=archived,
            errors=errors,
        )

    # -- resuming ---------------------------------------------------------------------------

    def _resume(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                index = self._load_index()
                break
            except ArchiveError as exc:
                self._failed(exc)
                attempt += 1
                self._stop.wait(self._backoff(attempt))
        else:
            return
        with self._cond:
            self._index = index
            self._stored = set(index.entries)
            for number in self._stored:
                self._waiting.pop(number, None)
        for segment in list_segments(self.directory):
            self._enqueue(segment)
        with self._cond:
            self._resumed = True
            self._cond.notify_all()
        log.info("archive_resumed", archived=len(index.entries), waiting=len(self._waiting))

    def _load_index(self) -> ArchiveIndex:
        key = index_key(self.options.name)
        try:
            return decode_index(self.store.get(key), self.store.where(key))
        except ArchiveError as exc:
            if exc.kind == "not_found":
                return ArchiveIndex(self.options.name)
            raise

    def _enqueue(self, segment: SegmentFile) -> None:
        try:
            stat = segment.path.stat()
        except FileNotFoundError:
            return  # compressed or deleted since it was listed; the sealed hook brings it back
        with self._cond:
            if segment.number in self._stored or segment.number in self._busy:
                return
            self._waiting[segment.number] = _Waiting(segment, stat.st_size, stat.st_mtime)
            self._cond.notify()

    # -- uploading --------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                while not (self._waiting and self._resumed) and not self._stop.is_set():
                    self._cond.wait()
                if self._stop.is_set():
                    return
                number = min(self._waiting)
                item = self._waiting.pop(number)
                self._busy[number] = item
            try:
                self._upload_with_retries(item.segment)
            finally:
                with self._cond:
                    self._busy.pop(number, None)
                    self._cond.notify_all()

    def _upload_with_retries(self, segment: SegmentFile) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                archived = self._upload(segment)
            except ArchiveError as exc:
                self._failed(exc)
                self._index_unstored()
                attempt += 1
                self._stop.wait(self._backoff(attempt))
                continue
            except SegmentGoneError:
                log.warning("archive_segment_gone", segment=segment.number)
                return
            if archived:
                self._succeeded(segment)
            else:  # not sealed: it may still end a backlog whose index is left to it
                try:
                    self._finish(segment.number)
                except ArchiveError as exc:
                    self._failed(exc)
            return
        # Stopped mid-retry: the next start finds the segment sealed and not in the index.

    def _upload(self, segment: SegmentFile) -> bool:
        """Upload one sealed segment and store the index naming it; False if it is not sealed."""
        opened, handle = open_segment(segment)
        with handle:
            summary = summarize_open(opened, handle)
            data = handle.readall()
        footer = summary.footer
        if footer is None:
            return False  # the active segment, or one recovery will seal and hand back
        key = segment_key(self.options.name, segment.number)
        # Hashed while the put is on the wire (hashlib and obstore both release the GIL).
        digest = self._hasher.submit(md5_hex, data)
        tag = self.store.put(key, data)
        md5 = digest.result()
        self._verify(key, data, tag, md5)
        entry = IndexEntry(
            number=segment.number,
            name=opened.name,
            size=len(data),
            md5=md5,
            first_seq=footer.first_seq,
            last_seq=footer.last_seq,
            first_time_ns=footer.first_time_ns,
            last_time_ns=footer.last_time_ns,
            records=footer.records,
            messages=footer.messages,
        )
        self._store_index(entry)
        return True

    def _verify(self, key: str, data: bytes, tag: str | None, md5: str) -> None:
        """The store's MD5 entity tag when it gives one (S3 single puts), else a read-back."""
        clean = (tag or "").strip('"')
        if len(clean) == 32 and all(c in "0123456789abcdef" for c in clean):
            if clean == md5:
                return
        elif self.store.get(key) == data:
            return
        raise ArchiveError(key, "mismatch", "stored object differs from the segment")

    def _store_index(self, entry: IndexEntry) -> None:
        """Store an index naming `entry`, or leave that to the last upload of a backlog."""
        with self._cond:
            self._index.add(entry)
        self._finish(entry.number)

    def _finish(self, number: int) -> None:
        """One index put per backlog rather than per segment (each is a request, and the
        index grows), made by whichever upload ends it; at least every INDEX_INTERVAL_S, so a
        long backlog still frees local space."""
        with self._cond:
            # Leaving `_busy` here, under the lock, makes the last upload of a backlog see it
            # empty: two finishing together cannot both leave the index to the other.
            self._busy.pop(number, None)
            backlog = bool(self._waiting or self._busy)
            due = time.monotonic() - self._index_stored_at >= INDEX_INTERVAL_S
        if backlog and not due:
            return
        self._put_index(number if number in self._index.entries else None)

    def _put_index(self, number: int | None) -> None:
        with self._index_lock:
            with self._cond:
                numbers = set(self._index.entries)
                if numbers <= self._stored or (number is not None and number in self._stored):
                    return  # another worker's index put, made while we waited, named it
                data = self._index.encode()
            self.store.put(index_key(self.options.name), data)
            with self._cond:
                self._stored |= numbers
                self._index_stored_at = time.monotonic()
        self._archived()

    def _index_unstored(self) -> None:
        """After a failure: store what earlier uploads left to this one, if the store lets us."""
        with contextlib.suppress(ArchiveError):  # counted and logged by the failure before
            self._put_index(None)

    def _succeeded(self, segment: SegmentFile) -> None:
        with self._cond:
            recovered, self._failing = self._failing, None
        if recovered is not None:
            log.info("archive_recovered", after=recovered)
        log.info("segment_uploaded", segment=segment.number)

    def _archived(self) -> None:
        """A stored index named more segments: local retention may now delete them."""
        if self._on_archived is not None:
            try:
                self._on_archived()
            except JournalError as exc:
                log.warning("retention_after_archive_failed", error=str(exc))

    def _failed(self, exc: ArchiveError) -> None:
        """Count every failure; log a failure class once, not once per retry."""
        with self._cond:
            self._errors[exc.kind] = self._errors.get(exc.kind, 0) + 1
            first = self._failing != exc.kind
            self._failing = exc.kind
        if first:
            log.error("archive_upload_failed", kind=exc.kind, error=str(exc))

    def _backoff(self, attempt: int) -> float:
        ceiling: float = min(
            self.options.backoff_max_s, self.options.backoff_initial_s * 2**attempt
        )
        return ceiling * random.uniform(0.5, 1.0)
