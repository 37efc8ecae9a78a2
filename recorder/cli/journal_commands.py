"""Journal inspection commands: inspect, verify, repair, dump."""

import base64
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from recorder.cli.app import app
from recorder.cli.archive_command import local_journal
from recorder.cli.investigate_options import (
    ClusterOpt,
    EventTypeOpt,
    KindOpt,
    NameOpt,
    NamespaceOpt,
    event_filter,
    output_format,
)
from recorder.cli.options import (
    ArchiveJournal,
    Endpoint,
    FromSeq,
    JournalDir,
    JournalSource,
    Output,
    Since,
    Subjects,
    ToSeq,
    Until,
)
from recorder.cli.render import examples, print_json, table, wants_json, warn
from recorder.errors import GapError, UsageError
from recorder.timeparse import format_time, parse_time
from recorder.units import human_size

if TYPE_CHECKING:
    from recorder.investigate.events import EventFilter
    from recorder.journal.gaps import Gap
    from recorder.journal.maintenance import SegmentInfo
    from recorder.journal.query import Query
    from recorder.journal.reader import JournalReader
    from recorder.journal.record import Message, Record

GAP_HINT = (
    "segments {first}..{last} are gone and no repair brings their records back; every other "
    "record still reads (dump, compact and replay read across the gap). To make verify clean, "
    "restore the missing files from a backup, or move the segments before {first} into a "
    "directory of their own, where they are a complete journal by themselves."
)


def journal_argument(directory: Path) -> None:
    """The DIR argument must be a readable directory: a usage error naming what it is instead."""
    from recorder.errors import JournalError
    from recorder.journal.segment import require_dir

    try:
        require_dir(directory)
    except JournalError as exc:
        raise UsageError(str(exc)) from None


def _time_or_dash(time_ns: int | None) -> str:
    return format_time(time_ns) if time_ns is not None else "-"


@app.command(
    epilog=examples(
        "recorder inspect /var/lib/recorder",
        "recorder inspect DIR -o json | jq .totals.records",
    )
)
def inspect(
    ctx: typer.Context,
    journal: JournalSource,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per segment (JSON lines).")
    ] = False,
    output: Output = "text",
    endpoint: Endpoint = None,
    journal_name: ArchiveJournal = None,
) -> None:
    """List segments: state, records, bytes, first/last sequence and time, and totals."""
    from recorder.journal.maintenance import inspect_journal

    document = wants_json(output)
    infos = inspect_journal(ctx.with_resource(local_journal(journal, endpoint, None, journal_name)))
    if document:
        print_json({"segments": [_segment_fields(i) for i in infos], "totals": _totals(infos)})
    elif as_json:
        import orjson

        for info in infos:
            typer.echo(orjson.dumps(_segment_fields(info)).decode())
    else:
        typer.echo(_inspect_table(infos))


def _segment_fields(info: "SegmentInfo") -> dict[str, Any]:
    return {name: getattr(info, name) for name in info.__slots__}


def _totals(infos: "list[SegmentInfo]") -> dict[str, Any]:
    """The whole journal at once: counts summed, the first and last sequence and time."""

    def extreme(pick: Any, values: list[int | None]) -> int | None:
        present = [value for value in values if value is not None]
        return pick(present) if present else None

    return {
        "segments": len(infos),
        "records": sum(info.records for info in infos),
        "messages": sum(info.messages for info in infos),
        "bytes": sum(info.bytes for info in infos),
        "first_seq": extreme(min, [info.first_seq for info in infos]),
        "last_seq": extreme(max, [info.last_seq for info in infos]),
        "first_time_ns": extreme(min, [info.first_time_ns for info in infos]),
        "last_time_ns": extreme(max, [info.last_time_ns for info in infos]),
    }


def _inspect_table(infos: "list[SegmentInfo]") -> str:
    rows = [
        [
            info.name,
            info.state + (" zstd" if info.compressed else ""),
            str(info.records),
            human_size(info.bytes),
            str(info.first_seq or "-"),
            str(info.last_seq or "-"),
            _time_or_dash(info.first_time_ns),
            _time_or_dash(info.last_time_ns),
        ]
        for info in infos
    ]
    totals = _totals(infos)
    rows.append(
        [
            f"total ({len(infos)})",
            "",
            str(totals["records"]),
            human_size(totals["bytes"]),
            str(totals["first_seq"] or "-"),
            str(totals["last_seq"] or "-"),
            "",
            "",
        ]
    )
    header = ["segment", "state", "records", "bytes", "first seq", "last seq"]
    return table([*header, "first time", "last time"], rows)


