"""`recorder health` answers for the recorder the effective configuration describes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from broker import Broker
from run_helpers import READY_TIMEOUT, clean_env, free_port, http_get, wait_until

from recorder.journal.lock import is_locked

HEALTH = [sys.executable, "-m", "recorder", "health"]


def _config(tmp_path: Path, listen: str, broker: Broker) -> Path:
    path = tmp_path / "recorder.yaml"
    path.write_text(
        f"journal:\n  dir: {tmp_path / 'journal'}\n  min_free_bytes: 0\n"
        f'nats:\n  urls: ["{broker.url}"]\nhttp:\n  listen: "{listen}"\n'
    )
    return path


def _start(config: Path, tmp_path: Path) -> subprocess.Popen[bytes]:
    """`recorder run` configured by the file alone (RECORDER_CONFIG), as in a container."""
    with (tmp_path / "recorder.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "recorder", "run"],
            env=clean_env({"RECORDER_CONFIG": str(config)}),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )


def _health(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HEALTH, *args],
        env=clean_env({"RECORDER_CONFIG": str(config)}),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _stop(recorder: subprocess.Popen[bytes]) -> None:
    recorder.terminate()
    assert recorder.wait(timeout=30) == 0


def _assert_unhealthy(result: subprocess.CompletedProcess[str], where: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith(f"Error: {where}"), result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def cleanup() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_health_asks_the_port_set_in_the_config_file(
    tmp_path: Path, nats_server: Broker, cleanup: list[subprocess.Popen[bytes]]
) -> None:
    """With the port only in the file, health asks it: 0 while the daemon runs, 1 after."""
    port = free_port()
    config = _config(tmp_path, f"127.0.0.1:{port}", nats_server)
    recorder = _start(config, tmp_path)
    cleanup.append(recorder)
    wait_until(lambda: http_get(port, "/readyz") == (200, "ready\n"), READY_TIMEOUT, "/readyz")

    healthy = _health(config)
    assert healthy.returncode == 0, healthy.stderr
    assert healthy.stdout == f"healthy: http://127.0.0.1:{port}/healthz answered ok\n"
    ready = _health(config, "--ready")
    assert ready.returncode == 0, ready.stderr
    assert ready.stdout.endswith("/readyz answered ready\n")

    _stop(recorder)
    _assert_unhealthy(_health(config), f"http://127.0.0.1:{port}/healthz: no answer")


def test_health_with_http_off_checks_the_journal_lock(
    tmp_path: Path, nats_server: Broker, cleanup: list[subprocess.Popen[bytes]]
) -> None:
    """With http.listen off, a recorder holding the journal's LOCK is healthy; none is not."""
    config = _config(tmp_path, "off", nats_server)
    journal = tmp_path / "journal"
    _assert_unhealthy(_health(config), f"{journal / 'LOCK'}: no recorder holds the journal lock")

    recorder = _start(config, tmp_path)
    cleanup.append(recorder)
    wait_until(lambda: is_locked(journal), READY_TIMEOUT, "the journal lock")
    healthy = _health(config)
    assert healthy.returncode == 0, healthy.stderr
    assert healthy.stdout == (
        f"healthy: recorder pid {recorder.pid} holds {journal / 'LOCK'} (http.listen is off)\n"
    )
    refused = _health(config, "--ready")
    assert refused.returncode == 2
    assert refused.stderr.startswith("Error: --ready: readiness is only reported by the HTTP")

    _stop(recorder)
    _assert_unhealthy(_health(config), f"{journal / 'LOCK'}: no recorder holds the journal lock")


def test_health_reports_a_listener_that_is_not_ready(
    tmp_path: Path, cleanup: list[subprocess.Popen[bytes]]
) -> None:
    """Without a broker /healthz is fine and --ready fails with /readyz's reasons, exit 1."""
    port = free_port()

    class Nobody:
        url = f"nats://127.0.0.1:{free_port()}"

    config = _config(tmp_path, f"127.0.0.1:{port}", Nobody())
    recorder = _start(config, tmp_path)
    cleanup.append(recorder)
    wait_until(lambda: http_get(port, "/healthz"), READY_TIMEOUT, "/healthz")
    assert _health(config).returncode == 0
    _assert_unhealthy(_health(config, "--ready"), f"http://127.0.0.1:{port}/readyz: answered 503")
