"""Stopping `recorder run`: a second signal skips the drain, never the flush and fsync."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from broker import NatsServer
from run_helpers import markers_of, numbered, publish, read_records, recorders_for, run_cli

from recorder.journal.record import MarkerType
from recorder.recording.daemon import DRAIN_TIMEOUT_S

CORE = "meshery.meshsync.core"


def test_second_signal_skips_a_stuck_drain_and_still_seals(tmp_path: Path) -> None:
    """With the broker frozen a drain can only wait; a second SIGTERM ends it at once, and the
    journal still gets every message, a clean stop marker and a sealed segment."""
    journal = tmp_path / "journal"
    with NatsServer() as server, recorders_for(tmp_path) as recorders:
        recorder = recorders.start(journal, server.url, subjects=[CORE])
        recorder.wait_ready()
        publish(server.url, numbered(CORE, 25))
        recorder.wait_written(25)
        assert server.pid is not None
        os.kill(server.pid, signal.SIGSTOP)  # frozen, not gone: the connection stays open
        try:
            recorder.send(signal.SIGTERM)
            recorder.wait_event("stop_requested")
            time.sleep(0.3)  # the drain is now waiting on the frozen broker
            second = time.monotonic()
            recorder.send(signal.SIGTERM)
            code = recorder.wait_exit(timeout=DRAIN_TIMEOUT_S + 10)
            after_second = time.monotonic() - second
        finally:
            os.kill(server.pid, signal.SIGCONT)
        assert code == 0, recorder.stderr()
        assert after_second < DRAIN_TIMEOUT_S - 1, after_second
        assert "drain_skipped" in recorder.event_names()
    records = read_records(journal)
    assert len([r for r in records if r.__class__.__name__ == "Message"]) == 25
    stops = markers_of(records, MarkerType.STOPPED)
    assert stops and stops[-1].fields["clean"] is True
    assert run_cli("verify", str(journal)).returncode == 0
