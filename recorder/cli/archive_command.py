"""`recorder restore`: an archived journal (or a time range of it) back to a local directory."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from recorder.cli.app import app
from recorder.cli.options import ArchiveJournal, Endpoint
from recorder.cli.render import examples
from recorder.errors import UsageError

if TYPE_CHECKING:
    from recorder.journal.query import Query


@app.command(
    epilog=examples(
        "recorder restore s3://backups/recorder ./journal",
        "recorder restore s3://backups/recorder DIR --since -2h --journal cluster-a",
        "recorder restore s3://bucket/prefix DIR --endpoint http://127.0.0.1:9000",
    )
)
def restore(
    url: Annotated[
        str,
        typer.Argument(
            metavar="URL", help="Archive URL: s3://BUCKET/prefix, gs://, az://, file://"
        ),
    ],
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="New local journal directory.")],
    since: Annotated[str | None, typer.Option(help="Only segments with records from then.")] = None,
    until: Annotated[
        str | None, typer.Option(help="Only segments with records until then.")
    ] = None,
    journal: ArchiveJournal = None,
    endpoint: Endpoint = None,
) -> None:
    """Copy an archived journal, or the segments of a time range, to a local journal."""
    from recorder.archive.restore import choose_journal, open_archive
    from recorder.archive.restore import restore as copy_back
    from recorder.cli.journal_commands import build_query  # it imports this module

    query = build_query(since, until, None, None, None)
    store = open_archive(url, endpoint)
    stats = copy_back(store, choose_journal(store, journal), directory, query)
    typer.echo(
        f"restored {stats.segments} segments ({stats.bytes} bytes) of journal {stats.journal} "
        f"to {directory}; {stats.skipped} outside the range"
    )


def names_archive(source: str) -> bool:
    """True for an archive URL rather than a journal directory."""
    if "://" not in source:  # a directory: the archive package (and obstore) stay unloaded
        return False
    from recorder.archive.location import is_archive_url

    return is_archive_url(source)


@contextlib.contextmanager
def local_journal(
    source: str, endpoint: str | None, query: Query | None = None, journal: str | None = None
) -> Iterator[Path]:
    """A journal directory for `source`: itself, or an archived journal read in place.

    The index picks the segments `query` may want, so the rest are never fetched; the chosen
    ones are fetched one at a time as the command reads them, into a temporary directory that
    holds at most the segment being read and the next (removed afterwards).
    """
    if not names_archive(source):
        if journal is not None:
            raise UsageError(f"--journal: names a journal of an archive URL, and {source} is none")
        yield Path(source)
        return
    import tempfile

    from recorder.archive.restore import choose_journal, load_index, open_archive
    from recorder.archive.stream import streamed_journal

    store = open_archive(source, endpoint)
    name = choose_journal(store, journal)
    entries = load_index(store, name).select(query)
    with (
        tempfile.TemporaryDirectory(prefix="recorder-archive-") as scratch,
        streamed_journal(store, name, entries, Path(scratch)),
    ):
        yield Path(scratch)
