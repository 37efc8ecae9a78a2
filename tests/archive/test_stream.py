"""Reading commands stream an archive: a segment at a time, never the whole journal on disk."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import NamedTuple

import pytest
from meshsync_samples import sample
from polling import wait_until
from run_helpers import run_cli
from s3server import S3Server

from recorder.archive.restore import load_index, open_archive
from recorder.archive.setup import build_archiver
from recorder.archive.stream import streamed_journal
from recorder.journal.options import Compression, WriterOptions
from recorder.journal.query import Query
from recorder.journal.reader import JournalReader
from recorder.journal.record import Incoming
from recorder.journal.segment import list_segments
from recorder.journal.writer import JournalWriter
from recorder.meshsync import CORE_SUBJECT

T0 = 1_700_000_000_000_000_000
SAMPLES = ("core-added-pod", "core-added-service", "core-modified-configmap", "core-deleted-pod")
SEGMENTS = 12
BOUND = 2  # the segment being read and the one fetched ahead


def _write_journal(directory: Path, segments: int, compression: Compression) -> None:
    """A sealed journal of `segments` small segments, each holding every sample once."""
    writer = JournalWriter(directory, WriterOptions(compression=compression))
    writer.open()
    stamp = T0
    for _ in range(segments):
        batch = []
        for name in SAMPLES:
            stamp += 1_000_000
            batch.append(Incoming(stamp, CORE_SUBJECT, "", None, sample(name), None))
        writer.append_messages(batch)
        writer.rotate()
    writer.close()


def _archive(directory: Path, url: str, endpoint: str, name: str) -> int:
    """Upload the journal's sealed segments (the archiver's resume path) and wait for them."""
    sealed = len(list_segments(directory))
    archiver = build_archiver(url, endpoint, name, directory, 2)
    archiver.start()
    try:
        wait_until(
            lambda: archiver.status().archived_segments == sealed, 30, "every segment archived"
        )
    finally:
        archiver.stop()
    return sealed


class Archived(NamedTuple):
    journal: Path  # archived as cluster-a
    other: Path  # archived as cluster-b, under the same prefix
    url: str
    sealed: int  # segments of cluster-a


@pytest.fixture(scope="module")
def archived(s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Archived:
    """One journal of many small segments, archived as `cluster-a` (and `cluster-b`)."""
    bucket = s3.new_bucket()
    url = f"s3://{bucket}/fleet"
    journal = tmp_path_factory.mktemp("stream") / "journal"
    _write_journal(journal, SEGMENTS, Compression.ZSTD)
    sealed = _archive(journal, url, s3.endpoint, "cluster-a")
    other = tmp_path_factory.mktemp("stream") / "other"
    _write_journal(other, 2, Compression.NONE)
    _archive(other, url, s3.endpoint, "cluster-b")
    return Archived(journal, other, url, sealed)


def test_a_read_holds_at_most_two_segments_on_disk_and_returns_every_record(
    s3: S3Server, archived: Archived
) -> None:
    """Reading the archive gives the local journal's records while the scratch directory,
    counted at every record, never holds more than the segment read and the next."""
    journal, _other, url, sealed = archived
    store = open_archive(url, s3.endpoint)
    entries = load_index(store, "cluster-a").select(Query())
    assert len(entries) == sealed > BOUND * 3
    local = [record for _position, record in JournalReader(journal, markers=True)]
    with (
        tempfile.TemporaryDirectory() as scratch,
        streamed_journal(store, "cluster-a", entries, Path(scratch)) as stream,
    ):
        directory = Path(scratch)
        streamed, most = [], 0
        for _position, record in JournalReader(directory, markers=True):
            streamed.append(record)
            most = max(most, len(list_segments(directory)))
        left = list_segments(directory)
    assert streamed == local
    assert 1 <= most <= BOUND
    assert stream.peak_on_disk <= BOUND
    assert stream.fetched == sealed  # each once
    assert left == []  # each deleted once read


def test_a_read_stopping_early_fetches_no_more_than_one_segment_ahead(
    s3: S3Server, archived: Archived
) -> None:
    """A reader that stops after the first segment leaves the rest of the archive unfetched,
    and a read begun again afterwards still holds at most two segments."""
    url = archived.url
    store = open_archive(url, s3.endpoint)
    entries = load_index(store, "cluster-a").select(Query())
    with (
        tempfile.TemporaryDirectory() as scratch,
        streamed_journal(store, "cluster-a", entries, Path(scratch)) as stream,
    ):
        reader = JournalReader(Path(scratch))
        batches = reader.batches()
        first = next(batches)
        assert first.segment == entries[0].number
        batches.close()
        assert stream.fetched <= BOUND
        # A second read from the start: the fetch left ahead of the first is dropped, not kept.
        again = [record for _position, record in JournalReader(Path(scratch), markers=True)]
        assert len(list_segments(Path(scratch))) == 0
    assert again == [record for _position, record in JournalReader(archived.journal, markers=True)]
    assert stream.peak_on_disk <= BOUND


def _events(stderr: bytes, name: str) -> list[dict[str, object]]:
    lines = (json.loads(line) for line in stderr.splitlines() if line.startswith(b"{"))
    return [event for event in lines if event.get("event") == name]


@pytest.mark.parametrize(
    "command",
    [
        ("dump", "--markers"),
        ("dump", "--decode"),
        ("verify",),
        ("inspect", "-o", "json"),
        ("compact", "--format", "json", "--out", "-", "-q"),
        ("stats", "-o", "json"),
        ("history", "Pod/nginx-7c5ddbdf54-x8b2q", "-n", "default"),
        ("diff", "--from", "4", "--to", "40"),
    ],
    ids=lambda command: "-".join(command[:2]),
)
def test_commands_read_the_archive_as_the_local_journal_two_segments_at_a_time(
    s3: S3Server, archived: Archived, command: tuple[str, ...]
) -> None:
    """Every reading command prints for the archive what it prints for the local journal, and
    every fetch the process logs found at most two segments on disk."""
    journal, _other, url, sealed = archived
    name, *args = command
    local = run_cli(name, str(journal), *args)
    remote = run_cli(
        "--log-level",
        "debug",
        name,
        url,
        "--endpoint",
        s3.endpoint,
        "--journal",
        "cluster-a",
        *args,
    )
    expected = 1 if name == "diff" else 0  # diff(1)'s: something changed
    assert (remote.returncode, local.returncode) == (expected, expected), remote.stderr.decode()
    if name == "compact":  # where and when it was made differ; the objects may not
        documents = [json.loads(out.stdout) for out in (local, remote)]
        assert documents[0]["items"]
        assert documents[1]["items"] == documents[0]["items"]
    else:
        assert remote.stdout == local.stdout
    fetches = _events(remote.stderr, "segment_fetched")
    if name == "inspect":
        assert fetches == []  # the index's footers answer it
        return
    if name == "diff":  # it reads up to --to only: the later segments stay in the archive
        assert len(fetches) < sealed
    else:
        assert len(fetches) == sealed
    assert max(int(str(event["on_disk"])) for event in fetches) <= BOUND


def test_an_archive_of_several_journals_needs_journal_and_gets_the_one_named(
    s3: S3Server, archived: Archived, tmp_path: Path
) -> None:
    """Without --journal the archive's journals are named in the error; with it, that one reads."""
    url = archived.url
    result = run_cli("dump", url, "--endpoint", s3.endpoint)
    assert result.returncode != 0
    assert result.stderr.decode().startswith("Error: ")
    assert "holds several journals: cluster-a, cluster-b" in result.stderr.decode()
    assert b"Traceback" not in result.stderr
    result = run_cli("verify", url, "--endpoint", s3.endpoint, "--journal", "cluster-b")
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == run_cli("verify", str(archived.other)).stdout
    result = run_cli("verify", str(tmp_path), "--journal", "cluster-b")
    assert result.returncode == 2
    assert result.stderr.decode().startswith("Error: --journal: ")


