"""`recorder report`: one self-contained HTML page about a journal."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recorder.cli.app import app
from recorder.cli.journal_commands import build_query
from recorder.cli.options import JournalDir, Since, Until
from recorder.cli.render import say_summary
from recorder.errors import UsageError


@app.command()
def report(
    directory: JournalDir,
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write.", show_default=False)],
    since: Since = None,
    until: Until = None,
) -> None:
    """A timeline per kind with gaps and re-lists, most-changed objects and per-kind tables."""
    from recorder.fsutil import write_atomic
    from recorder.investigate.report import gather_report
    from recorder.investigate.report_html import render_report

    if not out.parent.is_dir():
        raise UsageError(f"--out: {out.parent} is not a directory")
    if not directory.is_dir():
        raise UsageError(f"{directory}: not a journal directory (no such directory)")
    data = gather_report(directory, build_query(since, until, None, None, None))
    page = render_report(data, f"Journal {directory.resolve().name}")
    write_atomic(out, [page.encode()])
    say_summary("report_written", {"out": str(out)}, [f"wrote {out}"], as_json=False)
