"""The command line: the only place that reads argv, env and files, prints, and sets exit codes."""

import contextlib
import errno
import os
import sys
from typing import NoReturn

import typer

# Commands register on `app` when their module is imported, which happens when the command is
# asked for (see COMMAND_MODULES in app.py), not here.
from recorder.cli.app import app
from recorder.errors import OutputClosedError, PathAccessError, RecorderError

__all__ = ["app", "main"]


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
    """Run the CLI; a RecorderError or an OSError becomes one `Error:` line and an exit code."""
    reopen_closed_standard_fds()
    _open_missing_stdout()
    try:
        app(args=argv, prog_name="recorder")  # standalone: usage errors exit 2 by themselves
    except OutputClosedError:
        _discard_stdout()
        sys.exit(0)
    except RecorderError as exc:
        # A file refused by the OS (PathAccessError carries its errno) gets the OSError's hint.
        refused = exc.errno if isinstance(exc, PathAccessError) else None
        hint = exc.hint or (_HINTS.get(refused) if refused is not None else None)
        _fail(str(exc), hint, exc.exit_code)
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


def _open_missing_stdout() -> None:
    """Give Python a sys.stdout where it started with fd 1 closed and left it None.

    reopen_closed_standard_fds has put /dev/null on the fd by now; the commands write their
    output through sys.stdout. sys.stderr stays None: the log sink counts the lines it loses.
    """
    if sys.stdout is None:
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - lives as sys.stdout


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so flushing what is still buffered at exit cannot fail again."""
    with contextlib.suppress(OSError, ValueError):  # not a real file (a test's capture)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
