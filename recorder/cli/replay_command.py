"""`recorder replay`: put recorded traffic (or a snapshot) back on the wire."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated

import typer

from recorder.cli.app import app
from recorder.cli.archive_command import Endpoint, local_journal
from recorder.cli.config_commands import ConfigFile, load_effective_config, urls_from_flag
from recorder.cli.journal_commands import build_query, report_gaps
from recorder.config import NatsConfig
from recorder.errors import UsageError
from recorder.journal.gaps import MISSING
from recorder.replay.publisher import Publisher
from recorder.replay.run import (
    Outgoing,
    Pacer,
    ReplayStats,
    Selection,
    connect,
    journal_batches,
    journal_gaps,
    replay,
    snapshot_messages,
)
from recorder.subjects import SubjectMap
from recorder.timeparse import format_time

_GAPS = "--allow-gaps replays the records around them"


def parse_speed(text: str) -> float | None:
    """`max` (None: as fast as the broker accepts) or a positive factor."""
    if text == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        speed = 0.0
    if speed <= 0:
        raise UsageError(f"--speed: must be a positive number or max, got {text!r}")
    return speed


@app.command(name="replay")
def replay_command(
    ctx: typer.Context,
    journal: Annotated[
        str | None,
        typer.Argument(
            help="Journal directory, or an archive URL (s3://BUCKET/prefix, gs://, az://, file://).",
            show_default=False,
        ),
    ] = None,
    snapshot: Annotated[
        Path | None, typer.Option(help="Replay a compact snapshot as ADDED events instead.")
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
        float | None, typer.Option(min=0.001, help="At most this many messages per second.")
    ] = None,
    since: Annotated[str | None, typer.Option(help="RFC 3339 time or relative like -15m.")] = None,
    until: Annotated[str | None, typer.Option(help="RFC 3339 time or relative like -5m.")] = None,
    from_seq: Annotated[int | None, typer.Option(min=0, help="First sequence number.")] = None,
    to_seq: Annotated[int | None, typer.Option(min=0, help="Last sequence number.")] = None,
    subject: Annotated[
        list[str] | None, typer.Option(help="Only subjects matching this pattern, repeatable.")
    ] = None,
    kind: Annotated[
        list[str] | None, typer.Option(help="Only MeshSync objects of this kind.")
    ] = None,
    namespace: Annotated[
        list[str] | None, typer.Option(help="Only MeshSync objects in this namespace.")
    ] = None,
    msg_id: Annotated[
        bool, typer.Option("--msg-id", help="Add Nats-Msg-Id (instance-seq) for JetStream dedup.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say what would be sent; do not connect.")
    ] = False,
    allow_gaps: Annotated[
        bool, typer.Option("--allow-gaps", help="Replay around segments missing from the journal.")
    ] = False,
    endpoint: Endpoint = None,
) -> None:
    """Republish journaled messages to NATS at the recorded pace, faster, or flat out."""
    if (journal is None) == (snapshot is None):
        raise UsageError("give a journal directory or --snapshot FILE (one of them)")
    pace = parse_speed(speed)
    try:
        maps = tuple(SubjectMap.parse(text) for text in subject_map or ())
    except UsageError as exc:
        raise UsageError(f"--subject-map: {exc}") from None
    urls = urls_from_flag(nats_url)  # refused even for a dry run: the secret is already exposed
    selection = Selection(
        build_query(since, until, from_seq, to_seq, subject),
        tuple(kind or ()),
        tuple(namespace or ()),
    )
    stats = ReplayStats()
    directory: Path | None = None
    batches: Iterable[Sequence[Outgoing]]
    if snapshot is not None:
        batches = [
            list(snapshot_messages(snapshot, maps=maps, prefix=subject_prefix, selection=selection))
        ]
    elif journal is not None:
        directory = ctx.with_resource(local_journal(journal, endpoint, selection.query))
        if not directory.is_dir():
            raise UsageError(f"{directory}: not a journal directory (no such directory)")
        # Before anything is sent: a replay with a hole in it is not the recorded traffic.
        report_gaps(
            directory, journal_gaps(directory, selection.query), allow=allow_gaps, hint=_GAPS
        )
        batches = journal_batches(
            directory, selection, maps=maps, prefix=subject_prefix, msg_id=msg_id, stats=stats
        )
    if dry_run:
        for batch in batches:
            stats.count(batch)
        _summary(stats, dry_run=True)
    else:
        cfg = load_effective_config(config, {"nats.urls": urls})
        stats = asyncio.run(_publish(batches, cfg.nats, Pacer(pace, rate), stats))
        _summary(stats, dry_run=False)
    if directory is not None:
        # Listed gaps were reported before sending; these are segments removed while reading.
        removed = [gap for gap in stats.gaps if gap.cause != MISSING]
        report_gaps(directory, removed, allow=allow_gaps, hint=_GAPS)
    if dry_run:
        return
    if stats.interrupted:
        raise typer.Exit(130)


async def _publish(
    batches: Iterable[Sequence[Outgoing]], nats_cfg: NatsConfig, pacer: Pacer, stats: ReplayStats
) -> ReplayStats:
    nc, errors = await connect(nats_cfg)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    progress = Progress() if sys.stderr.isatty() else None
    try:
        return await replay(batches, Publisher(nc), errors, pacer, stop, stats, progress)
    finally:
        if progress is not None:
            sys.stderr.write("\n")
        await nc.close()


class Progress:
    """`sent N (seq S)` on the terminal, redrawn at most ten times a second."""

    def __init__(self) -> None:
        self.drawn_at = 0.0

    def __call__(self, stats: ReplayStats) -> None:
        now = time.monotonic()
        if now - self.drawn_at >= 0.1:
            self.drawn_at = now
            sys.stderr.write(f"\rsent {stats.sent} (seq {stats.last_seq})")
            sys.stderr.flush()


def _summary(stats: ReplayStats, *, dry_run: bool) -> None:
    verb = "would send" if dry_run else "sent"
    span = ""
    if stats.first_time_ns is not None and stats.last_time_ns is not None and stats.first_time_ns:
        span = f", recorded {format_time(stats.first_time_ns)} .. {format_time(stats.last_time_ns)}"
    typer.echo(f"{verb} {stats.sent} messages ({stats.bytes} bytes){span}", err=True)
    for name, count in sorted(stats.subjects.items()):
        typer.echo(f"  {name}: {count}", err=True)
    typer.echo(f"skipped by filters: {stats.skipped}", err=True)
    if not dry_run:
        typer.echo(f"elapsed {stats.elapsed_s:.2f} s, {stats.rate:.0f} msg/s", err=True)
    if stats.interrupted:
        resume = (stats.last_seq or 0) + 1
        typer.echo(f"interrupted: resume with --from-seq {resume}", err=True)
