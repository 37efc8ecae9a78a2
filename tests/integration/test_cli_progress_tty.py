"""Progress on a real terminal (a pty): compact and replay draw it, --quiet and pipes do not."""

from __future__ import annotations

import os
import pty
import subprocess
from pathlib import Path

import pytest
from broker import Broker
from cli_streams import summary_event
from run_helpers import RECORDER, clean_env, run_cli
from test_compact_progress import two_cluster_journal
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


@pytest.fixture(scope="module")
def meshsync_journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return two_cluster_journal(tmp_path_factory.mktemp("meshsync") / "journal")


@pytest.mark.parametrize("journals", [1, 2], ids=["one-journal", "merged"])
def test_compact_shows_objects_written_after_segments_read(
    meshsync_journal: Path, tmp_path: Path, journals: int
) -> None:
    """After the segments read, a second bar counts objects written up to the snapshot's total;
    a merge of journals, read interleaved, shows only that one."""
    sources = [meshsync_journal] * journals
    code, shown = on_a_terminal("compact", *sources, "--format", "json", "--out", tmp_path / "s")
    assert code == 0, shown
    written = summary_event(shown, "compact_summary")["objects"]["written"]
    assert written > 0
    assert "writing objects" in shown and f"{written}/{written}" in shown
    if journals == 1:
        assert "3/3" in shown
        assert shown.index("reading segments") < shown.index("writing objects")
    else:
        assert "reading segments" not in shown


def test_compact_draws_nothing_with_quiet_or_on_a_pipe(
    meshsync_journal: Path, tmp_path: Path
) -> None:
    """--quiet on a terminal, or stderr on a pipe: no bar and no carriage return."""
    args = ("compact", meshsync_journal, "--out", tmp_path / "s.yaml")
    _, on_terminal = on_a_terminal(*args, "-q")
    piped = run_cli(*map(str, args))
    assert piped.returncode == 0, piped.stderr
    for shown in (on_terminal, piped.stderr.decode()):
        assert "segments" not in shown
        assert "writing" not in shown
        assert "\r" not in shown.replace("\r\n", "\n")  # a terminal sends \n as \r\n


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
