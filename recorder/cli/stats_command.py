"""`recorder stats`: counts, rates, gaps and re-lists of a journal."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import orjson
import typer

from recorder.cli.app import app
from recorder.cli.archive_command import local_journal
from recorder.cli.investigate_options import output_format
from recorder.cli.journal_commands import build_query
from recorder.cli.options import ArchiveJournal, Endpoint, JournalSource, Output, Since, Until
from recorder.cli.render import human_duration, table
from recorder.timeparse import format_time

if TYPE_CHECKING:
    from recorder.investigate.stats import JournalStats


@app.command()
def stats(
    ctx: typer.Context,
    journal: JournalSource,
    since: Since = None,
    until: Until = None,
    output: Output = "text",
    endpoint: Endpoint = None,
    journal_name: ArchiveJournal = None,
) -> None:
    """Events per subject, cluster, kind and EventType; rates; every gap; re-lists; time covered."""
    from recorder.investigate.stats import journal_stats

    fmt = output_format(output, ("text", "json"))
    query = build_query(since, until, None, None, None)
    directory = ctx.with_resource(local_journal(journal, endpoint, query, journal_name))
    result = journal_stats(directory, query)
    if fmt == "json":
        typer.echo(orjson.dumps(result.as_json(), option=orjson.OPT_INDENT_2).decode())
        return
    typer.echo("\n".join(_text(result)))


def _text(result: JournalStats) -> list[str]:
    first, last = result.first_ns, result.last_ns
    lines = [
        f"time covered: {_time(first)} .. {_time(last)} ({human_duration(result.covered_ns)})",
        f"messages: {result.messages}, object events: {result.events}, markers: "
        f"{result.markers}, not state: {result.not_state}, undecodable: {result.undecodable}",
        f"rate per minute: peak {result.peak_per_minute} (minute of "
        f"{_time(result.peak_minute_ns)}), mean {result.mean_per_minute:.1f}",
    ]
    for title, counts in (
        ("subject", result.subjects),
        ("cluster", result.clusters),
        ("kind", result.kinds),
        ("event type", result.event_types),
    ):
        lines += ["", _counts(title, counts)]
    lines += ["", f"re-lists: {len(result.relists)}"]
    lines += [f"  {format_time(r.time_ns)}  seq {r.seq}  {r.entity}" for r in result.relists]
    lines += ["", f"gaps: {len(result.gaps)}"]
    if result.gaps:
        rows = [
            [
                gap.kind,
                _time(gap.start_ns),
                human_duration(gap.length_ns),
                "" if gap.count is None else str(gap.count),
                gap.detail or ("" if gap.seq is None else f"seq {gap.seq}"),
            ]
            for gap in result.gaps
        ]
        lines.append(table(["gap", "start", "length", "count", "where"], rows))
    return lines


def _counts(title: str, counts: Counter[str]) -> str:
    rows = [[name or "(none)", str(count)] for name, count in counts.most_common()]
    return table([title, "count"], rows or [["-", "0"]])


def _time(time_ns: int | None) -> str:
    return "-" if time_ns is None else format_time(time_ns)