@app.command(
    epilog=examples(
        "recorder verify /var/lib/recorder",
        "recorder verify DIR -o json | jq '.problems[]'",
        "recorder verify DIR || recorder repair DIR",
    )
)
def verify(
    ctx: typer.Context,
    journal: JournalSource,
    output: Output = "text",
    endpoint: Endpoint = None,
    journal_name: ArchiveJournal = None,
) -> None:
    """Check every record; exit 0 when clean, 1 with a report of every damaged position."""
    from recorder.journal.maintenance import verify_journal

    document = wants_json(output)
    report = verify_journal(ctx.with_resource(local_journal(journal, endpoint, None, journal_name)))
    if document:
        print_json(
            {
                "clean": report.clean,
                "segments": report.segments,
                "records": report.records,
                "in_progress": report.in_progress,
                "removed": report.removed,
                "problems": [
                    {"segment": p.segment, "offset": p.offset, "reason": p.reason}
                    for p in report.problems
                ],
                "gaps": [{"first": first, "last": last} for first, last in report.gaps],
            }
        )
    else:
        for problem in report.problems:
            where = f" offset {problem.offset}" if problem.offset is not None else ""
            typer.echo(f"{problem.segment}{where}: {problem.reason}")
        live = f"; {report.in_progress} is being written" if report.in_progress else ""
        if report.removed:
            live += f"; {len(report.removed)} removed by retention while verifying"
        status = "clean" if report.clean else f"{len(report.problems)} problem(s)"
        typer.echo(f"{report.segments} segments, {report.records} records: {status}{live}")
    for first, last in report.gaps:
        typer.echo(f"Hint: {GAP_HINT.format(first=first, last=last)}", err=True)
    if not report.clean:
        raise typer.Exit(1)


@app.command(
    epilog=examples(
        "recorder repair /var/lib/recorder",
        "recorder verify DIR || recorder repair DIR && recorder verify DIR",
    )
)
def repair(directory: JournalDir) -> None:
    """Move torn or damaged bytes into quarantine files and seal segments; keep every valid record."""
    from recorder.journal.repair import repair_journal

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
) -> "Query":
    """A reader query from command-line values, with errors that name the option."""
    from recorder.journal.query import Query
    from recorder.subjects import is_valid_subject

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


def record_to_json(record: "Record") -> dict[str, Any]:
    """A record as one JSON-able dict; payloads as text when they are UTF-8, else base64."""
    from recorder.journal.record import Marker  # cached after the first record

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


def _headers_map(message: "Message") -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in message.headers or ():
        headers.setdefault(name, []).append(value)
    return headers


@app.command(
    epilog=examples(
        "recorder dump /var/lib/recorder --since -15m | jq -r .subject",
        "recorder dump DIR --from-seq 100 --to-seq 200 --subject 'meshery.meshsync.>'",
        "recorder dump DIR --salvage --markers > everything.jsonl",
    )
)
def dump(
    ctx: typer.Context,
    journal: JournalSource,
    since: Since = None,
    until: Until = None,
    from_seq: FromSeq = None,
    to_seq: ToSeq = None,
    subject: Subjects = None,
    markers: Annotated[bool, typer.Option("--markers", help="Include marker records.")] = False,
    salvage: Annotated[
        bool, typer.Option("--salvage", help="Skip damaged records instead of stopping.")
    ] = False,
    decode: Annotated[
        bool, typer.Option("--decode", help="One decoded object event per line, not payloads.")
    ] = False,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="json (lines, the default) or table.")
    ] = None,
    kind: KindOpt = None,
    namespace: NamespaceOpt = None,
    name: NameOpt = None,
    cluster: ClusterOpt = None,
    event_type: EventTypeOpt = None,
    endpoint: Endpoint = None,
    journal_name: ArchiveJournal = None,
) -> None:
    """Print records as JSON lines: seq, time, subject, reply, headers, payload (or payload_b64).

    With --decode, an object filter or -o table: one decoded object event per line instead.
    """
    import orjson

    from recorder.journal.reader import JournalReader

    fmt = output_format(output, ("json", "table"))
    query = build_query(since, until, from_seq, to_seq, subject)
    directory = ctx.with_resource(local_journal(journal, endpoint, query, journal_name))
    objects = event_filter(kind, namespace, name, cluster, event_type)
    reader = JournalReader(directory, query=query, markers=markers, salvage=salvage)
    out = sys.stdout.buffer
    if decode or objects.active or fmt == "table":
        _dump_decoded(reader, objects, fmt, out)
    else:
        for _position, record in reader:
            out.write(orjson.dumps(record_to_json(record)) + b"\n")
    out.flush()
    for damage in reader.stats.damages:
        what = "torn tail" if damage.torn else "skipped damage"
        warn(
            "journal_damage_skipped",
            f"{damage.segment} offset {damage.offset}: {what}: {damage.reason}",
            segment=damage.segment,
            offset=damage.offset,
            torn=damage.torn,
            reason=damage.reason,
        )
    report_gaps(directory, reader.stats.gaps, allow=True)


def report_gaps(directory: Path, gaps: "Sequence[Gap]", *, allow: bool, hint: str = "") -> None:
    """Every gap on stderr; records missing inside the range read fail unless allowed."""
    inside = [gap.describe() for gap in gaps if gap.inside]
    for gap in gaps:
        if allow or not gap.inside:
            message = f"{directory}: {gap.describe()}"
            warn(
                "journal_gap",
                message,
                journal=str(directory),
                gap=gap.describe(),
                inside=gap.inside,
            )
    if inside and not allow:
        error = GapError(str(directory), inside)
        error.hint = hint or None
        raise error


def _dump_decoded(
    reader: "JournalReader", objects: "EventFilter", fmt: str, out: IO[bytes]
) -> None:
    """Decoded events as JSON lines, or as one aligned table (which needs them all first)."""
    import orjson

    from recorder.investigate.events import TABLE_HEADER, item_json, item_row, iter_items

    items = iter_items((record for _position, record in reader), objects)
    if fmt == "table":
        out.write(table(TABLE_HEADER, [item_row(item) for item in items]).encode() + b"\n")
        return
    for item in items:
        out.write(orjson.dumps(item_json(item)) + b"\n")
