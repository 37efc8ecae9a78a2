"""No secret ever leaves the recorder: not in logs (JSON or console), systemd STATUS lines,
tracebacks, /metrics, `config show`, `dump`, or error lines.

For each way to log in (password inline or from a file, token inline or from a file, an NKey seed,
credentials inside the URL) a recorder runs at debug level against a real broker that is restarted
once mid-run (disconnect, reconnect, markers), then a second run with a wrong secret fails; every
byte either emitted is searched for both the right and the wrong secret. A second pass runs the
console log format and ends in a writer-thread traceback (a fault injected under os.writev).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nkeys
import pytest
import run_helpers
from broker import NatsServer

# The NOTIFY_SOCKET fixture has its one home in tests/integration/conftest.py.
from integration.conftest import notify_socket as notify_socket
from polling import wait_until
from run_helpers import (
    RECORDER,
    NotifySocket,
    Recorders,
    clean_env,
    connect,
    numbered,
)

from recorder.meshsync import CORE_SUBJECT

USER = "recorder-user"
PASSWORD = "pw-7fQx2LmZ9sKd"
WRONG_PASSWORD = "pw-WRONG-4hTj8nBv"
TOKEN = "tok-Hq3Vb8Zr1YwP"
WRONG_TOKEN = "tok-WRONG-6cLm0Ae"


@dataclass
class Login:
    """How the recorder logs in: its environment, the wrong-secret variant, and the secrets."""

    server: dict[str, object]
    env: dict[str, str]
    wrong_env: dict[str, str]
    client: dict[str, object]
    secrets: list[str] = field(default_factory=list)
    url_in_env: bool = False


def _seed() -> tuple[str, str]:
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    return seed.decode(), nkeys.from_seed(bytearray(seed)).public_key.decode()


def login(kind: str, tmp_path: Path) -> Login:
    if kind in ("password-env", "password-file", "url-credentials"):
        server: dict[str, object] = {"user": USER, "password": PASSWORD}
        client: dict[str, object] = {"user": USER, "password": PASSWORD}
        secrets = [PASSWORD, WRONG_PASSWORD]
        if kind == "password-env":
            env = {"RECORDER_NATS_USER": USER, "RECORDER_NATS_PASSWORD": PASSWORD}
            wrong = {**env, "RECORDER_NATS_PASSWORD": WRONG_PASSWORD}
        elif kind == "password-file":
            (tmp_path / "pw").write_text(PASSWORD + "\n")
            (tmp_path / "wrong-pw").write_text(WRONG_PASSWORD + "\n")
            env = {"RECORDER_NATS_USER": USER, "RECORDER_NATS_PASSWORD_FILE": str(tmp_path / "pw")}
            wrong = {**env, "RECORDER_NATS_PASSWORD_FILE": str(tmp_path / "wrong-pw")}
        else:  # the URL is filled in once the port is known
            env = {"RECORDER_NATS_URL": f"nats://{USER}:{PASSWORD}@127.0.0.1:{{port}}"}
            wrong = {"RECORDER_NATS_URL": f"nats://{USER}:{WRONG_PASSWORD}@127.0.0.1:{{port}}"}
        return Login(server, env, wrong, client, secrets, url_in_env=kind == "url-credentials")
    if kind in ("token-env", "token-file"):
        if kind == "token-env":
            env = {"RECORDER_NATS_TOKEN": TOKEN}
            wrong = {"RECORDER_NATS_TOKEN": WRONG_TOKEN}
        else:
            (tmp_path / "tok").write_text(TOKEN)
            (tmp_path / "wrong-tok").write_text(WRONG_TOKEN)
            env = {"RECORDER_NATS_TOKEN_FILE": str(tmp_path / "tok")}
            wrong = {"RECORDER_NATS_TOKEN_FILE": str(tmp_path / "wrong-tok")}
        return Login({"token": TOKEN}, env, wrong, {"token": TOKEN}, [TOKEN, WRONG_TOKEN])
    assert kind == "nkey-seed"
    seed, public = _seed()
    wrong_seed, _ = _seed()
    (tmp_path / "user.nk").write_text(seed + "\n")
    (tmp_path / "wrong.nk").write_text(wrong_seed + "\n")
    server = {"config_text": f'authorization {{ users = [ {{ nkey: "{public}" }} ] }}'}
    return Login(
        server,
        {"RECORDER_NATS_NKEY_SEED_FILE": str(tmp_path / "user.nk")},
        {"RECORDER_NATS_NKEY_SEED_FILE": str(tmp_path / "wrong.nk")},
        {"nkeys_seed": str(tmp_path / "user.nk")},
        # The seed, and its private-key body without the "SU" prefix.
        [seed, seed[2:], wrong_seed, wrong_seed[2:]],
    )


def _publish(url: str, count: int, start: int, client: dict[str, object]) -> None:
    async def run() -> None:
        nc = await connect(url, **client)
        try:
            for message in numbered(CORE_SUBJECT, count, start=start):
                await nc.publish(message.subject, message.payload)
            await nc.flush(timeout=10)
        finally:
            await nc.close()

    asyncio.run(run())


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RECORDER, *args],
        capture_output=True,
        text=True,
        env=clean_env({"RECORDER_LOG_LEVEL": "debug", **env}),
        timeout=60,
        check=False,
    )


KINDS = ["password-env", "password-file", "token-env", "token-file", "nkey-seed", "url-credentials"]


@pytest.mark.parametrize("kind", KINDS)
def test_no_secret_in_anything_the_recorder_emits(
    kind: str, recorders: Recorders, tmp_path: Path, notify_socket: NotifySocket
) -> None:
    """Logs at debug level through a broker restart, systemd notify datagrams, /metrics, config show, dump and a failed login never contain a secret."""
    how = login(kind, tmp_path)
    server = NatsServer(**how.server)  # type: ignore[arg-type]
    with server:
        port = str(server.port)
        env = {k: v.replace("{port}", port) for k, v in how.env.items()}
        wrong_env = {k: v.replace("{port}", port) for k, v in how.wrong_env.items()}
        url = None if how.url_in_env else server.url
        emitted: dict[str, str] = {}

        recorder = recorders.start(
            tmp_path / "journal",
            url,
            env={
                "RECORDER_LOG_LEVEL": "debug",
                "NOTIFY_SOCKET": str(notify_socket.path),
                "WATCHDOG_USEC": "200000",  # a watchdog ping and a STATUS line every 0.1 s
                **env,
            },
        )
        recorder.wait_ready()
        notify_socket.wait_for("READY", "1")
        _publish(server.url, 5, 0, how.client)
        recorder.wait_written(5)
        server.restart()  # the recorder logs the disconnect and reconnect, and marks both
        recorder.wait_event("broker_reconnected", timeout=15)
        _publish(server.url, 5, 5, how.client)
        recorder.wait_written(10)
        response = recorder.get("/metrics")
        assert response is not None and response[0] == 200
        emitted["metrics"] = response[1]
        for path in ("/healthz", "/readyz"):
            emitted[path] = str(recorder.get(path))
        wait_until(
            lambda: any(
                message.get("STATUS", "").endswith("written=10 dropped=0 queue=0")
                for message in notify_socket.poll()
            ),
            10,
            "a STATUS line counting the 10 messages",
        )
        assert recorder.stop() == 0
        emitted["run stderr"] = recorder.stderr()
        notify_socket.wait_for("STOPPING", "1")
        emitted["sd_notify"] = "\n".join(map(repr, notify_socket.messages))
        assert "broker_disconnected" in emitted["run stderr"]

        show = _cli(env, "config", "show")
        assert show.returncode == 0, show.stderr
        emitted["config show"] = show.stdout + show.stderr
        check = _cli(env, "config", "check")
        emitted["config check"] = check.stdout + check.stderr
        dump = _cli({}, "dump", "--markers", str(tmp_path / "journal"))
        assert dump.returncode == 0, dump.stderr
        emitted["dump --markers"] = dump.stdout + dump.stderr

        failed = recorders.start(
            tmp_path / "journal-wrong",
            url,
            env={
                "RECORDER_LOG_LEVEL": "debug",
                "RECORDER_NATS_RETRY_ON_START": "false",
                **wrong_env,
            },
        )
        assert failed.wait_exit(15) != 0
        emitted["failed run stderr"] = failed.stderr()
        assert "Error: cannot connect to" in emitted["failed run stderr"]

    assert len(emitted["run stderr"].splitlines()) > 10  # it did log a lot
    for where, text in emitted.items():
        for secret in how.secrets:
            assert secret not in text, f"{secret!r} appears in {where}:\n{text[-3000:]}"


def fault_launcher(flag: Path, log_format: str) -> list[str]:
    """argv prefix running the recorder CLI with os.writev failing (RuntimeError) once `flag`
    exists: a fault below the journal writer that ends its thread with a logged traceback."""
    code = (
        "import os, sys\n"
        "real = os.writev\n"
        "def failing(fd, buffers):\n"
        f"    if os.path.exists({str(flag)!r}):\n"
        "        raise RuntimeError('injected fault under os.writev')\n"
        "    return real(fd, buffers)\n"
        "os.writev = failing\n"
        "from recorder.cli import main\n"
        "sys.argv[0] = 'recorder'\n"
        "main()\n"
    )
    return [sys.executable, "-c", code, "--log-format", log_format]


@pytest.mark.parametrize("log_format", ["console", "json"])
@pytest.mark.parametrize("kind", KINDS)
def test_no_secret_in_console_logs_or_a_traceback(
    kind: str,
    log_format: str,
    recorders: Recorders,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The console log format at debug level, a failed login, and the traceback a writer-thread fault logs never contain a secret."""
    how = login(kind, tmp_path)
    flag = tmp_path / "fail-writes"
    monkeypatch.setattr(run_helpers, "RECORDER", fault_launcher(flag, log_format))
    server = NatsServer(**how.server)  # type: ignore[arg-type]
    with server:
        port = str(server.port)
        env = {k: v.replace("{port}", port) for k, v in how.env.items()}
        wrong_env = {k: v.replace("{port}", port) for k, v in how.wrong_env.items()}
        url = None if how.url_in_env else server.url
        recorder = recorders.start(
            tmp_path / "journal", url, env={"RECORDER_LOG_LEVEL": "debug", **env}
        )
        recorder.wait_ready()
        _publish(server.url, 5, 0, how.client)
        wait_until(lambda: recorder.written() >= 5, 15, "5 messages written")
        flag.touch()
        _publish(server.url, 5, 5, how.client)
        assert recorder.wait_exit(15) == 1  # the writer thread died; the daemon stops
        run_stderr = recorder.stderr()
        assert "injected fault under os.writev" in run_stderr
        assert "Traceback" in run_stderr or '"exception"' in run_stderr, run_stderr[-3000:]
        if log_format == "console":
            assert "[debug" in run_stderr and "subscribed" in run_stderr, run_stderr[:3000]

        flag.unlink()
        failed = recorders.start(
            tmp_path / "journal-wrong",
            url,
            env={
                "RECORDER_LOG_LEVEL": "debug",
                "RECORDER_NATS_RETRY_ON_START": "false",
                **wrong_env,
            },
        )
        assert failed.wait_exit(15) != 0
        failed_stderr = failed.stderr()
        assert "Error: cannot connect to" in failed_stderr
    for where, text in (("run stderr", run_stderr), ("failed run stderr", failed_stderr)):
        for secret in how.secrets:
            assert secret not in text, f"{secret!r} appears in {where}:\n{text[-3000:]}"