def test_a_segment_that_differs_from_the_index_is_one_error_naming_the_object(
    s3: S3Server, tmp_path: Path
) -> None:
    """An archived segment changed after upload fails a read or a restore with its address."""
    bucket = s3.new_bucket()
    url = f"s3://{bucket}/fleet"
    journal = tmp_path / "journal"
    _write_journal(journal, 3, Compression.NONE)
    _archive(journal, url, s3.endpoint, "cluster-a")
    key = "fleet/cluster-a/segments/00000002"
    s3.client().put_object(Bucket=bucket, Key=key, Body=b"not the segment")  # type: ignore[attr-defined]
    result = run_cli("dump", url, "--endpoint", s3.endpoint)
    assert result.returncode != 0
    error = result.stderr.decode()
    assert error.startswith(f"Error: {url}/cluster-a/segments/00000002: object does not match")
    assert "Traceback" not in error
    result = run_cli("restore", url, str(tmp_path / "restored"), "--endpoint", s3.endpoint)
    assert result.returncode != 0
    error = result.stderr.decode()
    assert error.startswith(f"Error: {url}/cluster-a/segments/00000002: object does not match")
    assert "Traceback" not in error


def test_report_of_an_archive_is_titled_by_its_url(
    s3: S3Server, archived: Archived, tmp_path: Path
) -> None:
    """`report` reads an archive like a directory and names the archive, not a scratch path."""
    page = tmp_path / "report.html"
    result = run_cli(
        "report",
        archived.url,
        "--endpoint",
        s3.endpoint,
        "--journal",
        "cluster-a",
        "--out",
        str(page),
    )
    assert result.returncode == 0, result.stderr.decode()
    html = page.read_text()
    assert f"Journal {archived.url}" in html
    assert "recorder-archive-" not in html
