"""Reading an archived journal in place: its segments fetched one at a time, just ahead of the
reader, into a scratch directory that never holds more than the one being read and the next.

The reading commands see a journal directory (`journal.source`): listing it gives the
index's segments, and each is fetched (checked against the index's MD5) when a reader comes
to it, while the following one is fetched in the background; each is deleted once read.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from recorder.archive.index import IndexEntry
from recorder.archive.restore import fetch_segment
from recorder.archive.store import ArchiveStore
from recorder.errors import ArchiveError
from recorder.journal.record import Footer
from recorder.journal.segment import SegmentFile, list_segments
from recorder.journal.source import attached
from recorder.log import get_logger

log = get_logger("archive")


class ArchiveStream:
    """A `journal.source.SegmentSource` over an archived journal's chosen segments."""

    def __init__(
        self, store: ArchiveStore, name: str, entries: list[IndexEntry], directory: Path
    ) -> None:
        self.store = store
        self.name = name
        self.directory = directory
        self._entries = {entry.number: entry for entry in entries}
        self._following = dict(itertools.pairwise(entry.number for entry in entries))
        self._fetcher = ThreadPoolExecutor(1, thread_name_prefix="archive-fetch")
        self._fetches: dict[int, Future[None]] = {}
        self._users: dict[int, int] = {}  # segments brought in, by how many readers hold each
        self._lock = threading.Lock()
        self.fetched = 0
        self.peak_on_disk = 0  # the most segment files the directory held at once

    def listing(self) -> list[SegmentFile]:
        return [self._file(entry) for entry in self._entries.values()]

    def bring(self, segment: SegmentFile) -> None:
        with self._lock:
            self._users[segment.number] = self._users.get(segment.number, 0) + 1
        try:
            self._fetch(segment.number).result()
        except BaseException:
            self.release(segment)
            raise
        following = self._following.get(segment.number)
        if following is not None:
            self._fetch(following)
        self._drop_unwanted(segment.number, following)

    def release(self, segment: SegmentFile) -> None:
        with self._lock:
            users = self._users.get(segment.number, 0) - 1
            if users > 0:
                self._users[segment.number] = users
                return
            self._users.pop(segment.number, None)
            fetch = self._fetches.pop(segment.number, None)
        if fetch is not None and fetch.done():
            self._file(self._entries[segment.number]).path.unlink(missing_ok=True)

    def footer(self, segment: SegmentFile) -> tuple[Footer, int] | None:
        entry = self._entries.get(segment.number)
        if entry is None or entry.messages is None:
            return None  # an index written before it kept message counts
        return entry.footer, entry.size

    def close(self) -> None:
        self._fetcher.shutdown(wait=True, cancel_futures=True)
        log.debug("archive_stream_closed", fetched=self.fetched, peak_on_disk=self.peak_on_disk)

    def _fetch(self, number: int) -> Future[None]:
        """The fetch of segment `number`: the one under way or done, or a new one."""
        with self._lock:
            fetch = self._fetches.get(number)
            if fetch is None:
                fetch = self._fetches[number] = self._fetcher.submit(self._download, number)
            return fetch

    def _drop_unwanted(self, current: int, following: int | None) -> None:
        """Forget fetches ahead of a read that went elsewhere (stopped early, or began again),
        so they never add to what is on disk."""
        with self._lock:
            stale = [
                (number, fetch)
                for number, fetch in self._fetches.items()
                if number not in (current, following) and number not in self._users
            ]
            for number, _fetch in stale:
                del self._fetches[number]
        for number, fetch in stale:
            if fetch.cancel():
                continue
            with contextlib.suppress(ArchiveError):
                fetch.result()  # a failure of a fetch no read wants is no error
            self._file(self._entries[number]).path.unlink(missing_ok=True)

    def _download(self, number: int) -> None:
        entry = self._entries[number]
        data = fetch_segment(self.store, self.name, entry)
        path = self._file(entry).path
        # Scratch space, never a journal to keep: a rename so no reader sees half a file,
        # and no fsync.
        partial = path.with_name(f".{path.name}.tmp")
        partial.write_bytes(data)
        partial.replace(path)
        on_disk = len(list_segments(self.directory))
        with self._lock:
            self.fetched += 1
            self.peak_on_disk = max(self.peak_on_disk, on_disk)
        log.debug("segment_fetched", segment=number, bytes=len(data), on_disk=on_disk)

    def _file(self, entry: IndexEntry) -> SegmentFile:
        return SegmentFile(entry.number, self.directory / entry.name)


@contextlib.contextmanager
def streamed_journal(
    store: ArchiveStore, name: str, entries: list[IndexEntry], directory: Path
) -> Iterator[ArchiveStream]:
    """`directory` (empty, made by the caller) read as the archived journal's `entries`."""
    stream = ArchiveStream(store, name, entries, directory)
    try:
        with attached(directory, stream):
            yield stream
    finally:
        stream.close()
