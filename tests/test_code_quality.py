"""The definition of done, checked where CI runs it: ruff and mypy are clean on recorder/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    "command",
    [("ruff", "check", "recorder", "tests", "bench"), ("ruff", "format", "--check", "recorder")],
    ids=["ruff-check", "ruff-format"],
)
def test_ruff_is_clean(command: tuple[str, ...]) -> None:
    """ruff finds nothing to complain about and nothing to reformat."""
    result = _run(*command)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    """mypy --strict (configured in pyproject.toml) passes on the recorder package."""
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr
