"""The typer application and the options every command shares."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from recorder.log import defer_logging

app = typer.Typer(
    name="recorder",
    help="Record a MeshSync NATS stream to a crash-safe journal; replay it; compact it into snapshots.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: rich would add more start-up time than the rest of the CLI together.
    rich_markup_mode=None,
)

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("auto", "json", "console")


@app.callback()
def _global_options(
    ctx: typer.Context,
    log_level: Annotated[
        str | None,
        typer.Option(help="debug, info, warning or error (default: info, or RECORDER_LOG_LEVEL)."),
    ] = None,
    log_format: Annotated[
        str | None,
        typer.Option(help="auto (JSON unless stderr is a terminal), json or console."),
    ] = None,
) -> None:
    """meshsync-recorder: never lose a cluster's MeshSync event stream."""
    level = (log_level or os.environ.get("RECORDER_LOG_LEVEL") or "info").lower()
    fmt = (log_format or os.environ.get("RECORDER_LOG_FORMAT") or "auto").lower()
    if level not in LOG_LEVELS:
        raise typer.BadParameter(
            f"must be one of {', '.join(LOG_LEVELS)}", param_hint="--log-level"
        )
    if fmt not in LOG_FORMATS:
        raise typer.BadParameter(
            f"must be one of {', '.join(LOG_FORMATS)}", param_hint="--log-format"
        )
    # Applied on the first log event: commands that never log never import structlog.
    defer_logging(level, fmt)
    # `recorder run` hands the flags to its config loader, where they outrank file and env.
    ctx.obj = {"log.level": log_level and level, "log.format": log_format and fmt}
