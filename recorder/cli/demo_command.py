"""`recorder demo`: broker, simulated MeshSync, the real daemon, verify, compact, replay; a report."""

import os
import shlex
import shutil
import signal
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from recorder.cli.app import app
from recorder.cli.render import examples, notice, table

if TYPE_CHECKING:
    from recorder.demo.run import DemoStats


@app.command(
    epilog=examples(
        "recorder demo",
        "recorder demo --events 5000 --seconds 20 --dir ./demo",
        "recorder demo --no-keep",
    )
)
def demo(
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="New or empty directory for the journal, snapshot and log "
            "(default: ./recorder-demo-YYYYmmdd-HHMMSS, or a temporary one with --no-keep).",
            show_default=False,
        ),
    ] = None,
    events: Annotated[
        int, typer.Option(help="Simulated MeshSync messages to publish (at least 300).")
    ] = 2000,
    seconds: Annotated[
        float, typer.Option(min=0.1, max=300.0, help="Spread publishing over this many seconds.")
    ] = 10.0,
    keep: Annotated[
        bool,
        typer.Option(
            "--keep/--no-keep", help="Keep the files afterwards (kept anyway on failure)."
        ),
    ] = True,
) -> None:
    """Show the whole recorder on loopback: record simulated churn, verify, compact, replay, check."""
    import tempfile

    from recorder.demo.run import DemoRequest, run_demo

    existed = directory is not None and directory.exists()  # the user's: only emptied by --no-keep
    if directory is None:
        if keep:
            directory = Path(f"recorder-demo-{time.strftime('%Y%m%d-%H%M%S')}")
        else:
            directory = Path(tempfile.mkdtemp(prefix="recorder-demo-"))
    # SIGTERM takes the same way out as Ctrl-C, so the child processes are stopped first.
    signal.signal(signal.SIGTERM, _interrupt)
    request = DemoRequest(directory, events=events, seconds=seconds, env=dict(os.environ))
    try:
        stats = run_demo(request)
    except KeyboardInterrupt:
        notice("demo_interrupted", "interrupted: nats-server and recorder stopped")
        raise typer.Exit(130) from None
    for line in report(stats):
        typer.echo(line)
    if not keep and stats.ok:
        _remove(stats.directory, keep_directory=existed)
        typer.echo(f"removed the demo's files in {stats.directory} (--no-keep)")
    if not stats.ok:
        raise typer.Exit(1)


def _remove(directory: Path, *, keep_directory: bool) -> None:
    """Delete what the demo wrote; a directory the user made (empty) stays."""
    if not keep_directory:
        shutil.rmtree(directory, ignore_errors=True)
        return
    for child in directory.iterdir():
        if child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def report(stats: "DemoStats") -> list[str]:
    """The demo's report: what ran, what was counted, the checks, and where the files are."""
    from recorder.demo.run import REPLAY_SUBJECT

    verdict = "every check passed" if stats.ok else "SOME CHECKS FAILED"
    subjects = sorted(stats.published_by_subject.items(), key=lambda item: -item[1])
    by_subject = ", ".join(f"{count} {subject}" for subject, count in subjects)
    relists = ", ".join(f"{n} {entity}" for entity, n in sorted(stats.relists.items()))
    states = ", ".join(f"{n} {state}" for state, n in sorted(stats.segment_states.items()))
    kinds = sorted(stats.truth_per_kind.keys() | stats.snapshot_per_kind.keys())
    rows = [
        [kind, str(stats.snapshot_per_kind.get(kind, 0)), str(stats.truth_per_kind.get(kind, 0))]
        for kind in kinds
    ]
    snapshot_total = sum(stats.snapshot_per_kind.values())
    journal = shlex.quote(str(stats.journal_dir))
    return [
        f"recorder demo: {verdict} ({stats.elapsed_s:.1f} s)",
        "",
        f"nats-server   {stats.broker_url}  pid {stats.broker_pid}  (stopped)",
        f"recorder run  http://{stats.http_listen}  pid {stats.recorder_pid}  "
        f"(stopped by SIGTERM, exit {stats.recorder_exit})",
        "",
        f"published  {stats.published} messages of simulated MeshSync churn:",
        f"           {by_subject}",
        f"           re-lists: {relists or 'none'}",
        f"recorded   {stats.recorded} messages in {stats.segments} segments ({states}); "
        f"verify: {'clean' if not stats.verify_problems else 'PROBLEMS'}",
        f"snapshot   {snapshot_total} objects, {stats.snapshot_differences} differing from the "
        "simulator's ground truth:",
        *("  " + line for line in table(["kind", "snapshot", "simulator"], rows).splitlines()),
        f"replayed   {stats.replay_sent} messages (the first ones, --speed max) into "
        f"{REPLAY_SUBJECT}; a subscriber received {stats.replay_received}",
        "",
        "checks",
        *(
            f"  {'ok  ' if check.ok else 'FAIL'}  {check.name}: {check.detail}"
            for check in stats.checks
        ),
        "",
        "files",
        f"  journal   {stats.journal_dir}",
        f"  snapshot  {stats.snapshot_path}",
        f"  log       {stats.log_path}  (the daemon's JSON log)",
        "",
        "look around",
        f"  recorder inspect {journal}",
        f"  recorder dump {journal} --to-seq 5",
        f"  recorder compact {journal} --format json --out snapshot.json",
    ]
