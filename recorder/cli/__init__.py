"""The command line: the only place that reads argv, env and files, prints, and sets exit codes."""

import contextlib
import errno
import os
import sys
from typing import NoReturn

import typer

from recorder import __version__

# Importing the command modules registers their commands on `app`.
from recorder.cli import (  # noqa: F401
    compact_command,
    completion_command,
    config_commands,
    demo_command,
    journal_commands,
    replay_command,
    run_command,
)
from recorder.cli.app import app
from recorder.cli.render import examples
from recorder.errors import OutputClosedError, RecorderError

__all__ = ["app", "main"]


@app.command(epilog=examples("recorder version", "recorder --version"))
def version() -> None:
    """Print the recorder's version."""
    typer.echo(f"meshsync-recorder {__version__}")


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; a RecorderError or an OSError becomes one `Error:` line and an exit code."""
    _open_closed_stdio()
    try:
        app(args=argv, prog_name="recorder")  # standalone: usage errors exit 2 by themselves
    except OutputClosedError:
        _discard_stdout()
        sys.exit(0)
    except RecorderError as exc:
        _fail(str(exc), exc.hint, exc.exit_code)
    except OSError as exc:
        # The environment, not a bug: a file this user may not read, a full disk, a path that is
        # not what it should be. The OS names the file and the reason.
        where = f"{exc.filename}: " if exc.filename else ""
        hint = _HINTS.get(exc.errno) if exc.errno is not None else None
        _fail(f"{where}{exc.strerror or exc}", hint, 1)


_HINTS = {
    errno.EACCES: "run as a user allowed to use that file, or change its owner or mode",
    errno.ENOSPC: "free space on that filesystem; nothing already written was lost",
}


def _fail(message: str, hint: str | None, code: int) -> NoReturn:
    typer.echo(f"Error: {message}", err=True)
    if hint:
        typer.echo(f"Hint: {hint}", err=True)
    sys.exit(code)


def _open_closed_stdio() -> None:
    """A standard stream closed before start (`recorder ... >&-`) becomes /dev/null.

    Otherwise the next file opened would get its descriptor, and output meant for the
    terminal would land in a journal or snapshot.
    """
    for fd, name in ((1, "stdout"), (2, "stderr")):
        if getattr(sys, name) is None:
            devnull = os.open(os.devnull, os.O_WRONLY)
            if devnull != fd:
                os.dup2(devnull, fd)
                os.close(devnull)
            setattr(sys, name, open(fd, "w", closefd=False))  # noqa: SIM115 - lives as sys.stdout


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so flushing what is still buffered at exit cannot fail again."""
    with contextlib.suppress(OSError, ValueError):  # not a real file (a test's capture)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
