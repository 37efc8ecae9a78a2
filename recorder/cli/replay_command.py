"""`recorder replay`: put recorded traffic (or a snapshot) back on the wire."""

import math
import signal
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from recorder.cli.app import app
from recorder.cli.archive_command import local_journal
from recorder.cli.config_commands import ConfigFile, load_effective_config, urls_from_flag
from recorder.cli.journal_commands import build_query, journal_argument, report_gaps
from recorder.cli.options import (
    AllowGaps,
    ArchiveJournal,
    Endpoint,
    FromSeq,
    Kinds,
    Namespaces,
    OptionalJournalSource,
    Output,
    Quiet,
    Since,
    Subjects,
    ToSeq,
    Until,
)
from recorder.cli.progress import ReplayProgress, wanted
from recorder.cli.render import examples, say_summary, wants_json
from recorder.errors import UsageError
from recorder.timeparse import format_time
from recorder.units import human_size

if TYPE_CHECKING:
    from recorder.config import NatsConfig
    from recorder.replay.run import Outgoing, Pacer, ReplayStats, Selection
    from recorder.subjects import SubjectMap

_GAPS = "--allow-gaps replays the records around them"


def parse_speed(text: str) -> float | None:
    """`max` (None: as fast as the broker accepts) or a positive, finite factor."""
    if text == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        speed = math.nan
    if not (math.isfinite(speed) and speed > 0):  # nan and inf would stall or skip pacing
        raise UsageError(f"--speed: must be a positive number or max, got {text!r}")
    return speed


def check_rate(rate: float | None) -> float | None:
    """`--rate`: None (no cap) or a positive, finite number of messages per second."""
    if rate is not None and not (math.isfinite(rate) and rate > 0):
        raise UsageError(f"--rate: must be a positive number of messages per second, got {rate}")
    return rate


def check_prefix(prefix: str) -> None:
    """`--subject-prefix` must make valid subjects: tokens without wildcards, spaces or gaps."""
    from recorder.subjects import is_valid_subject

    if prefix and not is_valid_subject(prefix.rstrip("."), wildcards=False):
        raise UsageError(
            f"--subject-prefix: {prefix!r} does not make valid NATS subjects "
            "(dot-separated tokens without spaces or wildcards, like replay or test.replay)"
        )


@app.command(
    name="replay",
    epilog=examples(
        "recorder replay /var/lib/recorder --nats-url nats://staging:4222 --speed 10",
        "recorder replay DIR --since -15m --subject-map 'meshery.meshsync.*=replay.*' --speed max",
        "recorder replay --snapshot snapshot.yaml --dry-run -o json",
    ),
)
def replay_command(
    ctx: typer.Context,
    journal: OptionalJournalSource = None,
    snapshot: Annotated[
        Path | None,
        typer.Option(help="Replay a compact snapshot (any --format) as ADDED events instead."),
    ] = None,
    config: ConfigFile = None,
    nats_url: Annotated[
        list[str] | None, typer.Option("--nats-url", help="Target broker URL, repeatable.")
    ] = None,
    subject_map: Annotated[
        list[str] | None, typer.Option(help="FROM=TO subject mapping (wildcards), repeatable.")
    ] = None,
    subject_prefix: Annotated[str, typer.Option(help="Prefix for every subject.")] = "",
    speed: Annotated[
        str, typer.Option(help="1 = recorded pace, 10 = ten times faster, max.")
    ] = "1",
    rate: Annotated[
        float | None, typer.Option(help="At most this many messages per second.")
    ] = None,
    since: Since = None,
    until: Until = None,
    from_seq: FromSeq = None,
    to_seq: ToSeq = None,
    subject: Subjects = None,
    kind: Kinds = None,
    namespace: Namespaces = None,
    msg_id: Annotated[
        bool, typer.Option("--msg-id", help="Add Nats-Msg-Id (instance-seq) for JetStream dedup.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say what would be sent; do not connect.")
    ] = False,
    output: Output = "text",
    quiet: Quiet = False,
    allow_gaps: AllowGaps = False,
    endpoint: Endpoint = None,
    journal_name: ArchiveJournal = None,
) -> None:
    """Republish journaled messages to NATS at the recorded pace, faster, or flat out."""
    from recorder.replay.run import ReplayStats

    as_json = wants_json(output)
    pacer, maps = _check_arguments(journal, snapshot, speed, rate, subject_prefix, subject_map)
    urls = urls_from_flag(nats_url)  # refused even for a dry run: the secret is already exposed
    selection = _selection(since, until, from_seq, to_seq, subject, kind, namespace)
    directory = _journal_directory(ctx, journal, endpoint, journal_name, selection)
    stats = ReplayStats()
    batches = _messages(
        directory, snapshot, selection, maps, subject_prefix, msg_id, stats, allow_gaps=allow_gaps
    )
    if dry_run:
        for batch in batches:
            stats.count(batch)
    else:
        cfg = load_effective_config(config, {"nats.urls": urls})
        progress = _progress(batches, directory, selection, pacer) if wanted(quiet) else None
        stats = _send(batches, cfg.nats, pacer, stats, progress)
    _report(stats, directory, allow_gaps=allow_gaps, dry_run=dry_run, as_json=as_json)


