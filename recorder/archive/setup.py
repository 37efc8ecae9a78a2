"""Building the archiver `recorder run` hands to the daemon, from plain values."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from recorder.archive.location import check_journal_name, parse_archive_url
from recorder.archive.naming import journal_name
from recorder.archive.store import ArchiveStore
from recorder.archive.uploader import ArchiveOptions, Archiver
from recorder.errors import ArchiveError
from recorder.journal.segment import ensure_dir
from recorder.log import get_logger

log = get_logger("archive")


def build_archiver(
    url: str,
    endpoint: str,
    name: str,
    directory: Path,
    concurrency: int,
    on_archived: Callable[[], None] | None = None,
) -> Archiver:
    """An archiver for `directory`'s journal at `url`; nothing is contacted until it starts."""
    location = parse_archive_url(url)
    if name and (reason := check_journal_name(name)):
        raise ArchiveError(url, "bad_config", f"journal name {name!r} {reason}")
    ensure_dir(directory)
    chosen = journal_name(directory, name)
    store = ArchiveStore(location, endpoint or None)
    log.info("archive_configured", url=url, journal=chosen, endpoint=endpoint or None)
    return Archiver(
        store, directory, ArchiveOptions(chosen, concurrency=concurrency), on_archived=on_archived
    )
