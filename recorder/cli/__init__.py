"""The command line: the only place that reads argv, env and files, prints, and sets exit codes."""

from __future__ import annotations

import os
import sys

import typer

from recorder import __version__

# Importing the command modules registers their commands on `app`.
from recorder.cli import (  # noqa: F401
    archive_command,
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


def reopen_closed_standard_fds() -> None:
    """Reopen a standard fd the parent left closed on /dev/null.

    Otherwise the next file opened (the journal's LOCK, a segment) takes its number, and a write
    meant for stderr (a C library's, a fatal error's) would land in the journal.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; a RecorderError becomes one `Error:` line and its exit code."""
    reopen_closed_standard_fds()
    try:
        app(args=argv, prog_name="recorder")  # standalone: usage errors exit 2 by themselves
    except RecorderError as exc:
        typer.echo(f"Error: {exc}", err=True)
        if exc.hint:
            typer.echo(f"Hint: {exc.hint}", err=True)
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        # The reader of our output went away (`recorder dump | head`): not an error of ours.
        if sys.stderr is not None:  # None when started with stderr closed
            sys.stderr.close()
        sys.exit(0)
