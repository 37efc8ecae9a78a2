"""A journal recorded by a real `recorder run` from simulated MeshSync traffic, shared read-only."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from broker import NatsServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))

# The `recorders` fixture has its one home in tests/integration/conftest.py.
from integration.conftest import recorders as recorders
from run_helpers import Outgoing, publish, recorders_for

from recorder.demo.simulator import Simulator
from recorder.log import reset_logging
from recorder.meshsync import CORE_SUBJECT, REQUEST_SUBJECT, STORE_SUBJECT

from ._helpers import Recorded

SEED = 5
COUNT = 1500
SUBJECTS = (CORE_SUBJECT, REQUEST_SUBJECT, STORE_SUBJECT)
# Small segments, compressed once sealed: the commands must read across rotation and zstd.
RECORDER_ENV = {
    "RECORDER_JOURNAL_SEGMENT_MAX_BYTES": "64KiB",
    "RECORDER_JOURNAL_COMPRESSION": "zstd",
}
SIM_OPTIONS = {
    "clusters": 2,
    "namespaces": 2,
    "apps_per_namespace": 2,
    "pods_per_app": 2,
    "resync_every": 400,
    "store_every": 700,
}


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The in-process CLI points logging at capsys' stderr, which is gone after the test."""
    yield
    reset_logging()


@pytest.fixture(scope="package")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    """COUNT simulator messages published to a real broker and journaled by a real recorder."""
    workdir = tmp_path_factory.mktemp("recorded")
    sim = Simulator(SEED, **SIM_OPTIONS)
    messages = list(sim.events(COUNT))
    with NatsServer() as server, recorders_for(workdir) as recorders:
        recorder = recorders.start(
            workdir / "journal", server.url, subjects=SUBJECTS, env=RECORDER_ENV
        )
        recorder.wait_ready()
        publish(server.url, [Outgoing(m.subject, m.payload) for m in messages])
        recorder.wait_written(COUNT, timeout=60)
        assert recorder.stop() == 0, recorder.stderr()
    yield Recorded(workdir / "journal", sim, messages)
