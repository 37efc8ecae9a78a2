"""A journal workload that runs into a disk fault: the product's writer, appends going on while
fsync (or writev) fails for a stretch, as the daemon's writer thread would drive it.

Run as `python workload.py DIR COUNT CALL ERRNO FIRST LAST` in a child process with the fault
shim (and the crash simulator's logging shim) preloaded: from message FIRST to message LAST the
shim fails CALL with ERRNO. A message the writer did not take is skipped (core mode drops it),
one it took is kept by it and written again once the fault clears.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from recorder.errors import JournalWriteError
from recorder.journal.options import WriterOptions
from recorder.journal.record import Incoming
from recorder.journal.writer import JournalWriter


def set_faults(text: str) -> None:
    control = Path(os.environ["FAULTFS_CONTROL"])
    tmp = control.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(control)


def main(directory: Path, count: int, call: str, errno_name: str, first: int, last: int) -> None:
    # fsync on the workload's own schedule, every third append (as the daemon's housekeeping
    # would): a fault finds fsynced records and unsynced ones in the live segment.
    options = WriterOptions(segment_max_bytes=4096, fsync_interval_ns=10**15)
    writer = JournalWriter(directory, options)
    writer.open()
    faulted = False
    for index in range(count):
        # Start the fault where the next append fits its segment (less than half full), so it
        # fails an append's own fsync or write rather than a seal, with one record unsynced.
        active = writer.active_segment
        roomy = active is not None and active.path.stat().st_size < options.segment_max_bytes // 2
        if first <= index < last and not faulted and roomy and index % 3 == 1:
            set_faults(f"{call}={errno_name}\n")
            faulted = True
        elif index == last:
            set_faults("")
        payload = b'{"kind":"Pod","n":%d}' % index + b"x" * 300
        # Not taken (the writer is stopped by the fault): skipped, as core mode drops it.
        with contextlib.suppress(JournalWriteError):
            writer.append_messages(
                [Incoming(index, "meshery.meshsync.core", "", None, payload, None)]
            )
            if index % 3 == 2:
                writer.sync()
    writer.close()


if __name__ == "__main__":
    directory, count, call, errno_name, first, last = sys.argv[1:7]
    main(Path(directory), int(count), call, errno_name, int(first), int(last))
