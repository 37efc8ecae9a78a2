"""Fixtures of the reliability suite, and a summary of the figures each test measured."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# The real-process helpers live with the integration tests; share them rather than copy them.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))

# The `recorders` fixture has its one home in tests/integration/conftest.py; importing it here
# offers it to this directory's tests as well (tests/ itself is on sys.path, hence the package).
from integration.conftest import recorders as recorders

_FIGURES = pytest.StashKey[list[tuple[str, dict[str, Any]]]]()


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Callable[..., None]:
    """Record the numbers a test measured; they are printed in the terminal summary."""

    def record(**values: Any) -> None:
        request.config.stash.setdefault(_FIGURES, []).append((request.node.nodeid, values))

    return record


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    collected = config.stash.get(_FIGURES, [])
    if not collected:
        return
    terminalreporter.section("reliability figures")
    for nodeid, values in collected:
        terminalreporter.write_line(f"{nodeid.split('::')[-1]}: {json.dumps(values)}")


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Mount small tmpfs filesystems (root only; the test is skipped where mount is refused)."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        where = tmp_path / f"tmpfs-{len(mounted)}"
        where.mkdir()
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
            capture_output=True,
            check=False,
        )
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
        mounted.append(where)
        return where

    try:
        yield mount
    finally:
        for where in mounted:
            subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)
