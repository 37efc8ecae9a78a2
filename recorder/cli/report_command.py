"""`recorder report`: one self-contained HTML page about a journal."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recorder.cli.app import app
from recorder.cli.archive_command import local_journal, names_archive
from recorder.cli.journal_commands import build_query
from recorder.cli.options import ArchiveJournal, Endpoint, JournalSource, Since, Until
from recorder.cli.render import say_summary
from recorder.errors import UsageError


@app.command()
def report(
    ctx: typer.Context,
    journal: JournalSource,
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write.", show_default=False)],
    since: Since = None,
    until: Until = None,
    endpoint: Endpoint = None,
    journal_name: ArchiveJournal = None,
) -> None:
    """A timeline per kind with gaps and re-lists, most-changed objects and per-kind tables."""
    from recorder.fsutil import write_atomic
    from recorder.investigate.report import gather_report
    from recorder.investigate.report_html import render_report

    if not out.parent.is_dir():
        raise UsageError(f"--out: {out.parent} is not a directory")
    if not names_archive(journal) and not Path(journal).is_dir():
        raise UsageError(f"{journal}: not a journal directory (no such directory)")
    query = build_query(since, until, None, None, None)
    directory = ctx.with_resource(local_journal(journal, endpoint, query, journal_name))
    name = journal if names_archive(journal) else directory.resolve().name
    page = render_report(gather_report(directory, query), f"Journal {name}")
    write_atomic(out, [page.encode()])
    say_summary("report_written", {"out": str(out)}, [f"wrote {out}"], as_json=False)
