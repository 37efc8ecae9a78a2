"""The command line: the only place that reads argv, env and files, prints, and sets exit codes."""

from __future__ import annotations

import sys

import typer

from recorder import __version__

# Importing the command modules registers their commands on `app`.
from recorder.cli import (  # noqa: F401
    compact_command,
    config_commands,
    demo_command,
    health_command,
    journal_commands,
    replay_command,
    run_command,
)
from recorder.cli.app import app
from recorder.errors import RecorderError

__all__ = ["app", "main"]


@app.command()
def version() -> None:
    """Print the recorder's version."""
    typer.echo(f"meshsync-recorder {__version__}")


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; a RecorderError becomes one `Error:` line and its exit code."""
    try:
        app(args=argv, prog_name="recorder")  # standalone: usage errors exit 2 by themselves
    except RecorderError as exc:
        typer.echo(f"Error: {exc}", err=True)
        if exc.hint:
            typer.echo(f"Hint: {exc.hint}", err=True)
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        # The reader of our output went away (`recorder dump | head`): not an error of ours.
        sys.stderr.close()
        sys.exit(0)
