"""Progress on a real terminal (a pty): compact and replay draw it, --quiet and pipes do not."""

from __future__ import annotations

import os
import pty
import subprocess
from pathlib import Path

import pytest
from broker import Broker
from cli_streams import summary_event
from run_helpers import RECORDER, clean_env
from test_replay_support import build_journal

T0 = 1_795_000_000 * 10**9


def on_a_terminal(*args: str | Path) -> tuple[int, str]:
    """Run `recorder ARGS` with stderr on a pty; returns the exit code and what the pty showed."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [*RECORDER, *map(str, args)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
        env=clean_env(),
    )
    os.close(slave)
    shown = bytearray()
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the last copy of the pty's other end
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    return process.wait(timeout=60), shown.decode(errors="replace")


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    """40 messages recorded a second apart, in 4 segments."""
    directory = tmp_path / "journal"
    build_journal(
        directory,
        [(T0 + i * 10**9, "meshery.meshsync.core", b"{}") for i in range(40)],
        rotate_every=10,
    )
    return directory


def test_compact_shows_segments_read_on_a_terminal(journal: Path, tmp_path: Path) -> None:
    """On a terminal compact draws a bar over the segments it reads; --quiet leaves it out."""
    code, shown = on_a_terminal("compact", journal, "--out", tmp_path / "s.yaml")
    assert code == 0, shown
    assert "reading segments" in shown
    code, shown = on_a_terminal("compact", journal, "--out", tmp_path / "s.yaml", "--quiet")
    assert code == 0, shown
    assert "reading segments" not in shown
    # The summary is a log record: RECORDER asks for JSON logs (see test_cli_summaries.py).
    assert summary_event(shown, "compact_summary")["read"]["messages"] == 40


def test_replay_shows_sent_of_total_and_an_eta(nats_server: Broker, journal: Path) -> None:
    """At --speed 40 the line counts against the journal's total and gives an ETA; -q hides it."""
    args = ("replay", journal, "--nats-url", nats_server.url, "--speed", "40")
    code, shown = on_a_terminal(*args)
    assert code == 0, shown
    assert "sent 1 of 40 (seq " in shown
    assert "ETA " in shown
    code, shown = on_a_terminal(*args, "-q")
    assert code == 0, shown
    assert " of 40" not in shown
    assert summary_event(shown, "replay_summary")["messages"] == 40
