"""A crash mid-compression leaves a segment in both forms; deleting it removes both."""

from __future__ import annotations

from pathlib import Path

from recorder.compact.run import prune_covered_segments
from recorder.journal.maintenance import verify_journal
from recorder.journal.retention import RetentionPolicy, enforce_retention
from recorder.journal.segment import compress_segment, find_gaps, list_segments

from ._helpers import T0, items, open_writer


def journal_with_a_twin(directory: Path) -> None:
    """Five sealed segments; the first also compressed, as a crash before the unlink leaves it."""
    writer = open_writer(directory)
    for _ in range(4):
        writer.append_messages(items(3))
        writer.rotate("demand")
    writer.close()
    first = list_segments(directory)[0]
    plain = first.path.read_bytes()
    compress_segment(first)  # writes 00000001.seg.zst, then unlinks the plain file
    first.path.write_bytes(plain)  # the unlink that the crash prevented


def names(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir() if ".seg" in path.name)


def test_retention_deletes_both_forms_so_no_old_segment_comes_back(tmp_path: Path) -> None:
    """Were only the plain file deleted, its compressed twin would reappear behind newer
    segments' deletions: a gap that verify reports."""
    directory = tmp_path / "j"
    journal_with_a_twin(directory)
    assert "00000001.seg.zst" in names(directory) and "00000001.seg" in names(directory)
    enforce_retention(directory, RetentionPolicy(max_segments=2), None, 0, T0)
    assert not [name for name in names(directory) if name.startswith("00000001")]
    assert find_gaps(list_segments(directory)) == []
    assert verify_journal(directory).clean


def test_pruning_deletes_both_forms_so_no_old_segment_comes_back(tmp_path: Path) -> None:
    """Pruning covered segments removes a compressed twin along with its plain file."""
    directory = tmp_path / "j"
    journal_with_a_twin(directory)
    deleted = prune_covered_segments(directory, covered_seq=10**9)
    assert deleted[0] == "00000001.seg"
    assert names(directory) == ["00000005.seg"]
    assert verify_journal(directory).clean
