"""What the commands print: aligned tables, `-o json` documents, and the examples in --help."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import typer

from recorder.errors import UsageError
from recorder.log import get_logger, logs_json_lines

log = get_logger("cli")

OUTPUTS = ("text", "json")


def wants_json(output: str) -> bool:
    """Whether `-o` asked for JSON; anything but text or json is a usage error."""
    if output not in OUTPUTS:
        raise UsageError(f"--output: must be text or json, got {output!r}")
    return output == "json"


def print_json(document: Any) -> None:
    """One indented JSON document on stdout (paths and other objects as strings)."""
    import orjson

    typer.echo(orjson.dumps(document, default=str, option=orjson.OPT_INDENT_2).decode())


def say_summary(
    event: str, document: dict[str, Any], lines: Iterable[str], *, as_json: bool
) -> None:
    """A command's summary, said once and in one place, the same for every command:

    with `-o json`, the document on stdout and nothing else; when logs are JSON lines (asked
    for, or auto with stderr not a terminal), one `event` log record carrying the document's
    facts, so stderr stays JSON lines only; otherwise the lines, for people, on stderr.
    """
    if as_json:
        print_json(document)
    elif logs_json_lines():
        log.info(event, **document)
    else:
        for line in lines:
            typer.echo(line, err=True)


def notice(event: str, message: str, **facts: Any) -> None:
    """Something a person at the terminal wants to know: a log record in JSON log mode, else
    the message on stderr."""
    if logs_json_lines():
        log.info(event, **facts)
    else:
        typer.echo(message, err=True)


def warn(event: str, message: str, **facts: Any) -> None:
    """A warning about the input: a log record in JSON log mode, else a `warning:` line."""
    if logs_json_lines():
        log.warning(event, **facts)
    else:
        typer.echo(f"warning: {message}", err=True)


def examples(*lines: str) -> str:
    """A command's help epilog: example command lines, kept as written rather than re-wrapped."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


def table(header: list[str], rows: list[list[str]]) -> str:
    """Left-aligned columns separated by two spaces, the header underlined."""
    widths = [max(len(str(row[col])) for row in [header, *rows]) for col in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(str(cell).ljust(width) for cell, width in zip(cells, widths, strict=True))

    rule = ["-" * width for width in widths]
    return "\n".join(line(cells).rstrip() for cells in [header, rule, *rows])


def human_duration(nanoseconds: int | None) -> str:
    """`1h02m03s`, `4.250s`, or `open` for a gap that never closed."""
    if nanoseconds is None:
        return "open"
    seconds = nanoseconds / 1e9
    if seconds < 60:
        return f"{seconds:.3f}s"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"
