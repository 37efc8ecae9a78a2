"""`recorder tail`: the last N events, and --follow while a real recorder writes, rotates and
compresses."""

from __future__ import annotations

import signal
import subprocess
import threading
from pathlib import Path

import orjson
import pytest
from broker import NatsServer
from polling import wait_until
from run_helpers import RECORDER, Outgoing, Recorders, clean_env, publish

from recorder.demo.simulator import Simulator
from recorder.journal.segment import list_segments

from ._helpers import Recorded, cli, published_events
from .conftest import SIM_OPTIONS, SUBJECTS

FOLLOW_ENV = {
    "RECORDER_JOURNAL_SEGMENT_MAX_BYTES": "16KiB",
    "RECORDER_JOURNAL_COMPRESSION": "zstd",
}


def test_last_lines_are_the_journals_last_items(
    recorded: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    """-n 7 -o json prints the same last seven items a full decoded dump ends with."""
    code, out, err = cli(capsys, "dump", recorded.directory, "--decode", "--markers")
    assert code == 0, err
    everything = out.splitlines()
    code, out, err = cli(capsys, "tail", recorded.directory, "-n", "7", "-o", "json")
    assert code == 0, err
    assert out.splitlines() == everything[-7:]
    assert orjson.loads(everything[-1])["marker"] == "stopped"


def test_filters_pick_the_last_matching_events(
    recorded: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    """--kind with -n gives the last N events of that kind, one text line each; markers stay."""
    pods = [e for e in published_events(recorded.messages) if e.kind == "Pod"]
    code, out, err = cli(capsys, "tail", recorded.directory, "-n", "5", "--kind", "pod")
    assert code == 0, err
    *lines, stopped = out.splitlines()
    assert " -- STOPPED clean=True" in stopped
    assert len(lines) == 4
    for line, event in zip(lines, pods[-4:], strict=True):
        assert f"{event.type}" in line and f"{event.namespace}/{event.name}" in line
        assert line.endswith(f"rv={event.resource_version}")
        assert event.cluster_id[:8] in line


class _Lines:
    """Collects a child's stdout lines on a thread, so the test never blocks on a read."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.lines: list[bytes] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append(line)

    def join(self) -> None:
        self._thread.join(15)


def test_follow_shows_every_event_once_in_order_across_rotation_and_compression(
    tmp_path: Path, recorders: Recorders
) -> None:
    """While `recorder run` writes, rotates and compresses, --follow prints each event once."""
    journal = tmp_path / "journal"
    sim = Simulator(9, **SIM_OPTIONS)
    messages = list(sim.events(900))
    with NatsServer() as server:
        recorder = recorders.start(journal, server.url, subjects=SUBJECTS, env=FOLLOW_ENV)
        recorder.wait_ready()
        tail = subprocess.Popen(
            [*RECORDER, "tail", str(journal), "-n", "1", "--follow", "-o", "json"],
            stdout=subprocess.PIPE,
            stderr=(tmp_path / "tail.stderr").open("wb"),
            env=clean_env(),
        )
        try:
            lines = _Lines(tail)
            # The last item so far (the recorder's start marker) says tail has read to the end.
            wait_until(lambda: lines.lines, 30, "tail to print the start marker")
            for start in range(0, len(messages), 300):
                chunk = messages[start : start + 300]
                publish(server.url, [Outgoing(m.subject, m.payload) for m in chunk])
                recorder.wait_written(start + len(chunk), timeout=30)
            want = [(e.uid, e.type, e.resource_version) for e in published_events(messages)]

            def events() -> list[tuple[str, str, str]]:
                decoded = [orjson.loads(line) for line in list(lines.lines)]
                return [
                    (d["uid"], d["event_type"], d["resource_version"])
                    for d in decoded
                    if "event_type" in d
                ]

            try:
                wait_until(lambda: len(events()) >= len(want), 60, f"{len(want)} events from tail")
            except AssertionError:
                got = events()
                stderr = (tmp_path / "tail.stderr").read_text()
                raise AssertionError(f"tail printed {len(got)} of {len(want)}:\n{stderr}") from None
            assert recorder.stop() == 0, recorder.stderr()
            segments = list_segments(journal)
            assert len(segments) > 3 and any(s.compressed for s in segments)
            tail.send_signal(signal.SIGTERM)
            assert tail.wait(15) == 0
            lines.join()
            assert events() == want
        finally:
            if tail.poll() is None:
                tail.kill()
                tail.wait(15)
