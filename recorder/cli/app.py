"""The typer application and the options every command shares.

The CLI modules do without `from __future__ import annotations`: typer evaluates string
annotations twice per command, for every command, at each start-up.
"""

import importlib
import os
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Final

import typer
from typer.core import TyperCommand, TyperGroup
from typer.models import CommandFunctionType

from recorder.cli.render import examples
from recorder.errors import OutputClosedError
from recorder.log import defer_logging


class _Group(TyperGroup):
    """The root group: loads a command's module only when that command is asked for, and turns
    a closed standard output, wherever it is written, into OutputClosedError.

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

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMAND_MODULES)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands:
            # Not in the table: a typo. Load them all, for typer's "Did you mean ...?".
            module = COMMAND_MODULES.get(cmd_name)
            load_commands(self, [module] if module else COMMAND_MODULES.values())
        return super().get_command(ctx, cmd_name)


# The module that registers each command, in the order help lists them. A command line imports
# only its command's module and builds only its click command (typer would build all of them at
# every start, each module bringing its imports); help, completion and a mistyped name load
# them all. tests/test_cli_startup.py checks the table against what the modules register.
COMMAND_MODULES: Final = {
    "restore": "archive_command",
    "inspect": "journal_commands",
    "verify": "journal_commands",
    "repair": "journal_commands",
    "dump": "journal_commands",
    "compact": "compact_command",
    "completion": "completion_command",
    "demo": "demo_command",
    "diff": "diff_command",
    "health": "health_command",
    "history": "history_command",
    "replay": "replay_command",
    "report": "report_command",
    "run": "run_command",
    "stats": "stats_command",
    "tail": "tail_command",
    "version": "app",
    "config": "config_commands",
}


def load_commands(group: TyperGroup, modules: Iterable[str] = COMMAND_MODULES.values()) -> None:
    """Import `modules` (their commands register on `app`) and add what they registered to
    `group`, the click group typer built from `app`."""
    import typer.main

    for module in modules:
        importlib.import_module(f"recorder.cli.{module}")
    for info in app.registered_commands:
        assert info.callback is not None  # typer's own requirement
        name = info.name or typer.main.get_command_name(info.callback.__name__)
        if name not in group.commands:
            command = typer.main.get_command_from_info(
                info,
                pretty_exceptions_short=app.pretty_exceptions_short,
                rich_markup_mode=app.rich_markup_mode,
            )
            group.add_command(command, name)
    for sub_group in app.registered_groups:
        if sub_group.name and sub_group.name not in group.commands:
            built = typer.main.get_group_from_info(
                sub_group,
                pretty_exceptions_short=app.pretty_exceptions_short,
                rich_markup_mode=app.rich_markup_mode,
                suggest_commands=app.suggest_commands,
            )
            group.add_command(built, sub_group.name)


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
        version()
        raise typer.Exit()


@app.command(epilog=examples("recorder version", "recorder --version"))
def version() -> None:
    """Print the recorder's version."""
    from recorder import __version__

    typer.echo(f"meshsync-recorder {__version__}")


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
