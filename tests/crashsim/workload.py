"""A journal workload for the shim to record: the product's writer with rotation, zstd, retention.

Run as `python workload.py DIR COUNT POLICY` in a child process with the shim preloaded.
"""

from __future__ import annotations

import sys
from pathlib import Path

from recorder.journal.options import Compression, FsyncPolicy, WriterOptions
from recorder.journal.record import Incoming
from recorder.journal.retention import RetentionPolicy
from recorder.journal.writer import JournalWriter


def main(directory: Path, count: int, policy: str) -> None:
    """Append `count` messages in small batches, then close (or abandon on `kill`)."""
    options = WriterOptions(
        segment_max_bytes=2048,
        fsync=FsyncPolicy(policy),
        fsync_interval_ns=0 if policy == "always" else 2_000_000,
        compression=Compression.ZSTD,
        retention=RetentionPolicy(max_segments=3),
    )
    writer = JournalWriter(directory, options)
    writer.open()
    for index in range(count):
        payload = b'{"kind":"Pod","n":%d}' % index + b"x" * 300
        writer.append_messages([Incoming(index, "meshery.meshsync.core", "", None, payload, None)])
    writer.wait_background()
    writer.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
