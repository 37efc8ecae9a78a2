"""Work on a segment once it is sealed, off the writer's thread: zstd compression, the
`on_sealed` hook (an archive's upload), retention (sparing what `may_delete` refuses)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from recorder.journal.retention import RetentionPolicy, enforce_retention
from recorder.journal.segment import SegmentFile, compress_segment
from recorder.log import get_logger

log = get_logger("journal")

# The active segment's number and size, or (None, 0) between segments.
ActiveFacts = Callable[[], tuple[int | None, int]]


class PostSeal:
    """One background thread compressing sealed segments and applying retention after each."""

    def __init__(
        self,
        directory: Path,
        compress: bool,
        retention: RetentionPolicy,
        clock: Callable[[], int],
        active: ActiveFacts,
        *,
        on_sealed: Callable[[SegmentFile], None] | None = None,
        may_delete: Callable[[SegmentFile], bool] | None = None,
    ) -> None:
        self.directory = directory
        self.compress = compress
        self.retention = retention
        self._clock = clock
        self._active = active
        self._on_sealed = on_sealed
        self._may_delete = may_delete
        # The writer holds it from sealing a segment until the next is active, so retention
        # never sees the writer between segments and takes it for a closed one.
        self.lock = threading.Lock()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="journal-post-seal")
        self._pending: list[Future[None]] = []

    def submit(self, sealed: SegmentFile) -> None:
        self._pending = [future for future in self._pending if not future.done()]
        self._pending.append(self._executor.submit(self._after_seal, sealed))

    def _after_seal(self, sealed: SegmentFile) -> None:
        try:
            if self.compress:
                sealed = compress_segment(sealed)
                log.info("segment_compressed", segment=sealed.number)
            if self._on_sealed is not None:
                self._on_sealed(sealed)  # the compressed file, as it will stay
            self.apply_retention()
        except Exception as exc:  # noqa: BLE001 - background work must never take the writer down
            log.error("post_seal_failed", segment=sealed.number, error=repr(exc))

    def apply_retention(self) -> list[str]:
        """Delete the oldest sealed segments beyond the retention bounds; never the active one."""
        if not self.retention.enabled:
            return []
        with self.lock:
            number, size = self._active()
            return enforce_retention(
                self.directory, self.retention, number, size, self._clock(), self._may_delete
            )

    def wait(self) -> None:
        for future in list(self._pending):
            future.result()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)
