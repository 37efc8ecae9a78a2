"""`recorder compact`: journals -> a deduplicated snapshot of cluster state."""

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from recorder.cli.app import app
from recorder.cli.archive_command import local_journal, names_archive
from recorder.cli.journal_commands import report_gaps
from recorder.cli.options import (
    AllowGaps,
    ArchiveJournal,
    Endpoint,
    JournalSources,
    Kinds,
    Namespaces,
    Output,
    Quiet,
)
from recorder.cli.progress import CompactProgress, wanted
from recorder.cli.render import examples, say_summary, wants_json
from recorder.errors import UsageError
from recorder.timeparse import format_time, parse_time

if TYPE_CHECKING:
    from recorder.compact.run import CompactRequest, CompactResult

FORMATS = ("yaml", "json", "meshsync")
ISSUES_SHOWN = 20


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


@app.command(
    epilog=examples(
        "recorder compact /var/lib/recorder --out snapshot.yaml",
        "recorder compact DIR --format json --until 2026-11-18T09:00:00Z --out - | jq .items[0]",
        "recorder compact DIR --checkpoint --prune --format meshsync --out snapshots/",
    )
)
def compact(
    ctx: typer.Context,
    journals: JournalSources,
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
    kind: Kinds = None,
    namespace: Namespaces = None,
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
    output: Output = "text",
    quiet: Quiet = False,
    allow_gaps: AllowGaps = False,
    endpoint: Endpoint = None,
    journal_name: ArchiveJournal = None,
) -> None:
    """Turn journals into a snapshot: one object per uid and cluster, DELETED removes, newest wins."""
    from recorder.compact.run import CompactRequest, Format

    as_json = wants_json(output)
    _check_arguments(fmt, out, as_json=as_json, prune=prune, checkpoint=checkpoint)
    until_seq, until_ns = cut = parse_until(until)
    directories = _local_journals(ctx, journals, endpoint, journal_name, cut, checkpoint)
    request = CompactRequest(
        directory=directories[0],
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
    result = _run(request, directories, quiet=quiet)
    _report(request, result, as_json=as_json)


def _local_journals(
    ctx: typer.Context,
    journals: list[str],
    endpoint: str | None,
    journal_name: str | None,
    cut: tuple[int | None, int | None],
    checkpoint: bool,
) -> list[Path]:
    """Each journal as a readable directory: an archive's segments (up to --until) are read in
    place, fetched one at a time; `journal_name` picks the journal of every archive URL."""
    from recorder.cli.journal_commands import journal_argument
    from recorder.journal.query import Query

    archives = [names_archive(journal) for journal in journals]
    if checkpoint and any(archives):
        raise UsageError("--checkpoint needs a journal directory, not an archive URL")
    if journal_name is not None and not any(archives):
        raise UsageError("--journal: names a journal of an archive URL, and none is given")
    wanted = Query(to_seq=cut[0], until_ns=cut[1])  # cut: parse_until's (seq, time)
    directories = [
        ctx.with_resource(
            local_journal(journal, endpoint, wanted, journal_name if archive else None)
        )
        for journal, archive in zip(journals, archives, strict=True)
    ]
    for directory in directories:
        journal_argument(directory)
    return directories


def _report(request: "CompactRequest", result: "CompactResult", *, as_json: bool) -> None:
    """The summary (see say_summary), then the gaps: an error unless allowed."""
    say_summary("compact_summary", result_document(result), summary(result), as_json=as_json)
    hint = "the snapshot records them; --allow-gaps accepts them"
    if request.checkpoint:
        hint += " and moves the checkpoint on"
    report_gaps(request.directory, result.gaps, allow=request.allow_gaps, hint=hint)


def _check_arguments(
    fmt: str, out: str | None, *, as_json: bool, prune: bool, checkpoint: bool
) -> None:
    """Refuse what cannot work before the whole journal is read; errors name the flags."""
    if fmt not in FORMATS:
        raise UsageError(f"--format: must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if prune and not checkpoint:
        raise UsageError("--prune needs --checkpoint: segments are only deleted once covered")
    if out == "-" and fmt == "meshsync":
        raise UsageError("--format meshsync writes two files; give --out a directory")
    if out == "-" and as_json:
        raise UsageError("--output json and --out - would both write to stdout; pick one")
    if out is None or out == "-":
        return
    path = Path(out)
    if fmt == "meshsync" and path.exists() and not path.is_dir():
        raise UsageError(f"--out: {path} is not a directory (meshsync writes two files into one)")
    if not path.parent.is_dir():
        raise UsageError(f"--out: {path.parent} is not a directory")


def _run(request: "CompactRequest", directories: list[Path], *, quiet: bool) -> "CompactResult":
    """The compaction, with bars for a person watching: segments read (several journals are
    read interleaved, so a merge has none), then objects written."""
    from recorder.compact.run import run_compaction
    from recorder.journal.directory import journal_segments

    if len(directories) > 1:
        from recorder.compact.merge import run_merged_compaction

        if not wanted(quiet):
            return run_merged_compaction(request, directories)
        with CompactProgress(segments=None) as bars:
            return run_merged_compaction(request, directories, writing=bars.write)
    if not wanted(quiet):
        return run_compaction(request)
    with CompactProgress(segments=len(journal_segments(request.directory))) as bars:
        return run_compaction(request, progress=bars.read, writing=bars.write)


def summary(result: "CompactResult") -> list[str]:
    """What was read, kept, skipped and written, for people (on stderr: stdout may be data)."""
    stats = result.stats
    read = f"read {result.messages_read} messages ({result.object_events_read} object events)"
    if result.resumed_from_seq is not None:
        read += f", resuming after seq {result.resumed_from_seq}"
    lines = [read]
    if result.resumed_from_seq is not None:
        lines.append(f"state: {stats.messages} messages read in all, up to seq {stats.last_seq}")
    lines += [
        f"objects: {stats.objects} live, {stats.tombstones} tombstones, "
        f"{stats.duplicates} duplicates, {stats.stale} stale, {stats.ghosts_pruned} ghosts pruned",
        f"skipped: {stats.undecodable} undecodable, {stats.no_uid} without uid",
        "per kind: " + (", ".join(f"{k}={v}" for k, v in stats.per_kind.items()) or "-"),
    ]
    if result.stopped_at is not None:
        seq, stamp = result.stopped_at
        lines.append(f"--until: stopped before seq {seq}, stamped {format_time(stamp)}")
    lines += [f"  seq {i.seq} on {i.subject}: {i.reason}" for i in stats.issues[:ISSUES_SHOWN]]
    if len(stats.issues) > ISSUES_SHOWN:
        lines.append(f"  ... and {len(stats.issues) - ISSUES_SHOWN} more")
    lines += [f"wrote {path}" for path in result.outputs]
    if result.checkpoint:
        lines.append(f"checkpoint {result.checkpoint} (seq {stats.last_seq})")
    lines += [f"pruned {name}" for name in result.pruned]
    return lines


def result_document(result: "CompactResult") -> dict[str, Any]:
    """`-o json`: the same facts as the summary, every issue included."""
    stats = result.stats
    return {
        "read": {"messages": result.messages_read, "object_events": result.object_events_read},
        "resumed_from_seq": result.resumed_from_seq,
        "stopped_at": _stopped_at(result.stopped_at),
        "state": {
            "messages": stats.messages,
            "object_events": stats.object_events,
            "first_seq": stats.first_seq,
            "last_seq": stats.last_seq,
            "clusters": list(stats.clusters),
        },
        "objects": {
            "live": stats.objects,
            "tombstones": stats.tombstones,
            "duplicates": stats.duplicates,
            "stale": stats.stale,
            "ghosts_pruned": stats.ghosts_pruned,
            "written": result.objects_written,
            "per_kind": stats.per_kind,
        },
        "skipped": {"undecodable": stats.undecodable, "no_uid": stats.no_uid},
        "issues": [{"seq": i.seq, "subject": i.subject, "reason": i.reason} for i in stats.issues],
        "outputs": [str(path) for path in result.outputs],
        "checkpoint": str(result.checkpoint) if result.checkpoint else None,
        "pruned": list(result.pruned),
        "gaps": [{"gap": gap.describe(), "inside": gap.inside} for gap in result.gaps],
    }


def _stopped_at(stopped_at: tuple[int, int] | None) -> dict[str, Any] | None:
    """Where `--until TIME` cut the journal: the first record stamped past it."""
    if stopped_at is None:
        return None
    seq, stamp = stopped_at
    return {"seq": seq, "time": format_time(stamp)}
