"""`recorder diff`: what changed in the cluster between two points; exit 1 when something did."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from recorder.cli.app import app
from recorder.cli.archive_command import local_journal, names_archive
from recorder.cli.compact_command import parse_until
from recorder.cli.investigate_options import output_format
from recorder.cli.options import ArchiveJournal, Endpoint, JournalSource, Output
from recorder.cli.render import print_json
from recorder.errors import RecorderError, UsageError

if TYPE_CHECKING:
    from recorder.compact.diff import Point, StateDiff
    from recorder.compact.model import LiveObject


@app.command()
def diff(
    ctx: typer.Context,
    journal: JournalSource,
    from_: Annotated[
        str, typer.Option("--from", help="The earlier point: a seq or a time.", show_default=False)
    ],
    to: Annotated[
        str, typer.Option("--to", help="The later point: a seq or a time.", show_default=False)
    ],
    kind: Annotated[list[str] | None, typer.Option(help="Only these kinds, repeatable.")] = None,
    namespace: Annotated[
        list[str] | None, typer.Option("--namespace", "-n", help="Only these namespaces.")
    ] = None,
    prune_ghosts: Annotated[
        bool, typer.Option("--prune-ghosts", help="Drop objects missing from a complete re-list.")
    ] = False,
    output: Output = "text",
    endpoint: Endpoint = None,
    journal_name: ArchiveJournal = None,
) -> None:
    """Objects added, deleted and changed between two points (exit 0: none, 1: some), like diff(1)."""
    from recorder.compact.diff import diff_json, diff_states
    from recorder.compact.model import CompactOptions

    fmt = output_format(output, ("text", "json"))
    start, end = _point("--from", from_), _point("--to", to)
    if not names_archive(journal) and not Path(journal).is_dir():
        raise UsageError(f"{journal}: not a journal directory (no such directory)")
    try:
        directory = ctx.with_resource(local_journal(journal, endpoint, None, journal_name))
        result = diff_states(
            directory,
            start,
            end,
            kinds=kind or None,
            namespaces=namespace or None,
            options=CompactOptions(prune_ghosts=prune_ghosts),
        )
    except RecorderError as exc:
        exc.exit_code = 2  # 1 says "changed" here: trouble is 2, as with diff(1)
        raise
    if fmt == "json":
        print_json(diff_json(result))
    else:
        for line in _text(result):
            typer.echo(line)
    if not result.empty:
        raise typer.Exit(1)


def _point(option: str, text: str) -> Point:
    from recorder.compact.diff import Point

    try:
        seq, time_ns = parse_until(text)
    except UsageError as exc:
        raise UsageError(str(exc).replace("--until", option, 1)) from None
    return Point(seq, time_ns)


def _name(obj: LiveObject) -> str:
    where = f"{obj.namespace}/{obj.name}" if obj.namespace else obj.name
    return f"{obj.kind} {where} (cluster {obj.cluster_id[:8]}, uid {obj.uid})"


def _text(result: StateDiff) -> list[str]:
    import orjson

    lines = [f"+ {_name(obj)} rv={obj.resource_version}" for obj in result.added]
    lines += [f"- {_name(obj)} rv={obj.resource_version}" for obj in result.deleted]
    for change in result.changed:
        before, after = change.before, change.after
        lines.append(f"~ {_name(after)} rv={before.resource_version} -> {after.resource_version}")
        for item in change.changes:
            old = "" if item.op == "added" else orjson.dumps(item.old).decode()
            new = "" if item.op == "removed" else orjson.dumps(item.new).decode()
            lines.append(f"    {item.path}: {old or '(absent)'} -> {new or '(absent)'}")
    lines.append(
        f"{len(result.added)} added, {len(result.deleted)} deleted, {len(result.changed)} changed"
        f" ({result.objects_before} objects before, {result.objects_after} after)"
    )
    return lines
