"""Hardening suite: fuzzing, bad payloads end to end, config fuzzing, permissions and secrets.

The integration helpers (real `recorder run` processes) are shared with tests/integration by
putting that directory on sys.path, the same way pytest puts it there for its own tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))

from fuzz_support import FUZZ_CASES

# The `recorders` fixture has its one home in tests/integration/conftest.py; importing it here
# offers it to this directory's tests as well (tests/ itself is on sys.path, hence the package).
from integration.conftest import recorders as recorders


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Report how many fuzz cases ran, per target, so the figure can go in the README."""
    if not FUZZ_CASES:
        return
    terminalreporter.write_sep("-", f"fuzz cases run: {sum(FUZZ_CASES.values())}")
    for name, count in sorted(FUZZ_CASES.items()):
        terminalreporter.write_line(f"{count:>9}  {name}")
