"""Journal inspection commands: inspect, verify, repair, dump."""

from __future__ import annotations

import base64
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from recorder.cli.app import app
from recorder.cli.archive_command import Endpoint, local_journal
from recorder.cli.render import human_bytes, table
from recorder.errors import GapError, UsageError
from recorder.journal.gaps import Gap
from recorder.journal.maintenance import inspect_journal, verify_journal
from recorder.journal.reader import JournalReader, Query
from recorder.journal.record import Marker, Message, Record
from recorder.journal.repair import repair_journal
from recorder.subjects import is_valid_subject
from recorder.timeparse import format_time, parse_time

JournalDir = Annotated[Path, typer.Argument(help="Journal directory.", show_default=False)]
JournalSource = Annotated[
    str,
    typer.Argument(
        help="Journal directory, or an archive URL (s3://BUCKET/prefix, gs://, az://, file://).",
        show_default=False,
    ),
]


def _time_or_dash(time_ns: int | None) -> str:
    return format_time(time_ns) if time_ns is not None else "-"


@app.command()
def inspect(
    ctx: typer.Context,
    journal: JournalSource,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per segment.")] = False,
    endpoint: Endpoint = None,
) -> None:
    """List segments: state, records, bytes, first/last sequence and time, and totals."""
    infos = inspect_journal(ctx.with_resource(local_journal(journal, endpoint)))
    if as_json:
        for info in infos:
            typer.echo(orjson.dumps({**_fields(info), "state": info.state}).decode())
        return
    rows = [
        [
            info.name,
            info.state + (" zstd" if info.compressed else ""),
            str(info.records),
            human_bytes(info.bytes),
            str(info.first_seq or "-"),
            str(info.last_seq or "-"),
            _time_or_dash(info.first_time_ns),
            _time_or_dash(info.last_time_ns),
        ]
        for info in infos
    ]
    firsts = [info.first_seq for info in infos if info.first_seq is not None]
    lasts = [info.last_seq for info in infos if info.last_seq is not None]
    rows.append(
        [
            f"total ({len(infos)})",
            "",
            str(sum(info.records for info in infos)),
            human_bytes(sum(info.bytes for info in infos)),
            str(min(firsts)) if firsts else "-",
            str(max(lasts)) if lasts else "-",
            "",
            "",
        ]
    )
    header = [
        "segment",
        "state",
        "records",
        "bytes",
        "first seq",
        "last seq",
        "first time",
        "last time",
    ]
    typer.echo(table(header, rows))


def _fields(info: Any) -> dict[str, Any]:
    return {name: getattr(info, name) for name in info.__slots__}


@app.command()
def verify(ctx: typer.Context, journal: JournalSource, endpoint: Endpoint = None) -> None:
    """Check every record; exit 0 when clean, 1 with a report of every damaged position."""
    report = verify_journal(ctx.with_resource(local_journal(journal, endpoint)))
    for problem in report.problems:
        where = f" offset {problem.offset}" if problem.offset is not None else ""
        typer.echo(f"{problem.segment}{where}: {problem.reason}")
    live = f"; {report.in_progress} is being written" if report.in_progress else ""
    if report.removed:
        live += f"; {len(report.removed)} removed by retention while verifying"
    status = "clean" if report.clean else f"{len(report.problems)} problem(s)"
    typer.echo(f"{report.segments} segments, {report.records} records: {status}{live}")
    if not report.clean:
        raise typer.Exit(1)


@app.command()
def repair(directory: JournalDir) -> None:
    """Move torn or damaged bytes into quarantine files and seal segments; keep every valid record."""
    report = repair_journal(directory)
    for item in report.quarantined:
        typer.echo(
            f"{item.segment} offset {item.offset}: moved {item.length} bytes to {item.path.name}"
            f" ({item.reason})"
        )
    if not report.segments_repaired:
        typer.echo("nothing to repair")
        return
    typer.echo(
        f"repaired {len(report.segments_repaired)} segment(s), kept {report.records_kept} records"
    )


