"""`recorder health`: the container's HEALTHCHECK, asked where the recorder really listens.

A check that only knows RECORDER_HTTP_LISTEN misses a port set in a config file and cannot work
with the listener off. This command reads the effective configuration as `recorder run` does
(defaults, the file named by --config or RECORDER_CONFIG, RECORDER_* variables) and then:

- with `http.listen` set, asks that listener for /healthz (or /readyz with --ready); a wildcard
  host (0.0.0.0, ::) is asked on loopback;
- with `http.listen: off` (or port 0, which no one else can know), checks that a live process
  holds the journal directory's LOCK. The daemon holds that flock from the moment its journal is
  open until it has closed it, so "healthy" then means: a recorder is running on this journal.
  It cannot tell a hung event loop from a working one; that takes the HTTP listener (or
  systemd's watchdog, which the daemon pings from its event loop).
"""

from typing import Annotated

import typer

from recorder.cli.app import app
from recorder.cli.config_commands import ConfigFile, load_effective_config
from recorder.cli.render import examples
from recorder.errors import UnhealthyError, UsageError

# A listener on every address is asked on loopback.
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


@app.command(
    epilog=examples(
        "recorder health                     # in the container: HEALTHCHECK CMD",
        "recorder health --config /etc/recorder.yaml --ready",
    )
)
def health(
    config: ConfigFile = None,
    ready: Annotated[
        bool,
        typer.Option("--ready", help="Ask /readyz (broker, journal, disk) instead of /healthz."),
    ] = False,
    timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds to wait for the listener's answer.")
    ] = 4.0,
) -> None:
    """Exit 0 when the recorder this configuration describes is alive, 1 (naming why) when not.

    With http.listen off, a live recorder is one holding the journal directory's LOCK.
    """
    cfg = load_effective_config(config)
    address = cfg.http.address
    if address is not None and address[1] != 0:
        host = _WILDCARDS.get(address[0], address[0])
        answer = _get(host, address[1], "/readyz" if ready else "/healthz", timeout)
        typer.echo(f"healthy: {answer}")
        return
    if ready:
        raise UsageError(
            "--ready: readiness is only reported by the HTTP listener, and http.listen is off"
        )
    from recorder.journal.lock import LOCK_NAME, holder_pid, is_locked

    directory = cfg.journal.dir
    if not is_locked(directory):
        raise UnhealthyError(
            str(directory / LOCK_NAME), "no recorder holds the journal lock (http.listen is off)"
        )
    typer.echo(
        f"healthy: recorder pid {holder_pid(directory)} holds {directory / LOCK_NAME} "
        "(http.listen is off)"
    )


def _get(host: str, port: int, path: str, timeout: float) -> str:
    """`URL answered BODY` for a 200; anything else raises UnhealthyError naming the URL."""
    from http.client import HTTPException

    from recorder.localhttp import http_get

    url = f"http://{f'[{host}]' if ':' in host else host}:{port}{path}"
    try:
        status, body = http_get(host, port, path, timeout, limit=4096)
    except (OSError, HTTPException) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise UnhealthyError(url, f"no answer ({reason})") from None
    if status != 200:
        raise UnhealthyError(url, f"answered {status}: {body.strip()}")
    return f"{url} answered {body.strip()}"
