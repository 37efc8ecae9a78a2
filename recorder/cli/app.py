"""The typer application and the options every command shares.

The CLI modules do without `from __future__ import annotations`: typer evaluates string
annotations twice per command, for every command, at each start-up.
"""

import os
from collections.abc import Callable
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup
from typer.models import CommandFunctionType

from recorder.errors import OutputClosedError
from recorder.log import defer_logging


class _Group(TyperGroup):
    """Turns a closed standard output, wherever it is written, into OutputClosedError.

    click would exit 1 on a broken pipe; `recorder dump DIR | head -1` has done nothing wrong.
    """

    def make_context(self, *args: Any, **kwargs: Any) -> Any:  # help is printed in here
        try:
            return super().make_context(*args, **kwargs)
        except BrokenPipeError as exc:
            raise OutputClosedError() from exc

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError as exc:
            raise OutputClosedError() from exc


class _Command(TyperCommand):
    """Usage lines show a required argument as `DIR`, as man pages do, not typer's `{DIR}`."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces: list[str] = super().collect_usage_pieces(ctx)
        return [p[1:-1] if p.startswith("{") and p.endswith("}") else p for p in pieces]


class CliTyper(typer.Typer):
    """A Typer whose commands use `_Command` unless they ask for another class."""

    def command(
        self, *args: Any, cls: type[TyperCommand] | None = None, **kwargs: Any
    ) -> Callable[[CommandFunctionType], CommandFunctionType]:
        return super().command(*args, cls=cls or _Command, **kwargs)


OVERVIEW = """\b
Commands by task:
  record      run (the daemon), demo (everything on loopback, with a report)
  read        inspect, verify, dump
  fix         repair (quarantines damaged bytes, keeps every valid record)
  snapshot    compact (YAML manifests, a JSON List, or MeshSync's own files)
  resend      replay (a journal or a snapshot, paced or flat out)
  configure   config show | check | reference
  check       health (is the configured recorder alive? for a HEALTHCHECK)

\b
Environment:
  RECORDER_CONFIG      YAML config file for run, replay and config
  RECORDER_LOG_LEVEL   debug, info, warning or error
  RECORDER_LOG_FORMAT  auto, json or console
  RECORDER_*           every setting (recorder config reference lists them)

\b
Exit codes: 0 done; 1 failed (damage found, a file could not be used);
2 bad command line or configuration; 130 interrupted.

\b
Examples:
  recorder run --nats-url nats://127.0.0.1:4222 --journal-dir /var/lib/recorder
  recorder verify /var/lib/recorder && recorder compact /var/lib/recorder --out state.yaml
  recorder replay /var/lib/recorder --nats-url nats://staging:4222 --speed 10"""

app = CliTyper(
    cls=_Group,
    name="recorder",
    help="Record a MeshSync NATS stream to a crash-safe journal; replay it; compact it into snapshots.",
    epilog=OVERVIEW,
    no_args_is_help=True,
    # --install-completion / --show-completion for bash, zsh and fish, from typer itself.
    add_completion=True,
    pretty_exceptions_enable=False,
    # Plain click help: rich would add more start-up time than the rest of the CLI together.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("auto", "json", "console")


def _print_version(value: bool) -> None:
    if value:
        from recorder import __version__

        typer.echo(f"meshsync-recorder {__version__}")
        raise typer.Exit()


@app.callback()
def _global_options(
    ctx: typer.Context,
    log_level: Annotated[
        str | None,
        typer.Option(
            metavar="LEVEL",
            help="debug, info, warning or error (default: info, or RECORDER_LOG_LEVEL).",
        ),
    ] = None,
    log_format: Annotated[
        str | None,
        typer.Option(
            metavar="FORMAT", help="auto (JSON unless stderr is a terminal), json or console."
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the version and exit.",
            is_eager=True,
            callback=_print_version,
        ),
    ] = False,
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
