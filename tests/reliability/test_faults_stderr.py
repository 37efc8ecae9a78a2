"""A daemon whose log sink fails (stderr closed, a pipe whose reader left, a hung-up terminal)
still stops cleanly on SIGTERM and SIGINT, counting the log lines it could not write."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import signal
import termios
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from broker import NatsServer
from faults import report_figures
from run_helpers import (
    RecorderProcess,
    markers_of,
    messages_of,
    numbered,
    publish,
    read_records,
    recorders_for,
    run_cli,
    wait_until,
)

from recorder.journal.record import MarkerType

CORE = "meshery.meshsync.core"
LOG_ERRORS = "meshsync_recorder_log_write_errors_total"
LINE_TIMEOUT_S = 15.0


@dataclass
class Sink:
    """Where the daemon's stdout and stderr go, and how the test then takes that away."""

    output: int | None = None
    preexec_fn: Callable[[], None] | None = None
    reader: int | None = None  # the test's end: read one line from it, then close it
    child_end: int | None = None  # the daemon's end, closed in the test once it started
    opened: list[int] = field(default_factory=list)

    def started(self) -> None:
        if self.child_end is not None:
            os.close(self.child_end)
            self.opened.remove(self.child_end)

    def hang_up(self) -> None:
        """Read one line (as `head -1` would), then close the test's end for good."""
        if self.reader is None:
            return
        _read_line(self.reader)
        os.close(self.reader)
        self.opened.remove(self.reader)

    def close(self) -> None:
        for fd in self.opened:
            with contextlib.suppress(OSError):
                os.close(fd)


def _read_line(fd: int) -> bytes:
    data = b""
    while b"\n" not in data:
        ready, _, _ = select.select([fd], [], [], LINE_TIMEOUT_S)
        assert ready, f"no log line within {LINE_TIMEOUT_S}s (got {data!r})"
        chunk = os.read(fd, 4096)
        assert chunk, f"end of output before a whole line (got {data!r})"
        data += chunk
    return data


def _closed_stderr() -> Sink:
    return Sink(preexec_fn=lambda: os.close(2))


def _pipe() -> Sink:
    reader, writer = os.pipe()
    return Sink(output=writer, reader=reader, child_end=writer, opened=[reader, writer])


def _terminal() -> Sink:
    master, slave = pty.openpty()

    def controlling_terminal() -> None:
        # Runs after setsid (start_new_session): the pty becomes the session's terminal, so
        # closing its master sends the daemon SIGHUP and makes every write fail with EIO.
        fcntl.ioctl(2, termios.TIOCSCTTY, 0)

    return Sink(
        output=slave,
        preexec_fn=controlling_terminal,
        reader=master,
        child_end=slave,
        opened=[master, slave],
    )


SINKS = {"stderr-closed": _closed_stderr, "broken-pipe": _pipe, "hung-up-terminal": _terminal}


@contextlib.contextmanager
def _sink(kind: str) -> Iterator[Sink]:
    sink = SINKS[kind]()
    try:
        yield sink
    finally:
        sink.close()


def _log_errors(recorder: RecorderProcess) -> float:
    return recorder.metrics()[LOG_ERRORS]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("kind", list(SINKS))
def test_a_failing_log_sink_never_stops_a_clean_stop(
    tmp_path: Path, kind: str, sig: signal.Signals
) -> None:
    """With its log sink gone the daemon keeps recording, counts the lost log lines in /metrics, and on SIGTERM or SIGINT stops with exit 0 and a verify-clean journal holding every message."""
    journal = tmp_path / "journal"
    with NatsServer() as server, recorders_for(tmp_path) as recorders, _sink(kind) as sink:
        recorder = recorders.start(
            journal, server.url, subjects=[CORE], output=sink.output, preexec_fn=sink.preexec_fn
        )
        sink.started()
        recorder.wait_ready()
        sink.hang_up()
        # A rotation logs from the writer thread: a line that must now fail, be counted, and
        # leave the daemon running. (A hung-up terminal also sends SIGHUP by itself.)
        recorder.send(signal.SIGHUP)
        wait_until(lambda: _log_errors(recorder) > 0, 10, "a lost log line to be counted")
        if kind == "stderr-closed":
            # A closed fd 2 was reopened on /dev/null, so no journal file can take its place.
            assert os.readlink(f"/proc/{recorder.pid}/fd/2") == os.devnull
        publish(server.url, numbered(CORE, 20))
        recorder.wait_written(20)
        lost = _log_errors(recorder)
        recorder.send(sig)
        code = recorder.wait_exit()
    assert code == 0
    records = read_records(journal)
    assert len(messages_of(records)) == 20
    stops = markers_of(records, MarkerType.STOPPED)
    assert stops and stops[-1].fields["clean"] is True
    verify = run_cli("verify", str(journal))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    report_figures(
        "log-sink",
        f"{kind}-{sig.name}",
        {"exit_code": code, "lost_log_lines": int(lost), "journaled": 20, "verify_clean": True},
    )
