"""Reading unsynced records back from the failed segment, past what the writer keeps in memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from recorder.errors import CorruptionError
from recorder.journal.unsynced import read_back

from ._helpers import items, open_writer


def test_read_back_returns_every_record_written_since_the_last_fsync(tmp_path: Path) -> None:
    """The records after the last fsync come back whole, in order, with their sequence numbers."""
    writer = open_writer(tmp_path / "j")
    writer.sync()
    writer.append_messages(items(5, payload=b"x" * 100))
    active = writer._active
    assert active is not None
    chunks = read_back(active)
    assert [chunk.first_seq for chunk in chunks] == list(
        range(writer.next_seq - 5, writer.next_seq)
    )
    assert all(chunk.records == 1 and chunk.messages for chunk in chunks)
    assert sum(len(chunk.data) for chunk in chunks) == active.size - active.synced_size
    writer.close()


def test_read_back_refuses_a_record_that_does_not_check_out(tmp_path: Path) -> None:
    """An unsynced record whose bytes changed (pages the kernel dropped) is a CorruptionError naming its offset, never rewritten."""
    writer = open_writer(tmp_path / "j")
    writer.sync()
    writer.append_messages(items(3, payload=b"y" * 100))
    active = writer._active
    assert active is not None
    with active.file.path.open("r+b") as handle:
        handle.seek(active.size - 20)
        handle.write(b"\0" * 10)
    with pytest.raises(CorruptionError) as caught:
        read_back(active)
    assert caught.value.segment == active.file.name
    assert active.synced_size < caught.value.offset < active.size
    writer.abandon()
