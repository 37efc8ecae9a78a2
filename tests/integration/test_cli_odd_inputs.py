"""Every command against inputs a user gets wrong: never a traceback, always a sensible exit code.

The inputs: a file instead of a directory, a file this user may not read, an empty directory, a
directory of junk, a journal whose checkpoint was cut short, and a stdout closed before start.
Each command runs as the real `recorder` in its own process (see test_cli_errors for how the
unreadable case takes root's permission override away from the child).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from test_cli_errors import SETPRIV, human_lines, journal, recorder

from recorder.compact.run import CompactRequest, run_compaction

# {path}: the odd input; {out}: somewhere harmless to write.
COMMANDS: dict[str, list[str]] = {
    "inspect": ["inspect", "{path}"],
    "inspect-json": ["inspect", "{path}", "-o", "json"],
    "verify": ["verify", "{path}", "-o", "json"],
    "dump": ["dump", "{path}", "--salvage"],
    "repair": ["repair", "{path}"],
    "compact": ["compact", "{path}", "--out", "{out}/snapshot.yaml"],
    "compact-checkpoint": ["compact", "{path}", "--checkpoint", "-o", "json", "--out", "{out}/s"],
    "compact-meshsync": ["compact", "{path}", "--format", "meshsync", "--out", "{out}/ms"],
    "replay": ["replay", "{path}", "--dry-run"],
    "replay-snapshot": ["replay", "--snapshot", "{path}", "--dry-run", "-o", "json"],
    "config-check": ["config", "check", "--config", "{path}"],
    "config-show": ["config", "show", "--config", "{path}"],
}
# `run` keeps retrying a broker that is not there once its journal opens, so it only meets the
# inputs it must refuse before connecting.
RUN = ["run", "--journal-dir", "{path}", "--nats-url", "nats://127.0.0.1:1", "--http-listen", "off"]


def a_file(base: Path) -> Path:
    path = base / "notes.bin"
    path.write_bytes(b"not a journal\x00\xff\n")
    return path


def an_unreadable_file(base: Path) -> Path:
    path = a_file(base)
    path.chmod(0)
    return path


def an_empty_directory(base: Path) -> Path:
    path = base / "empty"
    path.mkdir()
    return path


def a_directory_of_junk(base: Path) -> Path:
    path = base / "junk"
    path.mkdir()
    (path / "00000001.seg").write_bytes(os.urandom(5000))
    (path / "00000002.seg.zst").write_bytes(os.urandom(100))
    (path / "checkpoint.compact").write_bytes(os.urandom(64))
    (path / "README").write_text("kind: [unclosed\n")
    return path


def a_truncated_checkpoint(base: Path) -> Path:
    path = journal(base / "journal")
    run_compaction(CompactRequest(path, out=base / "first.yaml", checkpoint=True))
    checkpoint = path / "checkpoint.compact"
    checkpoint.write_bytes(checkpoint.read_bytes()[:40])
    return path


INPUTS: dict[str, Callable[[Path], Path]] = {
    "file": a_file,
    "unreadable-file": an_unreadable_file,
    "empty-dir": an_empty_directory,
    "junk-dir": a_directory_of_junk,
    "truncated-checkpoint": a_truncated_checkpoint,
}
CASES = [(i, c) for i in INPUTS for c in COMMANDS] + [
    ("file", "run"),
    ("unreadable-file", "run"),
]


def check_outcome(result: subprocess.CompletedProcess[str]) -> None:
    """No traceback; 0, 1 or 2; and a failure explained by at most one `Error:` line."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode in (0, 1, 2), result.stderr
    errors = [line for line in human_lines(result.stderr) if line.startswith("Error:")]
    assert len(errors) <= 1, result.stderr


@pytest.mark.parametrize(("odd", "command"), CASES, ids=[f"{i}-{c}" for i, c in CASES])
def test_odd_input_never_ends_in_a_traceback(tmp_path: Path, odd: str, command: str) -> None:
    """The command explains itself in one line, or succeeds, whatever it was given."""
    if odd == "unreadable-file" and SETPRIV is None:
        pytest.skip("setpriv (util-linux) not installed")
    (tmp_path / "out").mkdir()
    path = INPUTS[odd](tmp_path)
    argv = RUN if command == "run" else COMMANDS[command]
    args = [arg.format(path=path, out=tmp_path / "out") for arg in argv]
    result = recorder(*args, unprivileged=odd == "unreadable-file", timeout=120)
    check_outcome(result)
    if odd in ("file", "unreadable-file") and command not in ("replay-snapshot", "config-show"):
        assert result.returncode != 0, result.stderr  # a file is never a journal
    if odd == "truncated-checkpoint" and command == "compact-checkpoint":
        assert human_lines(result.stderr)[0].startswith(
            f"Error: {path / 'checkpoint.compact'}: the checkpoint is not a compaction state"
        )


def _close_stdout() -> None:
    os.close(1)


@pytest.mark.parametrize("command", list(COMMANDS), ids=list(COMMANDS))
def test_a_closed_stdout_never_ends_in_a_traceback(tmp_path: Path, command: str) -> None:
    """On a good journal, every command started with stdout closed runs and exits as usual."""
    (tmp_path / "out").mkdir()
    path = journal(tmp_path / "journal")
    args = [arg.format(path=path, out=tmp_path / "out") for arg in COMMANDS[command]]
    result = recorder(*args, preexec=_close_stdout, timeout=120)
    check_outcome(result)
    if not command.startswith(("replay-snapshot", "config")):
        assert result.returncode == 0, result.stderr
