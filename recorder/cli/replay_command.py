"""`recorder replay`: put recorded traffic (or a snapshot) back on the wire."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from recorder.cli.app import app
from recorder.cli.config_commands import ConfigFile, load_effective_config
from recorder.cli.journal_commands import build_query
from recorder.errors import UsageError
from recorder.timeparse import format_time

if TYPE_CHECKING:
    from recorder.config import NatsConfig
    from recorder.replay.run import Outgoing, Pacer, ReplayStats


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
    directory: Annotated[
        Path | None, typer.Argument(help="Journal directory.", show_default=False)
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
) -> None:
    """Republish journaled messages to NATS at the recorded pace, faster, or flat out."""
    from recorder.replay.run import (
        Pacer,
        ReplayStats,
        Selection,
        journal_batches,
        snapshot_messages,
    )
    from recorder.subjects import SubjectMap

    if (directory is None) == (snapshot is None):
        raise UsageError("give a journal directory or --snapshot FILE (one of them)")
    pace = parse_speed(speed)
    try:
        maps = tuple(SubjectMap.parse(text) for text in subject_map or ())
    except UsageError as exc:
        raise UsageError(f"--subject-map: {exc}") from None
    selection = Selection(
        build_query(since, until, from_seq, to_seq, subject),
        tuple(kind or ()),
        tuple(namespace or ()),
    )
    stats = ReplayStats()
    batches: Iterable[Sequence[Outgoing]]
    if snapshot is not None:
        batches = [
            list(snapshot_messages(snapshot, maps=maps, prefix=subject_prefix, selection=selection))
        ]
    elif directory is not None:
        if not directory.is_dir():
            raise UsageError(f"{directory}: not a journal directory (no such directory)")
        batches = journal_batches(
            directory, selection, maps=maps, prefix=subject_prefix, msg_id=msg_id, stats=stats
        )
    if dry_run:
        for batch in batches:
            stats.count(batch)
        _summary(stats, dry_run=True)
        return
    cfg = load_effective_config(config, {"nats.urls": list(nats_url) if nats_url else None})
    import asyncio

    from recorder.log import start_logging

    start_logging()  # nats-py logs through the stdlib: route it before connecting
    stats = asyncio.run(_publish(batches, cfg.nats, Pacer(pace, rate), stats))
    _summary(stats, dry_run=False)
    if stats.interrupted:
        raise typer.Exit(130)


async def _publish(
    batches: Iterable[Sequence[Outgoing]], nats_cfg: NatsConfig, pacer: Pacer, stats: ReplayStats
) -> ReplayStats:
    from recorder.replay.publisher import Publisher
    from recorder.replay.run import connect, replay

    nc, errors = await connect(nats_cfg)
    import asyncio

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
