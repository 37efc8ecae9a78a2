"""`recorder compact`: journals -> a deduplicated snapshot of cluster state."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, cast

import typer

from recorder.archive.location import is_archive_url
from recorder.cli.app import app
from recorder.cli.archive_command import Endpoint, local_journal
from recorder.cli.journal_commands import report_gaps
from recorder.compact.run import CompactRequest, Format, run_compaction
from recorder.errors import UsageError
from recorder.journal.query import Query
from recorder.journal.segment import list_segments
from recorder.timeparse import format_time, parse_time

FORMATS = ("yaml", "json", "meshsync")


def parse_until(text: str | None) -> tuple[int | None, int | None]:
    """`--until` is a sequence number (digits) or a time: returns (seq, time_ns)."""
    if text is None:
        return None, None
    if text.isdigit():
        return int(text), None
    try:
        return None, parse_time(text, time.time_ns())
    except ValueError as exc:
        raise UsageError(f"--until: {exc}") from None


@app.command()
def compact(
    ctx: typer.Context,
    journals: Annotated[
        list[str],
        typer.Argument(
            help="Journal directory, or an archive URL (s3://BUCKET/prefix, gs://, az://, "
            "file://); several (one per cluster or recorder) are merged, newest event winning.",
            show_default=False,
        ),
    ],
    fmt: Annotated[
        str, typer.Option("--format", help="yaml (manifests), json (a v1 List) or meshsync.")
    ] = "yaml",
    out: Annotated[
        str | None,
        typer.Option(help="Output file (yaml, json), directory (meshsync), or - for stdout."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="State as of this seq or time (cut at the first record stamped later)."),
    ] = None,
    cluster: Annotated[str | None, typer.Option(help="Only this cluster id.")] = None,
    kind: Annotated[list[str] | None, typer.Option(help="Only these kinds, repeatable.")] = None,
    namespace: Annotated[
        list[str] | None, typer.Option(help="Only these namespaces, repeatable.")
    ] = None,
    checkpoint: Annotated[
        bool, typer.Option("--checkpoint", help="Resume from, and save, the state in DIR.")
    ] = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Delete sealed segments the checkpoint covers.")
    ] = False,
    prune_ghosts: Annotated[
        bool, typer.Option("--prune-ghosts", help="Drop objects missing from a complete re-list.")
    ] = False,
    idle_gap: Annotated[
        float, typer.Option(min=0.0, help="Seconds of quiet that close a re-list.")
    ] = 10.0,
    allow_gaps: Annotated[
        bool,
        typer.Option(
            "--allow-gaps", help="Exit 0 though records are missing (the snapshot notes them)."
        ),
    ] = False,
    endpoint: Endpoint = None,
) -> None:
    """Turn journals into a snapshot: one object per uid and cluster, DELETED removes, newest wins."""
    if fmt not in FORMATS:
        raise UsageError(f"--format: must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if out is not None and out != "-":
        # Checked now rather than found out after the whole journal was read.
        target = Path(out) if fmt == "meshsync" else Path(out).parent
        if not target.is_dir():
            raise UsageError(f"--out: {target} is not a directory")
    until_seq, until_ns = parse_until(until)
    if checkpoint and any(map(is_archive_url, journals)):
        raise UsageError("--checkpoint needs a journal directory, not an archive URL")
    # An archive is restored (up to --until) to a temporary journal, removed when we are done.
    wanted = Query(until_ns=until_ns, to_seq=until_seq)
    directories = [ctx.with_resource(local_journal(j, endpoint, wanted)) for j in journals]
    directory = directories[0]
    request = CompactRequest(
        directory=directory,
        format=cast(Format, fmt),
        out=None if out is None or out == "-" else Path(out),
        to_stdout=out == "-",
        until_seq=until_seq,
        until_ns=until_ns,
        cluster=cluster,
        kinds=tuple(kind or ()),
        namespaces=tuple(namespace or ()),
        checkpoint=checkpoint,
        prune=prune,
        prune_ghosts=prune_ghosts,
        idle_ns=int(idle_gap * 1e9),
        allow_gaps=allow_gaps,
    )
    for each in directories:
        if not each.is_dir():
            raise UsageError(f"{each}: not a journal directory (no such directory)")
    # The library states these as facts; here they are worded as the flags that caused them.
    if prune and not checkpoint:
        raise UsageError("--prune needs --checkpoint: segments are only deleted once covered")
    if fmt == "meshsync" and out == "-":
        raise UsageError("--format meshsync writes two files; give --out a directory")
    if len(directories) > 1:
        from recorder.compact.merge import run_merged_compaction

        result = run_merged_compaction(request, directories)
    elif sys.stderr.isatty():
        total = len(list_segments(directory))
        with typer.progressbar(length=total, label="compacting", file=sys.stderr) as bar:
            result = run_compaction(request, progress=lambda _segment: bar.update(1))
    else:
        result = run_compaction(request)
    stats = result.stats
    lines = [
        f"read {stats.messages} messages ({stats.object_events} object events)"
        + (f", resuming after seq {result.resumed_from_seq}" if result.resumed_from_seq else ""),
        f"objects: {stats.objects} live, {stats.tombstones} tombstones, "
        f"{stats.duplicates} duplicates, {stats.stale} stale, {stats.ghosts_pruned} ghosts pruned",
        f"skipped: {stats.undecodable} undecodable, {stats.no_uid} without uid",
        "per kind: " + (", ".join(f"{k}={v}" for k, v in stats.per_kind.items()) or "-"),
    ]
    if result.stopped_at is not None:
        seq, stamp = result.stopped_at
        lines.append(f"--until: stopped before seq {seq}, stamped {format_time(stamp)}")
    lines += [f"  seq {i.seq} on {i.subject}: {i.reason}" for i in stats.issues[:20]]
    if len(stats.issues) > 20:
        lines.append(f"  ... and {len(stats.issues) - 20} more")
    lines += [f"wrote {path}" for path in result.outputs]
    if result.checkpoint:
        lines.append(f"checkpoint {result.checkpoint} (seq {stats.last_seq})")
    lines += [f"pruned {name}" for name in result.pruned]
    for line in lines:
        typer.echo(line, err=True)
    hint = "the snapshot records them; --allow-gaps accepts them"
    if checkpoint:
        hint += " and moves the checkpoint on"
    report_gaps(directory, result.gaps, allow=allow_gaps, hint=hint)
