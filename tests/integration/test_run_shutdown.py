"""Stopping `recorder run`: a second signal skips the drain, never the flush and fsync."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from broker import NatsServer
from run_helpers import (
    NotifySocket,
    Recorders,
    markers_of,
    numbered,
    publish,
    read_records,
    run_cli,
)

from recorder.journal.record import MarkerType, Message
from recorder.meshsync import CORE_SUBJECT
from recorder.recording.daemon import DRAIN_TIMEOUT_S


def test_second_signal_skips_a_stuck_drain_and_still_seals(
    recorders: Recorders, notify_socket: NotifySocket, tmp_path: Path
) -> None:
    """With the broker frozen a drain can only wait; a second SIGTERM ends it at once, and the
    journal still gets every message, a clean stop marker and a sealed segment."""
    journal = tmp_path / "journal"
    with NatsServer() as server:
        env = {"NOTIFY_SOCKET": str(notify_socket.path)}
        recorder = recorders.start(journal, server.url, subjects=[CORE_SUBJECT], env=env)
        recorder.wait_ready()
        publish(server.url, numbered(CORE_SUBJECT, 25))
        recorder.wait_written(25)
        assert server.pid is not None
        os.kill(server.pid, signal.SIGSTOP)  # frozen, not gone: the connection stays open
        try:
            recorder.send(signal.SIGTERM)
            # STOPPING=1 is sent as the drain begins; from then on it can only wait on the broker.
            notify_socket.wait_for("STOPPING", "1")
            recorder.send(signal.SIGTERM)
            code = recorder.wait_exit(timeout=DRAIN_TIMEOUT_S + 10)
        finally:
            os.kill(server.pid, signal.SIGCONT)
        assert code == 0, recorder.stderr()
        # Ended by the second signal, not by the drain's own timeout.
        assert recorder.wait_event("drain_skipped")["reason"] == "second signal"
    records = read_records(journal)
    assert len([r for r in records if isinstance(r, Message)]) == 25
    stops = markers_of(records, MarkerType.STOPPED)
    assert stops and stops[-1].fields["clean"] is True
    assert run_cli("verify", str(journal)).returncode == 0
