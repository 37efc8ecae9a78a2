"""Shared builders for the journal tests: a fake clock, message batches and byte surgery."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterable
from pathlib import Path

from recorder.journal.options import WriterOptions
from recorder.journal.query import Query, ReadStats
from recorder.journal.reader import JournalReader, Position
from recorder.journal.record import Headers, Incoming, Marker, Message, Record
from recorder.journal.segment import list_segments
from recorder.journal.writer import JournalWriter

INSTANCE = bytes(range(16))
T0 = 1_700_000_000 * 10**9


class FakeClock:
    """A settable nanosecond clock to hand to JournalWriter (as its wall or monotonic clock)."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, ns: int) -> None:
        self.now += ns


def items(
    count: int,
    *,
    start_ns: int = T0,
    step_ns: int = 1_000,
    subject: str = "meshsync.events",
    payload: bytes = b'{"kind":"Pod"}',
    headers: Headers | None = None,
) -> list[Incoming]:
    """`count` incoming messages with increasing receive times."""
    return [
        Incoming(start_ns + i * step_ns, subject, "", headers, payload, None) for i in range(count)
    ]


def open_writer(
    directory: Path,
    clock: FakeClock | None = None,
    monotonic: FakeClock | None = None,
    **options: object,
) -> JournalWriter:
    """An open writer; with no `monotonic`, both clocks are `clock` (a wall clock never stepped)."""
    clock = clock or FakeClock()
    writer = JournalWriter(
        directory,
        WriterOptions(**options),  # type: ignore[arg-type]
        clock=clock,
        monotonic=monotonic or clock,
        instance_id=INSTANCE,
    )
    writer.open()
    return writer


def read_all(
    directory: Path, *, markers: bool = True, salvage: bool = False, query: Query | None = None
) -> tuple[list[tuple[Position, Record]], ReadStats]:
    reader = JournalReader(directory, markers=markers, salvage=salvage, query=query)
    records = list(reader)
    return records, reader.stats


def records_of(directory: Path, **kwargs: object) -> list[Record]:
    return [record for _, record in read_all(directory, **kwargs)[0]]  # type: ignore[arg-type]


def messages(records: Iterable[Record]) -> list[Message]:
    return [record for record in records if isinstance(record, Message)]


def markers(records: Iterable[Record]) -> list[Marker]:
    return [record for record in records if isinstance(record, Marker)]


def seqs(records: Iterable[Record]) -> list[int]:
    return [record.seq for record in records]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def segment_digests(directory: Path) -> dict[str, str]:
    return {segment.name: digest(segment.path) for segment in list_segments(directory)}


def flip_bit(path: Path, position: int, bit: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= 1 << bit
    path.write_bytes(bytes(data))


def copy_journal(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    lock = target / "LOCK"
    if lock.exists():
        lock.unlink()
    return target


def quarantine_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.quarantine"))