def _journal_directory(
    ctx: typer.Context,
    journal: str | None,
    endpoint: str | None,
    journal_name: str | None,
    selection: "Selection",
) -> Path | None:
    """The journal as a directory: an archive's segments that the selection wants are read
    in place, fetched one at a time."""
    if journal is None:
        if journal_name is not None:
            raise UsageError("--journal: names a journal of an archive URL; --snapshot has none")
        return None
    return ctx.with_resource(local_journal(journal, endpoint, selection.query, journal_name))


def _progress(
    batches: "Iterable[Sequence[Outgoing]]",
    directory: Path | None,
    selection: "Selection",
    pacer: "Pacer",
) -> ReplayProgress:
    """What the progress line can know up front: the total, and the recorded time to reach."""
    if isinstance(batches, list):  # a snapshot, already in memory
        return ReplayProgress(total=sum(map(len, batches)), speed=pacer.speed)
    from recorder.journal.maintenance import inspect_journal

    assert directory is not None
    infos = inspect_journal(directory)  # footers: cheap even for a large journal
    query = selection.query
    filtered = any((query.since_ns, query.until_ns, query.from_seq, query.to_seq, query.subjects))
    # Segments of markers only (a recorder left running idle, restarts) would put the end far
    # beyond the last message; within a segment, markers after its last message still count.
    ends = [info.last_time_ns for info in infos if info.last_time_ns is not None and info.messages]
    end_ns = min(filter(None, (max(ends, default=None), query.until_ns)), default=None)
    # Filters make the count unknowable without reading everything; then the ETA uses time.
    whole = not (filtered or selection.kinds or selection.namespaces)
    total = sum(info.messages for info in infos) if whole else None
    return ReplayProgress(total=total, end_ns=end_ns, speed=pacer.speed)


def _report(
    stats: "ReplayStats", directory: Path | None, *, allow_gaps: bool, dry_run: bool, as_json: bool
) -> None:
    """The summary (or `-o json` document), the gaps met while reading, then the exit code."""
    document = stats_document(stats, dry_run=dry_run)
    say_summary("replay_summary", document, _summary(stats, dry_run=dry_run), as_json=as_json)
    if directory is not None:
        _report_removed(directory, stats, allow_gaps=allow_gaps)
    if stats.interrupted:
        raise typer.Exit(130)


def _report_removed(directory: Path, stats: "ReplayStats", *, allow_gaps: bool) -> None:
    """Segments removed while being read; the gaps in the listing were reported before sending."""
    from recorder.journal.gaps import MISSING

    removed = [gap for gap in stats.gaps if gap.cause != MISSING]
    report_gaps(directory, removed, allow=allow_gaps, hint=_GAPS)


def _selection(
    since: str | None,
    until: str | None,
    from_seq: int | None,
    to_seq: int | None,
    subjects: list[str] | None,
    kinds: list[str] | None,
    namespaces: list[str] | None,
) -> "Selection":
    """What to send, from the filter options: a journal query, then MeshSync kind and namespace."""
    from recorder.replay.run import Selection

    query = build_query(since, until, from_seq, to_seq, subjects)
    return Selection(query, tuple(kinds or ()), tuple(namespaces or ()))


