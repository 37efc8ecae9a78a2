"""`recorder tail`: the last events of a journal, and (with --follow) new ones as they are written."""

from __future__ import annotations

import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import orjson
import typer

from recorder.cli.app import app
from recorder.cli.investigate_options import (
    ClusterOpt,
    EventTypeOpt,
    KindOpt,
    NameOpt,
    NamespaceOpt,
    event_filter,
    output_format,
)
from recorder.cli.journal_commands import build_query
from recorder.cli.options import JournalDir, Output
from recorder.errors import UsageError

if TYPE_CHECKING:
    from recorder.investigate.events import Item


@app.command()
def tail(
    directory: JournalDir,
    lines: Annotated[int, typer.Option("--lines", "-n", min=0, help="How many to show.")] = 10,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep showing events as they are written.")
    ] = False,
    subject: Annotated[
        list[str] | None, typer.Option(help="Subject pattern (`*`, `>`), repeatable.")
    ] = None,
    kind: KindOpt = None,
    namespace: NamespaceOpt = None,
    name: NameOpt = None,
    cluster: ClusterOpt = None,
    event_type: EventTypeOpt = None,
    output: Output = "text",
) -> None:
    """The last N events (time, cluster, EventType, kind, namespace/name, resourceVersion)."""
    from recorder.investigate.tail import TailRequest, last_items
    from recorder.investigate.tail import follow as follow_journal

    fmt = output_format(output, ("text", "json"))
    subjects = build_query(None, None, None, None, subject).subjects
    request = TailRequest(
        directory, lines, subjects, event_filter(kind, namespace, name, cluster, event_type)
    )
    if not directory.is_dir():
        raise UsageError(f"{directory}: not a journal directory (no such directory)")
    items, last_seq = last_items(request)
    out = sys.stdout.buffer

    def emit(batch: list[Item]) -> None:
        out.write(_render(batch, fmt))
        out.flush()

    emit(items)
    if not follow:
        return
    stopping: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    follow_journal(request, last_seq, emit, stop=lambda: bool(stopping))


def _render(items: list[Item], fmt: str) -> bytes:
    from recorder.investigate.events import item_json, item_line

    if fmt == "json":
        return b"".join(orjson.dumps(item_json(item)) + b"\n" for item in items)
    return "".join(item_line(item) + "\n" for item in items).encode()
