"""What the commands print: aligned tables, `-o json` documents, and the examples in --help."""

from __future__ import annotations

from typing import Any

import typer

from recorder.errors import UsageError

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
