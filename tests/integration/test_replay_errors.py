"""`recorder replay` failing clearly: no broker, oversized payloads, permissions, a broker that dies.

Every case also checks that the journal is left exactly as it was.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from broker import NatsServer
from run_helpers import free_port
from test_replay_support import (
    Collector,
    build_journal,
    replay_cli,
    start_replay,
    tree_state,
)

from recorder.replay.run import CONFIRM_TIMEOUT_S

T0 = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z
MS = 1_000_000
PERMISSIONS = """
authorization {
  users = [
    {user: replayer, password: secret, permissions: {publish: {allow: ["allowed.>"]}}}
  ]
}
"""


def error_line(stderr: str) -> str:
    """The one `Error:` line, asserting there is exactly one line and no traceback."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    return lines[0]


def test_unreachable_broker_fails_fast_with_one_line(tmp_path: Path) -> None:
    """With nothing listening at the URL, replay exits 1 within seconds with one line naming the URL."""
    directory = tmp_path / "journal"
    build_journal(directory, [(T0, "a.b", b"x")])
    before = tree_state(directory)
    url = f"nats://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = replay_cli(directory, "--nats-url", url)
    assert time.monotonic() - started < 10  # process start-up included
    assert result.returncode == 1
    assert error_line(result.stderr).startswith(f"Error: cannot connect to {url}: ")
    assert tree_state(directory) == before


def test_payload_over_max_payload_names_the_seq(
    nats_server_factory: Callable[..., NatsServer], tmp_path: Path
) -> None:
    """A recorded payload larger than the broker's max_payload stops the replay with an error naming its seq and both sizes."""
    server = nats_server_factory(max_payload=1024)
    directory = tmp_path / "journal"
    seqs = build_journal(
        directory, [(T0 + i, "big.x", b"x" * size) for i, size in enumerate((10, 1000, 2000, 10))]
    )
    before = tree_state(directory)
    result = replay_cli(directory, "--nats-url", server.url, "--speed", "max")
    assert result.returncode == 1
    assert error_line(result.stderr) == (
        f"Error: seq {seqs[2]}: payload of 2000 bytes exceeds the broker's max_payload (1024)"
    )
    assert tree_state(directory) == before


def test_permission_violation_is_a_clear_error_even_at_a_slow_pace(
    nats_server_factory: Callable[..., NatsServer], tmp_path: Path
) -> None:
    """Publishing where the user may not is an error naming the violation, raised at the next message rather than at the end of a slow replay."""
    server = nats_server_factory(config_text=PERMISSIONS)
    # Credentials go in a config file: `--nats-url` refuses them (the command line is public).
    config = tmp_path / "replay.yaml"
    config.write_text(
        f'nats:\n  urls: ["{server.url.replace("nats://", "nats://replayer:secret@")}"]\n'
    )
    config.chmod(0o600)
    directory = tmp_path / "journal"
    # Ten seconds at the recorded pace.
    build_journal(directory, [(T0 + i * 500 * MS, "x", b"%d" % i) for i in range(21)])
    before = tree_state(directory)
    started = time.monotonic()
    denied = replay_cli(directory, "--config", config, "--subject-prefix", "denied")
    assert time.monotonic() - started < 5
    assert denied.returncode == 1
    line = error_line(denied.stderr)
    assert "the broker rejected a publish" in line
    assert 'permissions violation for publish to "denied.x"' in line

    # The same user may publish under allowed.>, so the error above was the permission.
    allowed = replay_cli(
        directory, "--config", config, "--subject-prefix", "allowed", "--to-seq", "3"
    )
    assert allowed.returncode == 0, allowed.stderr
    assert tree_state(directory) == before


def test_broker_dying_mid_replay_is_one_line_not_a_traceback(
    nats_server_factory: Callable[..., NatsServer], tmp_path: Path
) -> None:
    """When the broker goes away during a paced replay, replay exits 1 with one line saying the connection was lost."""
    server = nats_server_factory()
    directory = tmp_path / "journal"
    build_journal(directory, [(T0 + i * 100 * MS, "dying.x", b"%d" % i) for i in range(50)])
    before = tree_state(directory)
    with Collector(server.url, "dying.x") as collector:
        process = start_replay(directory, "--nats-url", server.url)
        try:
            collector.wait_count(3)
            server.kill()
            _, stderr = process.communicate(timeout=15)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode == 1, stderr
    line = error_line(stderr)
    assert "lost the connection to the broker" in line or "publish failed" in line, line
    assert tree_state(directory) == before


def test_a_frozen_broker_stops_a_flat_out_replay_within_the_confirm_timeout(
    nats_server_factory: Callable[..., NatsServer], tmp_path: Path
) -> None:
    """With the broker frozen mid-replay (SIGSTOP: the connection stays open, nothing is read), `--speed max` stops buffering and exits 1 once the broker fails to confirm within CONFIRM_TIMEOUT_S, instead of waiting forever."""
    server = nats_server_factory()
    assert server.pid is not None
    directory = tmp_path / "journal"
    payload = b"f" * 2048
    build_journal(directory, [(T0 + i * MS, "frozen.x", payload) for i in range(100_000)])
    with Collector(server.url, "frozen.x") as collector:
        process = start_replay(directory, "--nats-url", server.url, "--speed", "max")
        try:
            collector.wait_count(100)
            os.kill(server.pid, signal.SIGSTOP)
            frozen = time.monotonic()
            _, stderr = process.communicate(timeout=CONFIRM_TIMEOUT_S + 30)
            took = time.monotonic() - frozen
        finally:
            os.kill(server.pid, signal.SIGCONT)
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode == 1, stderr
    line = error_line(stderr)
    assert "the broker did not confirm messages up to seq" in line, line
    assert took < CONFIRM_TIMEOUT_S + 15, took