def _check_arguments(
    journal: str | None,
    snapshot: Path | None,
    speed: str,
    rate: float | None,
    prefix: str,
    subject_map: list[str] | None,
) -> "tuple[Pacer, tuple[SubjectMap, ...]]":
    """Refuse what cannot work before anything is read or sent; errors name the flags."""
    from recorder.replay.run import Pacer

    if (journal is None) == (snapshot is None):
        raise UsageError("give a journal directory or --snapshot FILE (one of them)")
    pacer = Pacer(parse_speed(speed), check_rate(rate))
    check_prefix(prefix)
    return pacer, parse_subject_maps(subject_map)


def parse_subject_maps(texts: list[str] | None) -> "tuple[SubjectMap, ...]":
    """`--subject-map FROM=TO` values, refused with the flag named when they are not subjects."""
    from recorder.subjects import SubjectMap

    try:
        return tuple(SubjectMap.parse(text) for text in texts or ())
    except UsageError as exc:
        raise UsageError(f"--subject-map: {exc}") from None


def _messages(
    directory: Path | None,
    snapshot: Path | None,
    selection: "Selection",
    maps: "tuple[SubjectMap, ...]",
    prefix: str,
    msg_id: bool,
    stats: "ReplayStats",
    *,
    allow_gaps: bool,
) -> "Iterable[Sequence[Outgoing]]":
    """The batches to send: from the snapshot (one batch), else read from the journal lazily."""
    from recorder.replay.run import journal_batches, journal_gaps, snapshot_messages

    if snapshot is not None:
        return [list(snapshot_messages(snapshot, maps=maps, prefix=prefix, selection=selection))]
    assert directory is not None  # the caller insists on exactly one of them
    journal_argument(directory)
    # Before anything is sent: a replay with a hole in it is not the recorded traffic.
    gaps = journal_gaps(directory, selection.query)
    report_gaps(directory, gaps, allow=allow_gaps, hint=_GAPS)
    return journal_batches(
        directory, selection, maps=maps, prefix=prefix, msg_id=msg_id, stats=stats
    )


def _send(
    batches: "Iterable[Sequence[Outgoing]]",
    nats_cfg: "NatsConfig",
    pacer: "Pacer",
    stats: "ReplayStats",
    progress: ReplayProgress | None,
) -> "ReplayStats":
    """Publish on an event loop of its own; SIGINT or SIGTERM stop after the message in flight."""
    import asyncio

    from recorder.log import start_logging
    from recorder.replay.publisher import Publisher
    from recorder.replay.run import connect, replay

    async def publish() -> "ReplayStats":
        nc, errors = await connect(nats_cfg)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            return await replay(batches, Publisher(nc), errors, pacer, stop, stats, progress)
        finally:
            if progress is not None:
                progress.finish()
            await nc.close()

    start_logging()  # nats-py logs through the stdlib: route it before connecting
    return asyncio.run(publish())


def _summary(stats: "ReplayStats", *, dry_run: bool) -> list[str]:
    verb = "would send" if dry_run else "sent"
    span = ""
    if stats.first_time_ns is not None and stats.last_time_ns is not None and stats.first_time_ns:
        span = f", recorded {format_time(stats.first_time_ns)} .. {format_time(stats.last_time_ns)}"
    lines = [f"{verb} {stats.sent} messages ({human_size(stats.bytes)}){span}"]
    lines += [f"  {name}: {count}" for name, count in sorted(stats.subjects.items())]
    lines.append(f"skipped by filters: {stats.skipped}")
    if not dry_run:
        lines.append(f"elapsed {stats.elapsed_s:.2f} s, {stats.rate:.0f} msg/s")
    if stats.interrupted:
        lines.append(f"interrupted: resume with --from-seq {_resume_seq(stats)}")
    return lines


def _resume_seq(stats: "ReplayStats") -> int:
    return (stats.last_seq or 0) + 1


def stats_document(stats: "ReplayStats", *, dry_run: bool) -> dict[str, Any]:
    """`-o json`: what was (or would be) sent, per subject, and where to resume."""
    return {
        "dry_run": dry_run,
        "messages": stats.sent,
        "bytes": stats.bytes,
        "subjects": dict(sorted(stats.subjects.items())),
        "skipped": stats.skipped,
        "first_time": format_time(stats.first_time_ns) if stats.first_time_ns else None,
        "last_time": format_time(stats.last_time_ns) if stats.last_time_ns else None,
        "last_seq": stats.last_seq,
        "elapsed_s": None if dry_run else stats.elapsed_s,
        "interrupted": stats.interrupted,
        "resume_from_seq": _resume_seq(stats) if stats.interrupted else None,
    }
