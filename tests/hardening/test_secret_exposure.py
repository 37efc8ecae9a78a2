"""Secrets stay off the command line and out of files others can read.

No flag takes a secret (only files and the environment do); `--nats-url` refuses a URL with
credentials; a config or credential file holding a secret that the group or the world may
read is a warning at start.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from broker import NatsServer
from run_helpers import RECORDER, Recorders, clean_env

from recorder.cli import app
from recorder.cli.app import load_commands

USER = "recorder-user"
PASSWORD = "pw-Exposure-3kQ9"
SECRET_WORDS = re.compile(r"pass|token|secret|seed|cred|key|auth", re.IGNORECASE)


def _options(command: Any, path: str) -> Iterator[tuple[str, Any]]:
    for name, sub in getattr(command, "commands", {}).items():
        yield from _options(sub, f"{path} {name}")
    for param in command.params:
        yield path, param


def test_no_flag_takes_a_secret_value() -> None:
    """No option of any command is named for a password, token, seed, key or credentials: secrets come from files or the environment."""
    root = typer.main.get_command(app)
    load_commands(root)  # commands are loaded when asked for; this walk asks for them all
    options = list(_options(root, "recorder"))
    assert len(options) > 40  # the walk did reach every command
    secret_flags = [
        f"{path} {opt}"
        for path, param in options
        for opt in param.opts
        if opt.startswith("-") and SECRET_WORDS.search(opt)
    ]
    assert secret_flags == []


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--journal-dir", "{tmp}/journal", "--http-listen", "off"],
        ["replay", "{tmp}/journal", "--dry-run"],
    ],
    ids=["run", "replay"],
)
def test_nats_url_flag_with_credentials_is_refused(args: list[str], tmp_path: Path) -> None:
    """`--nats-url` with user:password@ is refused before anything starts, in one Error line that masks the password."""
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    if args[0] == "replay":
        (tmp_path / "journal").mkdir()
    url = f"nats://{USER}:{PASSWORD}@127.0.0.1:4222"
    result = subprocess.run(
        [*RECORDER, *argv, "--nats-url", url],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert errors == [
        f"Error: --nats-url nats://{USER}:***@127.0.0.1:4222: credentials on the command line "
        "are visible to every user of the host"
    ], result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    if args[0] == "run":
        assert not (tmp_path / "journal").exists()


@pytest.fixture
def server() -> Iterator[NatsServer]:
    with NatsServer(user=USER, password=PASSWORD) as started:
        yield started


def _warnings(recorder: Any) -> list[dict[str, Any]]:
    return [e for e in recorder.events() if e.get("event") == "secret_file_readable_by_others"]


def test_a_config_file_with_a_password_readable_by_others_is_a_warning_at_start(
    server: NatsServer, recorders: Recorders, tmp_path: Path
) -> None:
    """A 0644 config file spelling out nats.password, and a 0640 password file, each give a warning at start naming the file, its mode and the setting; 0600 gives none."""
    config = tmp_path / "recorder.yaml"
    config.write_text(f"nats:\n  user: {USER}\n  password: {PASSWORD}\n")
    config.chmod(0o644)
    first = recorders.start(tmp_path / "j1", server.url, args=["--config", str(config)])
    first.wait_ready()
    assert first.stop() == 0
    assert _warnings(first) == [
        {
            **_warnings(first)[0],
            "path": str(config),
            "mode": "0o644",
            "holds": "nats.password",
            "level": "warning",
        }
    ]

    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n")
    password_file.chmod(0o640)
    env = {"RECORDER_NATS_USER": USER, "RECORDER_NATS_PASSWORD_FILE": str(password_file)}
    second = recorders.start(tmp_path / "j2", server.url, env=env)
    second.wait_ready()
    assert second.stop() == 0
    assert [(w["path"], w["mode"], w["holds"]) for w in _warnings(second)] == [
        (str(password_file), "0o640", "nats.password_file")
    ]

    config.chmod(0o600)
    password_file.chmod(0o600)
    for args, run_env in ((["--config", str(config)], {}), ([], env)):
        quiet = recorders.start(tmp_path / "j3", server.url, args=args, env=run_env)
        quiet.wait_ready()
        assert quiet.stop() == 0
        assert _warnings(quiet) == []
    for recorder in recorders.started:
        assert PASSWORD not in recorder.stderr()
