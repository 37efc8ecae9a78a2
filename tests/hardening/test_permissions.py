"""Journals hold Secret contents unless MeshSync redacts them: everything is owner-only, whatever the umask.

Each process runs with umask 000, so any file created without an explicit mode would come out
world-readable (0666) and any directory world-writable (0777).
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from broker import Broker
from run_helpers import RECORDER, Recorders, clean_env, numbered, publish

from recorder.journal.segment import ensure_dir
from recorder.meshsync import CORE_SUBJECT

FILE_MODE = 0o600
DIR_MODE = 0o700


def _permissive_umask() -> None:
    os.umask(0)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*RECORDER, *args],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
        check=False,
        preexec_fn=_permissive_umask,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


@pytest.fixture
def journal(nats_server: Broker, recorders: Recorders, tmp_path: Path) -> Path:
    """A journal written with umask 000: small segments, rotated, sealed ones compressed."""
    directory = tmp_path / "journal"
    recorder = recorders.start(
        directory,
        nats_server.url,
        env={"RECORDER_JOURNAL_SEGMENT_MAX_BYTES": "2KiB", "RECORDER_JOURNAL_COMPRESSION": "zstd"},
        preexec_fn=_permissive_umask,
    )
    recorder.wait_ready()
    event = (
        b'{"ObjectType":"meshsync-data","EventType":"ADDED","Object":{"metadata":{"uid":"u%d"}}}'
    )
    messages = numbered(CORE_SUBJECT, 60, prefix="x" * 150)
    messages += [type(messages[0])(CORE_SUBJECT, event % i) for i in range(5)]
    publish(nats_server.url, messages)
    recorder.wait_written(len(messages))
    assert recorder.stop() == 0
    return directory


def _assert_private(directory: Path) -> list[str]:
    assert _mode(directory) == DIR_MODE, oct(_mode(directory))
    names = []
    for path in directory.iterdir():
        expected = DIR_MODE if path.is_dir() else FILE_MODE
        assert _mode(path) == expected, f"{path.name}: {oct(_mode(path))}"
        names.append(path.name)
    return names


def test_journal_files_and_directory_are_owner_only_under_umask_000(journal: Path) -> None:
    """Segments (plain and compressed), the LOCK file and the journal directory are 0600/0700."""
    names = _assert_private(journal)
    assert sum(name.endswith(".seg.zst") for name in names) >= 3, names  # rotated and compressed
    assert "LOCK" in names


def test_checkpoint_and_snapshots_are_owner_only(journal: Path, tmp_path: Path) -> None:
    """compact's checkpoint and every snapshot format (YAML, JSON, MeshSync's two files) are 0600."""
    out = tmp_path / "out"
    out.mkdir(mode=0o700)
    _run("compact", str(journal), "--checkpoint", "--out", str(out / "s.yaml"))
    _run("compact", str(journal), "--format", "json", "--out", str(out / "s.json"))
    _run("compact", str(journal), "--format", "meshsync", "--out", str(out))
    assert _mode(journal / "checkpoint.compact") == FILE_MODE
    written = sorted(out.iterdir())
    assert len(written) == 4, written
    for path in written:
        assert _mode(path) == FILE_MODE, f"{path.name}: {oct(_mode(path))}"


def test_repair_quarantine_and_rewritten_segments_are_owner_only(journal: Path) -> None:
    """repair's quarantine files and the segments it rewrites are 0600."""
    first, second = sorted(journal.glob("*.seg.zst"))[:2]
    data = bytearray(first.read_bytes())
    data[len(data) // 2] ^= 0xFF  # damage inside the compressed stream
    first.write_bytes(bytes(data))
    second.write_bytes(second.read_bytes()[:-20])  # and one cut short
    _run("repair", str(journal))
    names = _assert_private(journal)
    assert sum(name.endswith(".quarantine") for name in names) >= 2, names
    assert {first.name.removesuffix(".zst"), second.name.removesuffix(".zst")} <= set(names)


def test_missing_parent_directories_are_not_world_writable(tmp_path: Path) -> None:
    """Parents created for a new journal directory get 0755 and the journal itself 0700, even
    with umask 000."""
    journal = tmp_path / "a" / "b" / "journal"
    previous = os.umask(0)
    try:
        ensure_dir(journal)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(journal.stat().st_mode) == 0o700
    for parent in (tmp_path / "a", tmp_path / "a" / "b"):
        assert stat.S_IMODE(parent.stat().st_mode) == 0o755