def build_query(
    since: str | None,
    until: str | None,
    from_seq: int | None,
    to_seq: int | None,
    subjects: list[str] | None,
) -> Query:
    """A reader query from command-line values, with errors that name the option."""
    now = time.time_ns()
    bounds = {}
    for option, value in (("--since", since), ("--until", until)):
        if value is None:
            continue
        try:
            bounds[option] = parse_time(value, now)
        except ValueError as exc:
            raise UsageError(f"{option}: {exc}") from None
    for pattern in subjects or ():
        if not is_valid_subject(pattern):
            raise UsageError(f"--subject: not a NATS subject or pattern: {pattern!r}")
    return Query(
        since_ns=bounds.get("--since"),
        until_ns=bounds.get("--until"),
        from_seq=from_seq,
        to_seq=to_seq,
        subjects=tuple(subjects or ()),
    )


def record_to_json(record: Record) -> dict[str, Any]:
    """A record as one JSON-able dict; payloads as text when they are UTF-8, else base64."""
    if isinstance(record, Marker):
        return {
            "seq": record.seq,
            "time": format_time(record.time_ns),
            "marker": str(record.type),
            "fields": record.fields,
        }
    out: dict[str, Any] = {
        "seq": record.seq,
        "time": format_time(record.time_ns),
        "subject": record.subject,
        "reply": record.reply,
        "headers": _headers_map(record),
    }
    try:
        out["payload"] = record.payload.decode("utf-8")
    except UnicodeDecodeError:
        out["payload_b64"] = base64.b64encode(record.payload).decode("ascii")
    if record.stream_seq is not None:
        out["stream_seq"] = record.stream_seq
    return out


def _headers_map(message: Message) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in message.headers or ():
        headers.setdefault(name, []).append(value)
    return headers


@app.command()
def dump(
    ctx: typer.Context,
    journal: JournalSource,
    since: Annotated[str | None, typer.Option(help="RFC 3339 time or relative like -15m.")] = None,
    until: Annotated[str | None, typer.Option(help="RFC 3339 time or relative like -5m.")] = None,
    from_seq: Annotated[int | None, typer.Option(min=0, help="First sequence number.")] = None,
    to_seq: Annotated[int | None, typer.Option(min=0, help="Last sequence number.")] = None,
    subject: Annotated[
        list[str] | None, typer.Option(help="Subject pattern (`*`, `>`), repeatable.")
    ] = None,
    markers: Annotated[bool, typer.Option("--markers", help="Include marker records.")] = False,
    salvage: Annotated[
        bool, typer.Option("--salvage", help="Skip damaged records instead of stopping.")
    ] = False,
    endpoint: Endpoint = None,
) -> None:
    """Print records as JSON lines: seq, time, subject, reply, headers, payload (or payload_b64)."""
    query = build_query(since, until, from_seq, to_seq, subject)
    directory = ctx.with_resource(local_journal(journal, endpoint, query))
    reader = JournalReader(directory, query=query, markers=markers, salvage=salvage)
    out = sys.stdout.buffer
    for _position, record in reader:
        out.write(orjson.dumps(record_to_json(record)) + b"\n")
    out.flush()
    for damage in reader.stats.damages:
        kind = "torn tail" if damage.torn else "skipped damage"
        typer.echo(
            f"warning: {damage.segment} offset {damage.offset}: {kind}: {damage.reason}", err=True
        )
    report_gaps(directory, reader.stats.gaps, allow=True)


def report_gaps(directory: Path, gaps: Sequence[Gap], *, allow: bool, hint: str = "") -> None:
    """Every gap on stderr; records missing inside the range read fail unless allowed."""
    inside = [gap.describe() for gap in gaps if gap.inside]
    for gap in gaps:
        if allow or not gap.inside:
            typer.echo(f"warning: {directory}: {gap.describe()}", err=True)
    if inside and not allow:
        error = GapError(str(directory), inside)
        error.hint = hint or None
        raise error
