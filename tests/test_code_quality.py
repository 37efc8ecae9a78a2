"""The definition of done, checked where CI runs it: ruff and mypy are clean on recorder/."""

from __future__ import annotations

import ast
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


MODULE_LINES_MAX = 400
FUNCTION_LINES_MAX = 60


def _sizes() -> tuple[list[str], list[str]]:
    """Modules over MODULE_LINES_MAX lines and functions over FUNCTION_LINES_MAX, by name."""
    long_modules, long_functions = [], []
    for path in sorted((ROOT / "recorder").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        name = str(path.relative_to(ROOT))
        if text.count("\n") > MODULE_LINES_MAX:
            long_modules.append(f"{name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > FUNCTION_LINES_MAX:
                    long_functions.append(f"{name}:{node.lineno} {node.name}: {lines} lines")
    return long_modules, long_functions


def test_modules_and_functions_stay_small() -> None:
    """One module one job, one function one step: sizes a reader takes in at once."""
    long_modules, long_functions = _sizes()
    assert long_modules == [], long_modules
    assert long_functions == [], long_functions
