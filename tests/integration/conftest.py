"""Fixtures shared by every suite that drives real `recorder run` processes.

tests/hardening and tests/reliability import them from here (their conftest.py), so each fixture
has one definition; helpers that are not fixtures live in run_helpers.py.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from run_helpers import NotifySocket, Recorders, recorders_for


@pytest.fixture
def recorders(tmp_path: Path) -> Iterator[Recorders]:
    """Starts `recorder run` processes for this test; whatever is still running is killed after."""
    with recorders_for(tmp_path) as started:
        yield started


@pytest.fixture
def notify_socket() -> Iterator[NotifySocket]:
    """A NOTIFY_SOCKET for a recorder under test, collecting what it tells systemd."""
    # AF_UNIX paths are limited to about 100 bytes, which pytest's tmp_path can exceed.
    directory = Path(tempfile.mkdtemp(prefix="notify-"))
    sock = NotifySocket(directory / "notify.sock")
    try:
        yield sock
    finally:
        sock.close()
        shutil.rmtree(directory, ignore_errors=True)
