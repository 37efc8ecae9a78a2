"""`tail`: the last N items of a journal, then (following) new ones as the recorder writes them.

The last N are found from the newest segment backwards, so the answer costs the segments it
shows, not the journal. Following re-lists the directory on each poll and reads on from the
last sequence number shown: a segment sealed, compressed (renamed to `.seg.zst`) or deleted
between two polls is found again under its new name, or skipped, and nothing is shown twice.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from recorder.errors import PathAccessError
from recorder.investigate.events import EventFilter, Item, items_of
from recorder.journal.query import Query
from recorder.journal.reader import JournalReader, Position
from recorder.journal.record import Record
from recorder.journal.segment import SegmentFile, summarize
from recorder.log import get_logger

log = get_logger("investigate")

POLL_S: Final = 0.2


@dataclass(frozen=True, slots=True)
class TailRequest:
    directory: Path
    count: int = 10
    subjects: tuple[str, ...] = ()
    objects: EventFilter = field(default_factory=EventFilter)


def last_items(request: TailRequest) -> tuple[list[Item], int]:
    """The last `count` items, oldest first, and the last sequence number read (0: none)."""
    reader = JournalReader(request.directory, query=Query(subjects=request.subjects), markers=True)
    segments = reader.segments()
    found: deque[Item] = deque()
    last_seq = 0
    for segment in reversed(segments):
        if len(found) >= request.count and last_seq:
            break
        got: list[Item] = []
        for _position, record in _records(reader, segment):
            last_seq = max(last_seq, record.seq)
            got.extend(items_of(record, request.objects))
        found.extendleft(reversed(got[-request.count :] if request.count else []))
        while len(found) > request.count:
            found.popleft()
    return list(found), last_seq


def follow(
    request: TailRequest,
    after_seq: int,
    emit: Callable[[list[Item]], None],
    *,
    stop: Callable[[], bool] = lambda: False,
    poll_s: float = POLL_S,
) -> None:
    """Emit the items of records after `after_seq` as they are written, until `stop()`.

    Every segment but the newest listed was complete when listed (the writer opens the next
    only after sealing it), so reading on in order never skips a record; a segment renamed or
    deleted under the reader ends the poll, and the next listing finds it under its new name.
    """
    last_seq = after_seq
    floor = 0  # the segment the last record came from: every older one was complete and read
    while not stop():
        query = Query(from_seq=last_seq + 1, subjects=request.subjects)
        reader = JournalReader(request.directory, query=query, markers=True)
        got: list[Item] = []
        for segment in reader.segments():
            if segment.number < floor:
                continue
            sealed_to = _sealed_last_seq(segment)
            if sealed_to is not None and sealed_to <= last_seq:
                continue  # sealed and wholly shown already
            try:
                for _position, record in reader.segment_records(segment):
                    if record.seq > last_seq:
                        last_seq, floor = record.seq, segment.number
                        got.extend(items_of(record, request.objects))
            except (FileNotFoundError, PathAccessError) as exc:
                log.debug("segment_gone", segment=segment.name, reason=str(exc))
                break
        if got:
            emit(got)
        else:
            time.sleep(poll_s)


def _sealed_last_seq(segment: SegmentFile) -> int | None:
    """The last sequence number of a sealed segment, or None (unsealed, empty or gone)."""
    try:
        footer = summarize(segment).footer
    except (OSError, PathAccessError):
        return None
    return footer.last_seq if footer is not None and footer.records else None


def _records(reader: JournalReader, segment: SegmentFile) -> Iterator[tuple[Position, Record]]:
    """The segment's records; none when it was renamed (compressed) or deleted meanwhile."""
    try:
        yield from reader.segment_records(segment)
    except (FileNotFoundError, PathAccessError) as exc:
        log.debug("segment_gone", segment=segment.name, reason=str(exc))
