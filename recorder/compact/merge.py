"""Several journals (one per cluster or per recorder) compacted into one snapshot."""

from __future__ import annotations

import heapq
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from recorder.compact.model import CompactOptions
from recorder.compact.run import (
    CompactRequest,
    CompactResult,
    WriteProgress,
    log_damage,
    write_outputs,
)
from recorder.compact.state import Compactor
from recorder.errors import UsageError
from recorder.journal.query import Query
from recorder.journal.reader import JournalReader
from recorder.journal.record import Record


def run_merged_compaction(
    request: CompactRequest,
    directories: list[Path],
    stdout: IO[bytes] | None = None,
    writing: WriteProgress | None = None,
) -> CompactResult:
    """Fold every journal's records in receive-time order into one state keyed by (cluster,
    uid), so for an object that several journals saw, the newest event wins.

    Sequence numbers are per journal, so no sequence bound, checkpoint or MeshSync pair
    (whose -extended file follows one journal's sequence) applies to a merge.
    """
    if request.until_seq is not None or request.checkpoint or request.format == "meshsync":
        raise UsageError(
            "a merge of several journals takes --until TIME, not a seq, and no --checkpoint "
            "or --format meshsync"
        )
    compactor = Compactor(
        CompactOptions(
            until_ns=request.until_ns, prune_ghosts=request.prune_ghosts, idle_ns=request.idle_ns
        )
    )
    readers = [JournalReader(directory, query=Query(), markers=True) for directory in directories]
    compactor.feed_many(heapq.merge(*map(_records, readers), key=_receive_time))
    if request.until_ns is not None:
        compactor.close_idle_epoch(request.until_ns)
    stats = compactor.stats()
    result = CompactResult(
        stats, messages_read=stats.messages, object_events_read=stats.object_events
    )
    result.gaps = [gap for reader in readers for gap in reader.stats.gaps]
    compactor.gaps += [gap.describe() for gap in result.inside_gaps]
    for reader in readers:
        log_damage(reader)
    out = stdout or sys.stdout.buffer
    write_outputs(request, compactor, stats, None, result, out, writing)
    return result


def _records(reader: JournalReader) -> Iterator[Record]:
    for _position, record in reader:
        yield record


def _receive_time(record: Record) -> int:
    return record.time_ns
