"""Archive URLs, the index object and the journal's name: pure values, no store."""

from __future__ import annotations

from pathlib import Path

import pytest

from recorder.archive.index import ArchiveIndex, IndexEntry, decode_index
from recorder.archive.location import is_archive_url, parse_archive_url
from recorder.archive.metrics import ArchiveStatus, render_archive_metrics
from recorder.archive.naming import journal_name
from recorder.errors import ArchiveError
from recorder.journal.query import Query


def _entry(number: int, first_ns: int, last_ns: int, records: int = 3) -> IndexEntry:
    return IndexEntry(
        number, f"{number:08d}.seg", 100, "ab" * 16, number, number, first_ns, last_ns, records
    )


@pytest.mark.parametrize(
    ("url", "scheme", "bucket", "prefix"),
    [
        ("s3://bkt/a/b/", "s3", "bkt", "a/b"),
        ("s3://bkt", "s3", "bkt", ""),
        ("gs://bkt/x", "gs", "bkt", "x"),
        ("az://container/x", "az", "container", "x"),
        ("file:///var/archive/", "file", "", "/var/archive"),
    ],
)
def test_archive_urls_split_into_bucket_and_prefix(
    url: str, scheme: str, bucket: str, prefix: str
) -> None:
    """Each supported scheme gives its bucket (or container) and a prefix without slashes."""
    location = parse_archive_url(url)
    assert (location.scheme, location.bucket, location.prefix) == (scheme, bucket, prefix)
    assert is_archive_url(url)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://host/x", "scheme"),
        ("s3:///prefix", "needs a bucket"),
        ("s3://key:secret@bkt/x", "credentials"),
        ("s3://bkt/a/../b", ".."),
        ("s3://bkt/x?versionId=1", "query"),
        ("file://relative/dir", "absolute path"),
    ],
)
def test_unusable_archive_urls_are_refused_with_the_reason(url: str, reason: str) -> None:
    """A bad URL is one ArchiveError naming the URL and why, never a store that half-works."""
    with pytest.raises(ArchiveError) as caught:
        parse_archive_url(url)
    assert caught.value.kind == "bad_url"
    assert reason in str(caught.value)
    assert not is_archive_url("/var/lib/journal")


def test_the_index_round_trips_and_selects_by_time() -> None:
    """Encoded and decoded, the index lists the same segments; a time range skips the others."""
    index = ArchiveIndex("j1")
    for entry in (_entry(2, 200, 299), _entry(1, 100, 199), _entry(3, 300, 399, records=0)):
        index.add(entry)
    again = decode_index(index.encode(), "j1/index.json")
    assert again.ordered() == index.ordered()
    assert [entry.number for entry in again.ordered()] == [1, 2, 3]
    assert [entry.number for entry in again.select(Query(since_ns=250))] == [2]
    assert [entry.number for entry in again.select(Query(until_ns=150))] == [1]
    assert [entry.number for entry in again.select(Query(from_seq=2, to_seq=2))] == [2]
    assert [entry.number for entry in again.select()] == [1, 2]


@pytest.mark.parametrize("data", [b"{", b"[]", b'{"format":2}', b'{"format":1,"journal":"j"}'])
def test_a_damaged_index_is_an_error_naming_the_object(data: bytes) -> None:
    with pytest.raises(ArchiveError) as caught:
        decode_index(data, "j1/index.json")
    assert caught.value.location == "j1/index.json"
    assert caught.value.kind == "bad_index"


def test_the_journal_name_is_made_once_and_kept(tmp_path: Path) -> None:
    """Without a configured name, the same directory gives the same name after a restart."""
    first = journal_name(tmp_path)
    assert journal_name(tmp_path) == first
    assert (tmp_path / "archive.id").read_text().strip() == first
    (tmp_path / "other").mkdir()
    assert journal_name(tmp_path / "other") != first
    assert journal_name(tmp_path, "cluster-a") == "cluster-a"


def test_metrics_show_every_error_kind_even_at_zero() -> None:
    text = render_archive_metrics(ArchiveStatus(waiting_segments=2, errors={"denied": 3}))
    assert "meshsync_recorder_archive_waiting_segments 2" in text
    assert 'meshsync_recorder_archive_errors_total{kind="denied"} 3' in text
    assert 'meshsync_recorder_archive_errors_total{kind="unavailable"} 0' in text
