"""Reading an archive back: which journals it holds, and a time range copied to a local journal."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from recorder.archive.index import ArchiveIndex, IndexEntry, decode_index
from recorder.archive.location import parse_archive_url
from recorder.archive.store import ArchiveStore
from recorder.archive.uploader import index_key, md5_hex, segment_key
from recorder.errors import ArchiveError
from recorder.journal.query import Query
from recorder.journal.segment import ensure_dir, list_segments, write_file_atomically
from recorder.log import get_logger

log = get_logger("archive")


@dataclass(frozen=True, slots=True)
class RestoreStats:
    journal: str
    segments: int
    bytes: int
    skipped: int  # archived segments outside the time range


def open_archive(url: str, endpoint: str | None = None) -> ArchiveStore:
    return ArchiveStore(parse_archive_url(url), endpoint or None)


def journal_names(store: ArchiveStore) -> list[str]:
    """The journals under the archive's prefix: each one that has an index object."""
    names = {key.rsplit("/", 2)[-2] for key in store.keys("") if key.endswith("/index.json")}
    return sorted(names)


def choose_journal(store: ArchiveStore, name: str | None) -> str:
    """`name`, or the one journal the archive holds; several need choosing."""
    names = journal_names(store)
    if name is not None:
        if name not in names:
            raise ArchiveError(store.location.url, "not_found", f"holds no journal named {name!r}")
        return name
    if not names:
        raise ArchiveError(store.location.url, "not_found", "holds no archived journal")
    if len(names) > 1:
        raise ArchiveError(
            store.location.url, "ambiguous", f"holds several journals: {', '.join(names)}"
        )
    return names[0]


def load_index(store: ArchiveStore, name: str) -> ArchiveIndex:
    key = index_key(name)
    return decode_index(store.get(key), store.where(key))


def fetch_segment(store: ArchiveStore, name: str, entry: IndexEntry) -> bytes:
    """An archived segment's bytes, once they match the index's MD5."""
    key = segment_key(name, entry.number)
    data = store.get(key)
    if md5_hex(data) != entry.md5:
        raise ArchiveError(
            store.where(key), "mismatch", "object does not match the index's checksum"
        )
    return data


def restore(
    store: ArchiveStore,
    name: str,
    directory: Path,
    query: Query | None = None,
) -> RestoreStats:
    """Copy the archived segments that may hold records `query` wants into `directory`.

    Each object is checked against the index's MD5 before it is written (atomically), so
    a restored journal holds only what was archived; `directory` must not hold a journal yet.
    """
    ensure_dir(directory)
    if list_segments(directory):
        raise ArchiveError(
            str(directory), "not_empty", "already holds a journal; restore into a new directory"
        )
    index = load_index(store, name)
    chosen = index.select(query)
    total = 0
    for entry in chosen:
        data = fetch_segment(store, name, entry)
        write_file_atomically(directory / entry.name, data)
        total += len(data)
        log.debug("segment_restored", segment=entry.number, bytes=len(data))
    return RestoreStats(name, len(chosen), total, len(index.entries) - len(chosen))
