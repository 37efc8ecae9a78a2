"""The archiver against moto's S3 server on loopback, driven by a real journal writer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from polling import wait_until
from s3server import FaultProxy, S3Server
from structlog.testing import capture_logs

from recorder.archive.setup import build_archiver
from recorder.archive.uploader import Archiver
from recorder.journal.options import Compression, WriterOptions
from recorder.journal.record import Incoming
from recorder.journal.retention import RetentionPolicy
from recorder.journal.segment import SegmentFile, list_segments, segment_bytes
from recorder.journal.writer import JournalWriter

T0 = 1_700_000_000_000_000_000
NAME = "j1"


def _archiver(directory: Path, url: str, endpoint: str, **options: object) -> Archiver:
    archiver = build_archiver(url, endpoint, NAME, directory, 2)
    archiver.options = type(archiver.options)(
        NAME, backoff_initial_s=0.05, backoff_max_s=0.2, drain_timeout_s=5.0, **options
    )
    return archiver


def _writer(directory: Path, archiver: Archiver, **options: object) -> JournalWriter:
    archiver._on_archived = lambda: writer.apply_retention()
    writer = JournalWriter(
        directory,
        WriterOptions(**options),  # type: ignore[arg-type]
        on_sealed=archiver.segment_sealed,
        may_delete=archiver.may_delete,
    )
    return writer


def _record_segments(writer: JournalWriter, count: int) -> None:
    for number in range(count):
        payload = b"x" * 200
        writer.append_messages(
            [Incoming(T0 + number, "meshery.meshsync.core", "", None, payload, None)]
        )
        writer.rotate()
    writer.wait_background()


def _index(s3: S3Server, bucket: str, prefix: str = "") -> dict[str, object]:
    key = f"{prefix}{NAME}/index.json"
    return json.loads(s3.get(bucket, key))  # type: ignore[no-any-return]


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "journal"


@pytest.mark.parametrize("compression", [Compression.NONE, Compression.ZSTD])
def test_every_sealed_segment_is_uploaded_once_with_its_footer_in_the_index(
    s3: S3Server, bucket: str, journal: Path, compression: Compression, tmp_path: Path
) -> None:
    """Sealed segments land under one key each, byte for byte, and the index lists them."""
    archiver = _archiver(journal, f"s3://{bucket}/fleet", s3.endpoint)
    writer = _writer(journal, archiver, compression=compression)
    writer.open()
    archiver.start()
    _record_segments(writer, 3)
    wait_until(lambda: archiver.status().archived_segments == 3, 20, "three segments archived")
    writer.close()
    archiver.stop()
    local = {segment.number: segment for segment in list_segments(journal)}
    index = _index(s3, bucket, "fleet/")
    numbers = [entry["number"] for entry in index["segments"]]  # type: ignore[index]
    assert numbers == sorted(local)  # every sealed segment, the one closed at stop too
    for entry in index["segments"]:  # type: ignore[attr-defined]
        stored = s3.get(bucket, f"fleet/{NAME}/segments/{entry['number']:08d}")
        # The form it had when uploaded (a scan at start can see a segment before compression
        # replaces it), holding the same records as the local one.
        copy = tmp_path / entry["name"]
        copy.write_bytes(stored)
        assert segment_bytes(SegmentFile(entry["number"], copy)) == segment_bytes(
            local[entry["number"]]
        )
        assert entry["last_seq"] >= entry["first_seq"] >= 1
    assert s3.keys(bucket) == sorted(
        [f"fleet/{NAME}/index.json"] + [f"fleet/{NAME}/segments/{n:08d}" for n in numbers]
    )
    assert segment_bytes(local[numbers[0]])  # still readable locally: no retention asked


def test_a_restart_uploads_what_was_sealed_while_the_store_was_down(
    s3: S3Server, bucket: str, journal: Path, proxy: FaultProxy
) -> None:
    """Store down: segments wait locally; a new archiver (a restart) uploads each one once."""
    proxy.set_mode("down")
    archiver = _archiver(journal, f"s3://{bucket}", proxy.endpoint)
    writer = _writer(journal, archiver)
    writer.open()
    archiver.start()
    _record_segments(writer, 2)
    wait_until(lambda: archiver.status().errors.get("unavailable"), 20, "an unavailable error")
    assert archiver.status().waiting_segments + 1 >= 2
    writer.close()
    archiver.options = type(archiver.options)(NAME, drain_timeout_s=0.0)
    archiver.stop()
    assert s3.keys(bucket) == []

    proxy.set_mode("pass")
    again = _archiver(journal, f"s3://{bucket}", proxy.endpoint)
    again.start()
    sealed = len(list_segments(journal))
    wait_until(lambda: again.status().archived_segments == sealed, 20, "the backlog archived")
    again.stop()
    assert len(s3.keys(bucket)) == sealed + 1


def test_retention_deletes_only_archived_segments(
    s3: S3Server, bucket: str, journal: Path, proxy: FaultProxy
) -> None:
    """With the store down, retention keeps everything; once archived, it trims the journal."""
    proxy.set_mode("down")
    archiver = _archiver(journal, f"s3://{bucket}", proxy.endpoint)
    writer = _writer(journal, archiver, retention=RetentionPolicy(max_segments=1))
    writer.open()
    archiver.start()
    with capture_logs() as logs:
        _record_segments(writer, 4)
    assert len(list_segments(journal)) == 5  # 4 sealed + the active one, none deleted
    assert "retention_waiting_for_archive" in {log["event"] for log in logs}
    proxy.set_mode("pass")
    wait_until(lambda: archiver.status().archived_segments == 4, 30, "four segments archived")
    wait_until(lambda: len(list_segments(journal)) <= 2, 10, "retention trimming the journal")
    archived = {entry["number"] for entry in _index(s3, bucket)["segments"]}  # type: ignore[index]
    assert {1, 2, 3, 4} <= archived
    writer.close()
    archiver.stop()


def test_500s_and_delays_are_retried_and_logged_once(
    s3: S3Server, bucket: str, journal: Path, proxy: FaultProxy
) -> None:
    """A store answering 500 is retried with backoff; one log line for the class, counted each."""
    proxy.set_mode("error", delay_s=0.05)
    archiver = _archiver(journal, f"s3://{bucket}", proxy.endpoint)
    writer = _writer(journal, archiver)
    writer.open()
    with capture_logs() as logs:
        archiver.start()
        _record_segments(writer, 2)
        wait_until(lambda: proxy.errors_sent >= 6, 30, "several 500 answers")
        proxy.set_mode("pass", delay_s=0.05)
        wait_until(lambda: archiver.status().archived_segments == 2, 30, "both segments archived")
    writer.close()
    archiver.stop()
    failures = [log for log in logs if log["event"] == "archive_upload_failed"]
    assert len(failures) == 1, failures
    assert archiver.status().errors.get(failures[0]["kind"], 0) >= 2
    assert "archive_recovered" in {log["event"] for log in logs}


def test_a_missing_bucket_is_one_clear_error(s3: S3Server, journal: Path) -> None:
    """No such bucket: one error line saying so, counted as no_bucket; the segment stays."""
    archiver = _archiver(journal, "s3://no-such-bucket-here", s3.endpoint)
    writer = _writer(journal, archiver)
    writer.open()
    with capture_logs() as logs:
        archiver.start()
        _record_segments(writer, 1)
        wait_until(lambda: archiver.status().errors.get("no_bucket", 0) >= 3, 20, "retries")
    writer.close()
    archiver.options = type(archiver.options)(NAME, drain_timeout_s=0.0)
    archiver.stop()
    failures = [log for log in logs if log["event"] == "archive_upload_failed"]
    assert [log["kind"] for log in failures] == ["no_bucket"]
    assert "bucket does not exist" in failures[0]["error"]
    assert len(list_segments(journal)) == 2


def test_a_segment_larger_than_a_multipart_chunk_is_one_put_checked_by_its_entity_tag(
    s3: S3Server, bucket: str, journal: Path
) -> None:
    """A 6 MiB segment is stored by one PUT, so its entity tag is its MD5 (no read-back needed)."""
    archiver = _archiver(journal, f"s3://{bucket}", s3.endpoint)
    writer = _writer(journal, archiver)
    writer.open()
    archiver.start()
    payload = b"y" * (768 << 10)
    writer.append_messages(
        [Incoming(T0 + n, "meshery.meshsync.core", "", None, payload, None) for n in range(8)]
    )
    writer.rotate()
    wait_until(lambda: archiver.status().archived_segments == 1, 30, "the segment archived")
    writer.close()
    archiver.stop()
    entry = _index(s3, bucket)["segments"][0]  # type: ignore[index]
    assert entry["size"] > 6 << 20
    head = s3.client().head_object(Bucket=bucket, Key=f"{NAME}/segments/00000001")  # type: ignore[attr-defined]
    assert head["ETag"].strip('"') == entry["md5"]  # a multipart tag would end in -N
