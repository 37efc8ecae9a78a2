"""After a write or fsync error: the records not yet durable, and the failed segment's cut-back.

Linux may drop the dirty pages of a file whose fsync failed and report the next fsync as a
success (PostgreSQL's "fsyncgate", 2018), so nothing written since the last successful fsync can
be trusted to reach the disk, whatever a later fsync says. The writer therefore keeps those
records in memory (as the encoded chunks it wrote) until an fsync covering them succeeds. On an
error it cuts the failing segment back to its last fsynced size, and once the disk answers again
it makes that cut durable, seals the segment there, and writes the kept records again, with
their sequence numbers, into a fresh segment.

No record can then be on disk twice: the fresh segment is written only after an fsync of the
cut-back one succeeded, so a crash leaves the unsynced copies either in the old segment (if the
cut never reached the disk, and then the fresh segment does not exist yet) or nowhere but in the
fresh segment. Readers need no deduplication rule.

Only the first KEEP_MAX_BYTES since the last fsync are kept in memory: holding more (up to a
segment, at a high rate with `interval`) slows the write path, since the allocator can no longer
reuse the buffers. Past it, a fault reads the unsynced records back from the file instead, each
checked by its checksum and sequence number; if one does not check out (the kernel dropped its
pages), the writer stops with a CorruptionError and the next start's recovery takes over.
"""

from __future__ import annotations

import os

from recorder.errors import CorruptionError, JournalWriteError
from recorder.fsutil import fsync_dir, write_all
from recorder.journal.active import ActiveSegment, Chunk
from recorder.journal.record import FrameError, Kind, encode_footer, read_frame, record_seq_time
from recorder.log import get_logger

log = get_logger("journal")

KEEP_MAX_BYTES = 4 * 1024 * 1024


def records_in(chunks: list[Chunk]) -> int:
    return sum(chunk.records for chunk in chunks)


def cut_back(active: ActiveSegment) -> None:
    """Drop what the last successful fsync does not cover (best effort: ftruncate rarely fails).

    Done at once, so a reader or a restart after a kill does not find records that are neither
    durable nor counted, and that would come back a second time from memory.
    """
    os.ftruncate(active.fd, active.synced_size)


def retreat(active: ActiveSegment) -> None:
    """End the failed segment, durably, where its last successful fsync left it; close it.

    Raises OSError while the disk still fails; each attempt starts again from the cut, so a
    footer half-written by a failed attempt is cut away by the next. A segment of which no
    record was ever fsynced is removed instead: nothing of it was durable, and an empty sealed
    segment left per failed attempt would pile up during a long fault.
    """
    if active.synced.records == 0:
        abandon(active)
        active.file.path.unlink(missing_ok=True)
        fsync_dir(active.file.path.parent)
        return
    os.ftruncate(active.fd, active.synced_size)
    os.fsync(active.fd)
    write_all(active.fd, encode_footer(active.synced))
    os.fsync(active.fd)
    os.close(active.fd)
    active.fd = -1


def read_back(active: ActiveSegment) -> list[Chunk]:
    """The records written since the last fsync, read from the file and each checked."""
    start, name = active.synced_size, active.file.name
    fd = os.open(active.file.path, os.O_RDONLY)
    try:
        data = os.pread(fd, active.size - start, start)
    finally:
        os.close(fd)
    expected = active.synced.last_seq + 1 if active.synced.records else active.first_seq
    chunks: list[Chunk] = []
    offset = 0
    while offset < len(data):
        try:
            kind, body, end = read_frame(data, offset, start)
            if kind is Kind.FOOTER:
                break  # written by a seal whose fsync failed
            seq, time_ns = record_seq_time(kind, body)
        except FrameError as exc:
            raise CorruptionError(name, start + offset, f"unsynced record lost: {exc}") from None
        if seq != expected:
            raise CorruptionError(name, start + offset, f"unsynced record {expected} lost")
        chunks.append(Chunk(data[offset:end], seq, 1, time_ns, time_ns, kind is Kind.MESSAGE))
        offset, expected = end, expected + 1
    return chunks


def abandon(active: ActiveSegment) -> None:
    """Close a failed segment the disk never let us seal; the next writer's recovery seals it."""
    if active.fd >= 0:
        os.close(active.fd)
        active.fd = -1


class Unsynced:
    """The writer's records since its last successful fsync, and the fault that stopped it."""

    __slots__ = ("chunks", "failed", "fault", "kept_bytes", "overflowed")

    def __init__(self) -> None:
        self.chunks: list[Chunk] = []
        self.kept_bytes = 0
        self.overflowed = False  # more than KEEP_MAX_BYTES: read back from the file if need be
        self.fault: JournalWriteError | None = None
        self.failed: ActiveSegment | None = None  # the segment the fault happened in

    def keep(self, chunk: Chunk, size: int) -> None:
        if self.overflowed:
            return
        self.kept_bytes += size
        if self.kept_bytes > KEEP_MAX_BYTES:
            self.chunks.clear()
            self.overflowed = True
        else:
            self.chunks.append(chunk)

    def clear(self) -> None:
        """An fsync covered everything written: nothing to keep."""
        self.chunks.clear()
        self.kept_bytes = 0
        self.overflowed = False

    def fail(self, active: ActiveSegment, exc: OSError, call: str) -> JournalWriteError:
        """Stop on a write or fsync error: cut the segment back to its last fsync (no torn
        record, nothing unsynced stays behind) and keep its unsynced records for a resume."""
        error = JournalWriteError(active.file.name, exc.errno, f"{call}: {exc.strerror or exc}")
        if self.overflowed:
            self.chunks = read_back(active)  # before the cut; raises if one is unreadable
            self.overflowed = False
        try:
            cut_back(active)
        except OSError as undo:
            log.error("cut_back_failed", segment=active.file.name, error=str(undo))
        self.failed, self.fault = active, error
        log.error(
            "journal_fault",
            segment=active.file.name,
            call=call,
            errno=exc.errno,
            synced_bytes=active.synced_size,
            unsynced_records=records_in(self.chunks),
        )
        return error

    def retreat_failed(self) -> None:
        """The first step of a resume: seal the failed segment at its last fsync."""
        failed = self.failed
        if failed is None:
            return
        try:
            retreat(failed)
        except OSError as exc:
            raise JournalWriteError(failed.file.name, exc.errno, f"seal: {exc.strerror}") from exc
        self.failed = None

    def give_up(self, error: JournalWriteError) -> None:
        """At close, the disk still failing: the kept records are lost (and were never counted)."""
        log.error("unsynced_records_lost", records=records_in(self.chunks), error=str(error))
        if self.failed is not None:
            abandon(self.failed)
            self.failed = None
