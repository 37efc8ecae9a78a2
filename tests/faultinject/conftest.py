"""Fixtures of the fault-injection tests: the compiled shim, recorder processes, the report."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# The real-process helpers live with the integration tests, the publishers with the reliability
# suite; share them rather than copy them.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "reliability"))

from run_helpers import Recorders, recorders_for

from faultinject.faultfs import FaultyDisk, build_shim


@pytest.fixture(scope="session")
def faultfs_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("cc") is None:
        pytest.skip("no C compiler for the LD_PRELOAD shim")
    return build_shim(tmp_path_factory.mktemp("faultfs"))


@pytest.fixture
def faulty_disk(faultfs_library: Path, tmp_path: Path) -> Callable[[Path], FaultyDisk]:
    """A FaultyDisk for a journal directory: nothing injected until the test says so."""

    def make(journal: Path) -> FaultyDisk:
        journal.parent.mkdir(parents=True, exist_ok=True)
        name = journal.name
        disk = FaultyDisk(
            faultfs_library, journal, tmp_path / f"{name}.faults", tmp_path / f"{name}.injected"
        )
        disk.clear()
        return disk

    return make


@pytest.fixture
def recorders(tmp_path: Path) -> Iterator[Recorders]:
    with recorders_for(tmp_path) as started:
        yield started
