"""What `recorder run` logs about its broker: which one (password masked), one line per attempt."""

from __future__ import annotations

from pathlib import Path

from run_helpers import free_port, recorders_for


def test_each_failed_connect_attempt_is_one_line_naming_the_masked_url(tmp_path: Path) -> None:
    """With nothing listening, every attempt logs one broker_unreachable naming the server, its
    password masked, and nats-py's own errors for that attempt are not logged beside it."""
    url = f"nats://recorder:s3cret-pw@127.0.0.1:{free_port()}"
    with recorders_for(tmp_path) as recorders:
        # In the environment: a password on the command line is readable by every user (ps).
        recorder = recorders.start(tmp_path / "journal", None, env={"RECORDER_NATS_URL": url})
        recorder.wait_event("broker_unreachable", timeout=20)
        assert recorder.stop() == 0
        events = [e for e in recorder.events() if e.get("subsystem") == "bridge"]
        stderr = recorder.stderr()
    masked = url.replace("s3cret-pw", "***")
    attempts = [e for e in events if e["event"] == "broker_unreachable"]
    assert all(e["servers"] == [masked] for e in attempts), attempts
    assert all("Connect call failed" in e["error"] for e in attempts), attempts
    assert "broker_error" not in [e["event"] for e in events]
    assert "s3cret-pw" not in stderr
