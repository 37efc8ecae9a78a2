"""`recorder history`: every version of one object, with unified diffs between versions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import orjson
import typer

from recorder.cli.app import app
from recorder.cli.archive_command import local_journal
from recorder.cli.investigate_options import output_format
from recorder.cli.journal_commands import build_query
from recorder.cli.options import ArchiveJournal, Endpoint, JournalSource, Output, Since, Until
from recorder.errors import ObjectNotFoundError, UsageError
from recorder.timeparse import format_time

if TYPE_CHECKING:
    from recorder.investigate.history import Life, ObjectSelector


@app.command()
def history(
    ctx: typer.Context,
    journal: JournalSource,
    target: Annotated[
        str | None, typer.Argument(help="KIND/NAME, e.g. Deployment/web.", show_default=False)
    ] = None,
    namespace: Annotated[str | None, typer.Option("--namespace", "-n", help="Namespace.")] = None,
    cluster: Annotated[str | None, typer.Option(help="Cluster id (or prefix).")] = None,
    uid: Annotated[str | None, typer.Option(help="The object's metadata.uid.")] = None,
    since: Since = None,
    until: Until = None,
    output: Output = "text",
    endpoint: Endpoint = None,
    journal_name: ArchiveJournal = None,
) -> None:
    """Every version of one object in order, with a unified diff of its manifest between versions."""
    from recorder.compact.snapshot import to_yaml
    from recorder.investigate.history import history_json, object_history

    fmt = output_format(output, ("text", "json"))
    selector = _selector(target, namespace, cluster, uid)
    query = build_query(since, until, None, None, None)
    directory = ctx.with_resource(local_journal(journal, endpoint, query, journal_name))
    lives = object_history(directory, selector, lambda doc: to_yaml(doc).decode(), query)
    if not lives:
        raise ObjectNotFoundError(journal, selector.describe())
    if fmt == "json":
        typer.echo(orjson.dumps(history_json(selector, lives), option=orjson.OPT_INDENT_2).decode())
        return
    for line in _text(lives):
        typer.echo(line)


def _selector(
    target: str | None, namespace: str | None, cluster: str | None, uid: str | None
) -> ObjectSelector:
    from recorder.investigate.history import ObjectSelector

    if uid:
        if target is not None:
            raise UsageError("give KIND/NAME or --uid, not both")
        return ObjectSelector(cluster=cluster, uid=uid)
    if target is None:
        raise UsageError("which object? give KIND/NAME (e.g. Deployment/web) or --uid")
    kind, slash, name = target.partition("/")
    if not slash or not kind or not name or "/" in name:
        raise UsageError(f"KIND/NAME: expected one slash, like Deployment/web, got {target!r}")
    return ObjectSelector(kind=kind, name=name, namespace=namespace, cluster=cluster)


def _text(lives: list[Life]) -> list[str]:
    lines: list[str] = []
    for number, life in enumerate(lives, 1):
        where = f"{life.namespace}/{life.name}" if life.namespace else life.name
        state = "deleted" if life.deleted else "live at the end"
        lines.append(
            f"life {number}: {life.kind} {where} uid {life.uid} cluster {life.cluster} "
            f"({len(life.versions)} versions, {life.sightings} sightings, {state})"
        )
        for version in life.versions:
            lines.append(
                f"  {format_time(version.time_ns)}  seq {version.seq}  {version.event_type}"
                f"  rv={version.resource_version or '-'}"
            )
            lines += [f"    {line}" for line in version.diff.splitlines()]
    return lines
