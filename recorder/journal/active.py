"""The segment the writer appends to: its open descriptor and the running footer facts."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from recorder.errors import JournalWriteError
from recorder.fsutil import fsync_dir
from recorder.journal.record import HEADER_SIZE, Footer, SegmentHeader, encode_header
from recorder.journal.segment import SegmentFile, create_segment_file, segment_name


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
