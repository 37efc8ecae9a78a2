"""The archiver against MinIO in a container, when a Docker engine exists (skipped otherwise)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from broker import docker_unavailable_reason
from polling import wait_until

from recorder.archive.setup import build_archiver
from recorder.journal.record import Incoming
from recorder.journal.writer import JournalWriter

pytestmark = pytest.mark.docker
USER, PASSWORD = "recorder-test", "recorder-test-secret"


@pytest.fixture
def minio(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if reason := docker_unavailable_reason():
        pytest.skip(f"MinIO skipped: {reason}")
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    container = (
        DockerContainer("minio/minio:latest")
        .with_command("server /data")
        .with_env("MINIO_ROOT_USER", USER)
        .with_env("MINIO_ROOT_PASSWORD", PASSWORD)
        .with_exposed_ports(9000)
    )
    with container:
        wait_for_logs(container, "API:", timeout=60)
        endpoint = f"http://{container.get_container_host_ip()}:{container.get_exposed_port(9000)}"
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", USER)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", PASSWORD)
        monkeypatch.setenv("AWS_REGION", "us-east-1")
        yield endpoint


def test_segments_are_archived_to_minio(minio: str, tmp_path: Path) -> None:
    """An S3-compatible server over plain http: every sealed segment lands, index included."""
    boto3.client("s3", endpoint_url=minio).create_bucket(Bucket="recorder")
    journal = tmp_path / "journal"
    archiver = build_archiver("s3://recorder/fleet", minio, "cluster-a", journal, 2)
    writer = JournalWriter(journal, on_sealed=archiver.segment_sealed)
    writer.open()
    archiver.start()
    for number in range(3):
        writer.append_messages([Incoming(number, "meshery.meshsync.core", "", None, b"x", None)])
        writer.rotate()
    wait_until(lambda: archiver.status().archived_segments == 3, 60, "three segments in MinIO")
    writer.close()
    archiver.stop()
    listing = boto3.client("s3", endpoint_url=minio).list_objects_v2(Bucket="recorder")
    keys = {item["Key"] for item in listing["Contents"]}
    assert "fleet/cluster-a/index.json" in keys
    assert {f"fleet/cluster-a/segments/{n:08d}" for n in (1, 2, 3)} <= keys
