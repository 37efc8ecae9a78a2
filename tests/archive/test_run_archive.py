"""`recorder run` with archiving on, against moto's S3 server: the real daemon, its signals,
a kill between sealing and uploading, and every segment read back from the archive."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from broker import Broker
from cli_streams import summary_event
from meshsync_samples import sample
from polling import wait_until
from run_helpers import Outgoing, RecorderProcess, Recorders, publish, run_cli
from s3server import FaultProxy, S3Server, moto_with_auth

from recorder.journal.segment import list_segments
from recorder.meshsync import CORE_SUBJECT

SAMPLES = ("core-added-pod", "core-added-service", "core-modified-configmap", "core-deleted-pod")


def _archive_env(url: str, endpoint: str, name: str | None = "cluster-a") -> dict[str, str]:
    env = {"RECORDER_ARCHIVE_URL": url, "RECORDER_ARCHIVE_ENDPOINT": endpoint}
    if name:
        env["RECORDER_ARCHIVE_NAME"] = name
    return env


def _archived(recorder: RecorderProcess) -> float:
    return recorder.metrics().get("meshsync_recorder_archive_archived_segments", 0.0)


def _record_batches(recorder: RecorderProcess, url: str, batches: int) -> None:
    """Publish the samples in batches, rotating after each so every batch is a sealed segment."""
    for batch in range(batches):
        publish(url, [Outgoing(CORE_SUBJECT, sample(name)) for name in SAMPLES])
        recorder.wait_written(len(SAMPLES) * (batch + 1))
        recorder.send(signal.SIGHUP)
        wait_until(
            lambda b=batch: _archived(recorder) >= b + 1, 30, f"segment {batch + 1} archived"
        )


def _index(s3: S3Server, bucket: str, key: str) -> dict[str, object]:
    return json.loads(s3.get(bucket, key))  # type: ignore[no-any-return]


def test_compact_from_the_archive_equals_compact_from_the_deleted_journal(
    s3: S3Server, bucket: str, nats_server: Broker, recorders: Recorders, tmp_path: Path
) -> None:
    """Record with archiving, delete the journal: the archive compacts to the same snapshot."""
    journal = tmp_path / "journal"
    url = f"s3://{bucket}/fleet"
    recorder = recorders.start(journal, nats_server.url, env=_archive_env(url, s3.endpoint))
    recorder.wait_ready()
    _record_batches(recorder, nats_server.url, 3)
    assert recorder.stop() == 0
    index = _index(s3, bucket, "fleet/cluster-a/index.json")
    assert [e["number"] for e in index["segments"]] == [s.number for s in list_segments(journal)]  # type: ignore[index]
    reads = [
        ("dump", "--markers"),
        ("inspect", "--json"),
        ("replay", "--dry-run", "--speed", "max", "--nats-url", nats_server.url),
    ]
    local_reads = [run_cli(command, str(journal), *args) for command, *args in reads]
    local_out, archive_out = tmp_path / "local.json", tmp_path / "archive.json"
    assert (
        run_cli("compact", str(journal), "--format", "json", "--out", str(local_out)).returncode
        == 0
    )
    shutil.rmtree(journal)
    result = run_cli(
        "compact", url, "--endpoint", s3.endpoint, "--format", "json", "--out", str(archive_out)
    )
    assert result.returncode == 0, result.stderr.decode()
    local, archived = json.loads(local_out.read_text()), json.loads(archive_out.read_text())
    assert local["items"], "the samples make objects"
    assert archived["items"] == local["items"]
    # The same range of the same journal; only where and when it was read differ.
    for snapshot in (local, archived):
        for made_where in ("journal", "created"):
            snapshot["metadata"]["annotations"].pop(f"meshery.io/snapshot-{made_where}")
    assert archived["metadata"] == local["metadata"]
    for (command, *args), local_read in zip(reads, local_reads, strict=True):
        remote = run_cli(command, url, "--endpoint", s3.endpoint, *args)
        assert (remote.returncode, local_read.returncode) == (0, 0), remote.stderr.decode()
        # replay --dry-run logs what it would send as its summary; the others print on stdout
        said = [_said(command, out) for out in (remote, local_read)]
        assert said[0], command
        assert said[0] == said[1], command
    restored = tmp_path / "restored"
    result = run_cli("restore", url, str(restored), "--endpoint", s3.endpoint)
    assert result.returncode == 0, result.stderr.decode()
    assert run_cli("verify", str(restored)).returncode == 0


def _said(command: str, result: subprocess.CompletedProcess[bytes]) -> object:
    if command == "replay":
        return summary_event(result.stderr.decode(), "replay_summary")
    return result.stdout


def test_a_recorder_killed_between_seal_and_upload_uploads_after_restart(
    s3: S3Server,
    bucket: str,
    proxy: FaultProxy,
    nats_server: Broker,
    recorders: Recorders,
    tmp_path: Path,
) -> None:
    """Store down, a segment sealed, SIGKILL: the next start uploads it, under its one key."""
    journal = tmp_path / "journal"
    env = _archive_env(f"s3://{bucket}", proxy.endpoint, name=None)
    proxy.set_mode("down")
    first = recorders.start(journal, nats_server.url, env=env)
    first.wait_ready()
    publish(nats_server.url, [Outgoing(CORE_SUBJECT, sample(name)) for name in SAMPLES])
    first.wait_written(len(SAMPLES))
    first.send(signal.SIGHUP)
    failure = first.wait_event("archive_upload_failed", timeout=30)
    assert failure["kind"] == "unavailable", failure
    # The failure may be the start's index read, logged before the segment was even queued:
    # wait for the sealed segment to be counted as waiting rather than assume the order.
    waiting = "meshsync_recorder_archive_waiting_segments"
    wait_until(lambda: first.metrics()[waiting] >= 1, 30, "the sealed segment counted as waiting")
    first.kill()
    assert s3.keys(bucket) == []

    proxy.set_mode("pass")
    second = recorders.start(journal, nats_server.url, env=env)
    second.wait_ready()
    wait_until(lambda: _archived(second) >= 1, 30, "the sealed segment archived after restart")
    assert second.stop() == 0
    name = (journal / "archive.id").read_text().strip()
    index = _index(s3, bucket, f"{name}/index.json")
    numbers = [entry["number"] for entry in index["segments"]]  # type: ignore[index]
    assert numbers == [segment.number for segment in list_segments(journal)], second.stderr()
    assert s3.keys(bucket) == sorted(
        [f"{name}/index.json"] + [f"{name}/segments/{number:08d}" for number in numbers]
    )


@pytest.mark.parametrize("fault", ["no_bucket", "denied"])
def test_a_missing_bucket_or_bad_credentials_are_reported_and_recording_goes_on(
    s3: S3Server, nats_server: Broker, recorders: Recorders, tmp_path: Path, fault: str
) -> None:
    """One error line naming the fault, counted by kind; messages are still journaled."""
    journal = tmp_path / "journal"
    with contextlib.ExitStack() as stack:
        if fault == "denied":
            server = stack.enter_context(moto_with_auth())
            env = _archive_env(f"s3://{server.new_bucket_name()}", server.endpoint)
        else:
            env = _archive_env("s3://no-such-bucket-anywhere", s3.endpoint)
        _record_through_a_failing_store(recorders, nats_server, journal, env, fault)


def _record_through_a_failing_store(
    recorders: Recorders, nats_server: Broker, journal: Path, env: dict[str, str], fault: str
) -> None:
    recorder = recorders.start(journal, nats_server.url, env=env)
    recorder.wait_ready()
    publish(nats_server.url, [Outgoing(CORE_SUBJECT, sample(name)) for name in SAMPLES])
    recorder.wait_written(len(SAMPLES))
    recorder.send(signal.SIGHUP)
    wait_until(
        lambda: (
            recorder.metrics().get(f'meshsync_recorder_archive_errors_total{{kind="{fault}"}}', 0)
            >= 2
        ),
        30,
        "retries counted",
    )
    publish(nats_server.url, [Outgoing(CORE_SUBJECT, sample(SAMPLES[0]))])
    recorder.wait_written(len(SAMPLES) + 1)
    failures = [e for e in recorder.events() if e.get("event") == "archive_upload_failed"]
    assert [e["kind"] for e in failures] == [fault]
    assert recorder.stop() == 0
