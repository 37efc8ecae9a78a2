"""Archive suite: a moto S3 server on loopback for the whole session, one bucket per test."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from integration.conftest import recorders as recorders
from s3server import CREDENTIALS, FaultProxy, S3Server, moto_server


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    """moto's S3 server on loopback; the in-process archiver finds AWS_* credentials in env."""
    saved = {key: os.environ.get(key) for key in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    try:
        with moto_server() as server:
            yield server
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def bucket(s3: S3Server) -> str:
    return s3.new_bucket()


@pytest.fixture
def proxy(s3: S3Server) -> Iterator[FaultProxy]:
    fault = FaultProxy(s3.port)
    try:
        yield fault
    finally:
        fault.close()
