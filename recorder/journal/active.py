"""The segment the writer appends to: its open descriptor and the running footer facts."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from recorder.errors import JournalWriteError
from recorder.fsutil import fsync_dir
from recorder.journal.record import HEADER_SIZE, Footer, SegmentHeader, encode_header
from recorder.journal.segment import SegmentFile, create_segment_file, segment_name


class Chunk(NamedTuple):
    """Whole records written with one call: their bytes and what the footer needs of them."""

    data: bytes | list[bytes]
    first_seq: int
    records: int
    earliest_ns: int
    latest_ns: int
    messages: bool


@dataclass(slots=True)
class ActiveSegment:
    file: SegmentFile
    fd: int
    created_ns: int  # wall clock, for the header
    opened_ns: int = 0  # monotonic clock, for the segment's age
    size: int = HEADER_SIZE
    records: int = 0
    messages: int = 0
    first_seq: int = 0
    last_seq: int = 0
    first_time_ns: int = 0
    last_time_ns: int = 0
    # Where the last successful fsync left the file: all a failed fsync lets us trust.
    synced_size: int = HEADER_SIZE
    synced: Footer = field(default_factory=lambda: Footer(0, 0, 0, 0, 0, 0))

    def account(self, chunk: Chunk, size: int) -> None:
        """Count a written chunk in the footer facts.

        The footer keeps the earliest and latest receive time, not the first and last record's:
        the wall clock can step back, and time filters and retention must still be right.
        """
        self.size += size
        if not self.records:
            self.first_seq = chunk.first_seq
            self.first_time_ns, self.last_time_ns = chunk.earliest_ns, chunk.latest_ns
        else:
            self.first_time_ns = min(self.first_time_ns, chunk.earliest_ns)
            self.last_time_ns = max(self.last_time_ns, chunk.latest_ns)
        self.records += chunk.records
        self.messages += chunk.records if chunk.messages else 0
        self.last_seq = chunk.first_seq + chunk.records - 1

    def mark_synced(self) -> None:
        self.synced_size = self.size
        self.synced = self.footer()

    def footer(self) -> Footer:
        return Footer(
            self.first_seq,
            self.last_seq,
            self.first_time_ns,
            self.last_time_ns,
            self.records,
            self.messages,
        )


def create_segment(
    directory: Path, number: int, created_ns: int, instance_id: bytes
) -> ActiveSegment:
    """Create segment `number` with its header, durable (file and directory entry) on return."""
    path = directory / segment_name(number)
    fd = create_segment_file(path)
    header = encode_header(SegmentHeader(number, created_ns, instance_id))
    try:
        os.write(fd, header)
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise JournalWriteError(path.name, exc.errno, exc.strerror or str(exc)) from exc
    fsync_dir(directory)
    return ActiveSegment(SegmentFile(number, path), fd, created_ns)
