"""Fixtures of the reliability suite, and the figures each test measured: printed in the terminal
summary and merged into build/reliability/daemon.json, which tests/render_reliability.py turns into
the README's table."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# The real-process helpers live with the integration tests; share them rather than copy them.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))

# The `recorders` fixture has its one home in tests/integration/conftest.py; importing it here
# offers it to this directory's tests as well (tests/ itself is on sys.path, hence the package).
from faults import case_name, report_figures
from integration.conftest import recorders as recorders

_FIGURES = pytest.StashKey[list[tuple[str, dict[str, Any]]]]()


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Callable[..., None]:
    """Record the numbers a test measured; they are printed in the terminal summary."""

    def record(**values: Any) -> None:
        request.config.stash.setdefault(_FIGURES, []).append((request.node.nodeid, values))
        report_figures("daemon", case_name(request.node.name), values)

    return record


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    collected = config.stash.get(_FIGURES, [])
    if not collected:
        return
    terminalreporter.section("reliability figures")
    for nodeid, values in collected:
        terminalreporter.write_line(f"{nodeid.split('::')[-1]}: {json.dumps(values)}")
