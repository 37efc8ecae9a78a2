"""The journal writer: rotation, restart continuity, locking, fsync policy, retention, zstd."""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from recorder.errors import JournalError, JournalWriteError, LockedError, RecorderError
from recorder.journal.maintenance import inspect_journal, verify_journal
from recorder.journal.options import Compression, FsyncPolicy, WriterOptions
from recorder.journal.query import Query
from recorder.journal.reader import JournalReader
from recorder.journal.record import (
    FOOTER_SIZE,
    Headers,
    Incoming,
    Marker,
    MarkerType,
    Message,
    encode_messages,
)
from recorder.journal.retention import RetentionPolicy
from recorder.journal.segment import list_segments, segment_name, summarize
from recorder.journal.writer import JournalWriter

from ._helpers import (
    INSTANCE,
    T0,
    FakeClock,
    digest,
    items,
    markers,
    messages,
    open_writer,
    read_all,
    records_of,
    segment_digests,
    seqs,
)

SECOND = 10**9


def _started_size(directory: Path) -> int:
    """Bytes a freshly opened segment holds (header + STARTED marker) with the fixed test clock."""
    probe = open_writer(directory)
    assert probe.active_segment is not None
    size = probe.active_segment.path.stat().st_size
    probe.abandon()
    return size


def _sizes(directory: Path) -> dict[int, int]:
    return {segment.number: segment.path.stat().st_size for segment in list_segments(directory)}


def _contiguous(values: list[int]) -> bool:
    return values == list(range(values[0], values[0] + len(values)))


# -- rotation at size boundaries --------------------------------------------------------------


def test_record_that_fills_the_segment_exactly_with_its_footer_stays(tmp_path: Path) -> None:
    """A record that makes the segment exactly segment_max_bytes, footer included, stays in it."""
    batch = items(1, payload=b"x" * 100)
    limit = _started_size(tmp_path / "probe") + len(encode_messages(2, batch)[0]) + FOOTER_SIZE
    writer = open_writer(tmp_path / "j", segment_max_bytes=limit)
    assert writer.append_messages(batch) == 2
    assert writer.active_segment is not None
    assert writer.active_segment.number == 1
    assert writer.active_segment.path.stat().st_size == limit - FOOTER_SIZE
    writer.close()
    assert _sizes(tmp_path / "j")[1] == limit
    footer = summarize(list_segments(tmp_path / "j")[0]).footer
    assert footer is not None
    assert (footer.first_seq, footer.last_seq, footer.messages) == (1, 2, 1)


def test_record_one_byte_over_the_boundary_goes_to_the_next_segment(tmp_path: Path) -> None:
    """A record one byte too big for the room left goes whole to the next segment."""
    fits = items(1, payload=b"x" * 100)
    limit = _started_size(tmp_path / "probe") + len(encode_messages(2, fits)[0]) + FOOTER_SIZE
    over = items(1, payload=b"x" * 101)
    assert len(encode_messages(2, over)[0]) == len(encode_messages(2, fits)[0]) + 1
    writer = open_writer(tmp_path / "j", segment_max_bytes=limit)
    writer.append_messages(over)
    assert writer.active_segment is not None
    assert writer.active_segment.number == 2
    writer.close()
    sizes = _sizes(tmp_path / "j")
    assert sizes[1] < limit
    records = read_all(tmp_path / "j")[0]
    assert [(position.segment, record.seq) for position, record in records][:2] == [(1, 1), (2, 2)]
    assert all(size <= limit for size in sizes.values())


def test_record_bigger_than_a_segment_gets_a_segment_of_its_own(tmp_path: Path) -> None:
    """An oversized record is written alone into its own segment, between its neighbours."""
    limit = _started_size(tmp_path / "probe") + 300 + FOOTER_SIZE
    writer = open_writer(tmp_path / "j", segment_max_bytes=limit)
    small, big = b"s" * 10, b"B" * 5000
    writer.append_messages(
        [
            Incoming(T0, "a", "", None, small, None),
            Incoming(T0, "b", "", None, big, None),
            Incoming(T0, "c", "", None, small, None),
        ]
    )
    writer.close()
    records = read_all(tmp_path / "j")[0]
    by_segment: dict[int, list[int]] = {}
    for position, record in records:
        by_segment.setdefault(position.segment, []).append(record.seq)
    assert by_segment[1] == [1, 2]  # STARTED marker and the first small message
    assert by_segment[2] == [3]  # the big one alone
    assert by_segment[3][0] == 4
    assert _sizes(tmp_path / "j")[2] > limit
    assert verify_journal(tmp_path / "j").clean


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.integers(0, 600), min_size=1, max_size=40),
    st.integers(200, 1500),
    st.integers(1, 8),
)
def test_batches_are_split_at_segment_boundaries_without_losing_order(
    payload_sizes: list[int], room: int, batches: int
) -> None:
    """However a batch is split, no segment overflows unless it holds one record, and order holds."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "j"
        limit = _started_size(Path(tmp) / "probe") + room + FOOTER_SIZE
        writer = open_writer(directory, segment_max_bytes=limit)
        sent = []
        chunk = max(1, len(payload_sizes) // batches)
        for start in range(0, len(payload_sizes), chunk):
            batch: list[Incoming] = [
                Incoming(T0 + i, f"s.{i}", "", None, bytes([i % 256]) * size, None)
                for i, size in enumerate(payload_sizes[start : start + chunk], start)
            ]
            writer.append_messages(batch)
            sent.extend(batch)
        writer.close()
        for segment in list_segments(directory):
            footer = summarize(segment).footer
            assert footer is not None
            assert segment.path.stat().st_size <= limit or footer.records == 1
        records = records_of(directory)
        assert _contiguous(seqs(records))
        assert [(m.subject, m.payload) for m in messages(records)] == [
            (item[1], item[4]) for item in sent
        ]
        assert verify_journal(directory).clean


# -- restart continuity -----------------------------------------------------------------------


def test_restart_after_clean_close_continues_the_sequence_in_a_new_segment(tmp_path: Path) -> None:
    """A writer reopened after a clean close starts segment last+1, continues seq, touches nothing."""
    directory = tmp_path / "j"
    writer = open_writer(directory)
    writer.append_messages(items(5))
    writer.rotate()
    writer.append_messages(items(3))
    writer.close()
    before = segment_digests(directory)
    last_seq = seqs(records_of(directory))[-1]

    again = open_writer(directory)
    assert again.recovery is not None
    assert (again.recovery.previous_last_seq, again.recovery.clean) == (last_seq, True)
    assert again.recovery.repaired == ()
    assert again.active_segment is not None
    assert again.active_segment.number == 3
    again.append_messages(items(2))
    again.close()

    assert {name: digest(directory / name) for name in before} == before
    records = records_of(directory)
    assert _contiguous(seqs(records))
    assert seqs(records)[0] == 1
    started = [m for m in markers(records) if m.type is MarkerType.STARTED]
    assert [m.seq for m in started] == [1, last_seq + 1]
    assert verify_journal(directory).clean


def test_restart_after_a_crash_repairs_and_marks_the_unclean_stop(tmp_path: Path) -> None:
    """After abandon() the next writer seals the crashed segment, records an unclean STOPPED
    marker, opens a new segment and continues the sequence; sealed segments stay byte-identical."""
    directory = tmp_path / "j"
    writer = open_writer(directory)
    writer.append_messages(items(4))
    writer.rotate()
    writer.append_messages(items(6))
    crashed = writer.active_segment
    assert crashed is not None
    writer.abandon()
    sealed_before = digest(directory / segment_name(1))
    crashed_prefix = crashed.path.read_bytes()
    last_seq = 1 + 4 + 6

    again = open_writer(directory)
    assert again.recovery is not None
    assert again.recovery.clean is False
    assert again.recovery.previous_last_seq == last_seq
    assert again.recovery.repaired == (crashed.name,)
    assert again.active_segment is not None
    assert again.active_segment.number == crashed.number + 1
    again.append_messages(items(1))
    again.close()

    assert digest(directory / segment_name(1)) == sealed_before
    repaired = crashed.path.read_bytes()
    assert repaired.startswith(crashed_prefix)
    assert len(repaired) == len(crashed_prefix) + FOOTER_SIZE
    records = read_all(directory)[0]
    assert _contiguous(seqs(record for _, record in records))
    new_segment = [record for position, record in records if position.segment == 3]
    assert isinstance(new_segment[0], Marker)
    assert new_segment[0].type is MarkerType.STOPPED
    assert new_segment[0].seq == last_seq + 1
    assert new_segment[0].fields == {"clean": False, "detected": "at restart", "last_seq": last_seq}
    assert isinstance(new_segment[1], Marker)
    assert new_segment[1].type is MarkerType.STARTED
    assert verify_journal(directory).clean


def test_restart_after_a_crash_mid_record_drops_only_the_torn_record(tmp_path: Path) -> None:
    """A torn record left by a crash is quarantined at restart and its sequence number reused."""
    directory = tmp_path / "j"
    writer = open_writer(directory)
    writer.append_messages(items(3))
    crashed = writer.active_segment
    assert crashed is not None
    writer.abandon()
    half = encode_messages(5, items(1, payload=b"z" * 50))[0][:30]
    with crashed.path.open("ab") as handle:
        handle.write(half)

    again = open_writer(directory)
    assert again.recovery is not None
    assert (again.recovery.clean, again.recovery.previous_last_seq) == (False, 4)
    quarantined = list(directory.glob("*.quarantine"))
    assert len(quarantined) == 1
    assert quarantined[0].read_bytes() == half
    again.close()
    records = records_of(directory)
    assert _contiguous(seqs(records))
    assert verify_journal(directory).clean


def test_restart_after_several_crashes_keeps_numbering_contiguous(tmp_path: Path) -> None:
    """Repeated crashes and restarts never reuse a segment number or a committed sequence number."""
    directory = tmp_path / "j"
    for _ in range(4):
        writer = open_writer(directory)
        writer.append_messages(items(2))
        writer.abandon()
    writer = open_writer(directory)
    writer.close()
    assert [s.number for s in list_segments(directory)] == [1, 2, 3, 4, 5]
    records = records_of(directory)
    assert _contiguous(seqs(records))
    assert len(messages(records)) == 8
    stops = [m for m in markers(records) if m.type is MarkerType.STOPPED]
    assert [m.fields["clean"] for m in stops] == [False, False, False, False, True]
    assert verify_journal(directory).clean


# -- lock -------------------------------------------------------------------------------------


def test_second_writer_in_the_same_process_is_refused_with_the_holder_pid(tmp_path: Path) -> None:
    """A second writer on a locked directory gets LockedError naming the holder's pid."""
    directory = tmp_path / "j"
    first = open_writer(directory)
    second = JournalWriter(directory, clock=FakeClock(), instance_id=INSTANCE)
    with pytest.raises(LockedError) as caught:
        second.open()
    assert caught.value.pid == os.getpid()
    assert f"locked by process {os.getpid()}" in str(caught.value)
    assert caught.value.directory == str(directory)
    assert isinstance(caught.value, RecorderError)
    before = _sizes(directory)
    first.close()
    assert len(_sizes(directory)) == len(before)  # the refused writer created no segment
    third = open_writer(directory)
    third.close()


_HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from recorder.journal.writer import JournalWriter
    writer = JournalWriter(Path(sys.argv[1]))
    writer.open()
    print("ready", flush=True)
    sys.stdin.readline()
    writer.close()
    """
)

_CONTENDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from recorder.errors import LockedError
    from recorder.journal.writer import JournalWriter
    try:
        JournalWriter(Path(sys.argv[1])).open()
    except LockedError as exc:
        print(exc.pid)
        sys.exit(3)
    """
)


def test_lock_is_exclusive_across_processes(tmp_path: Path) -> None:
    """A writer in another process blocks ours (and names its pid) until it closes."""
    directory = tmp_path / "j"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(directory)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(LockedError) as caught:
            JournalWriter(directory).open()
        assert caught.value.pid == holder.pid
        assert str(holder.pid) in str(caught.value)
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.wait(timeout=20) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    writer = open_writer(directory)
    writer.close()
    assert verify_journal(directory).clean


def test_another_process_is_refused_while_we_hold_the_lock(tmp_path: Path) -> None:
    """A writer in another process cannot open a directory we hold and learns our pid."""
    directory = tmp_path / "j"
    writer = open_writer(directory)
    try:
        result = subprocess.run(
            [sys.executable, "-c", _CONTENDER, str(directory)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        writer.close()
    assert result.returncode == 3, result.stderr
    assert int(result.stdout) == os.getpid()


# -- fsync policy -----------------------------------------------------------------------------


def _observed_writer(
    directory: Path, policy: FsyncPolicy, clock: FakeClock
) -> tuple[JournalWriter, list[float]]:
    calls: list[float] = []
    writer = JournalWriter(
        directory,
        WriterOptions(fsync=policy, fsync_interval_ns=SECOND),
        clock=clock,
        monotonic=clock,
        instance_id=INSTANCE,
        fsync_observer=calls.append,
    )
    writer.open()
    return writer, calls


def test_fsync_always_group_commits_once_per_batch(tmp_path: Path) -> None:
    """With `always`, each appended batch costs one fsync however many records it holds."""
    writer, calls = _observed_writer(tmp_path / "j", FsyncPolicy.ALWAYS, FakeClock())
    after_open = len(calls)
    for _ in range(3):
        writer.append_messages(items(100))
    assert len(calls) == after_open + 3
    writer.append_marker(MarkerType.NOTE, {"text": "hi"})
    assert len(calls) == after_open + 4
    writer.close()
    assert len(messages(records_of(tmp_path / "j"))) == 300


def test_fsync_interval_syncs_at_most_once_per_interval(tmp_path: Path) -> None:
    """With `interval`, appends within the interval do not fsync; the first one after it does."""
    clock = FakeClock()
    writer, calls = _observed_writer(tmp_path / "j", FsyncPolicy.INTERVAL, clock)
    writer.append_messages(items(10))
    writer.append_messages(items(10))
    assert calls == []
    clock.advance(SECOND)
    writer.append_messages(items(10))
    assert len(calls) == 1
    writer.append_messages(items(10))
    assert len(calls) == 1
    clock.advance(SECOND // 2)
    writer.sync_if_due()
    assert len(calls) == 1
    writer.sync()
    assert len(calls) == 2
    writer.sync()  # nothing new to make durable
    assert len(calls) == 2
    writer.close()
    assert len(messages(records_of(tmp_path / "j"))) == 40


def test_fsync_never_leaves_appends_to_the_kernel(tmp_path: Path) -> None:
    """With `never`, appends do not fsync, and the sealed journal still reads back whole."""
    clock = FakeClock()
    writer, calls = _observed_writer(tmp_path / "j", FsyncPolicy.NEVER, clock)
    for _ in range(3):
        clock.advance(10 * SECOND)
        writer.append_messages(items(10))
    assert calls == []
    writer.close()
    assert len(messages(records_of(tmp_path / "j"))) == 30
    assert verify_journal(tmp_path / "j").clean


# -- rotation on demand and by age --------------------------------------------------------------


def test_rotate_on_demand_seals_and_opens_the_next_segment(tmp_path: Path) -> None:
    """rotate() seals the active segment and opens number+1; an empty segment is not rotated."""
    directory = tmp_path / "j"
    writer = open_writer(directory)
    writer.append_messages(items(2))
    new = writer.rotate()
    assert new is not None and new.number == 2
    assert summarize(list_segments(directory)[0]).footer is not None
    assert writer.rotate() is None
    assert [s.number for s in list_segments(directory)] == [1, 2]
    writer.append_messages(items(1))
    writer.close()
    records = read_all(directory)[0]
    assert {position.segment for position, _ in records} == {1, 2}
    assert _contiguous([record.seq for _, record in records])


def test_rotate_by_age_follows_the_injected_clock(tmp_path: Path) -> None:
    """rotate_if_old rotates once the active segment reaches segment_max_age_ns, not before."""
    clock = FakeClock()
    writer = open_writer(tmp_path / "j", clock, segment_max_age_ns=10 * SECOND)
    writer.append_messages(items(1))
    clock.advance(10 * SECOND - 1)
    assert writer.rotate_if_old() is False
    clock.advance(1)
    assert writer.rotate_if_old() is True
    assert writer.active_segment is not None and writer.active_segment.number == 2
    clock.advance(3600 * SECOND)
    assert writer.rotate_if_old() is False  # a segment with no records is never rotated
    writer.append_messages(items(1))
    assert writer.rotate_if_old() is True
    writer.close()
    assert verify_journal(tmp_path / "j").clean


def test_writer_that_is_not_open_refuses_to_append(tmp_path: Path) -> None:
    """Appending before open() or after close() is a JournalError, not a crash."""
    writer = JournalWriter(tmp_path / "j")
    with pytest.raises(JournalError, match="not open"):
        writer.append_messages(items(1))
    writer = open_writer(tmp_path / "k")
    writer.close()
    with pytest.raises(JournalError, match="not open"):
        writer.append_marker(MarkerType.NOTE)
    writer.close()  # closing twice is harmless


# -- retention --------------------------------------------------------------------------------


def _fill(writer: JournalWriter, clock: FakeClock, segments: int, step_ns: int = 0) -> None:
    for _ in range(segments):
        writer.append_messages(items(5, start_ns=clock.now, payload=b"p" * 200))
        writer.rotate()
        writer.wait_background()
        clock.advance(step_ns)


def test_retention_by_segment_count_deletes_oldest_first(tmp_path: Path) -> None:
    """max_segments keeps the newest sealed segments and the active one, deleting oldest first."""
    directory = tmp_path / "j"
    clock = FakeClock()
    writer = open_writer(directory, clock, retention=RetentionPolicy(max_segments=2))
    with capture_logs() as logs:
        _fill(writer, clock, 6)
    assert writer.active_segment is not None
    assert [s.number for s in list_segments(directory)] == [5, 6, 7]
    assert writer.active_segment.number == 7
    deleted = [e for e in logs if e["event"] == "segment_deleted"]
    assert [e["segment"] for e in deleted] == [1, 2, 3, 4]
    assert {e["reason"] for e in deleted} == {"max_segments"}
    writer.close()
    assert verify_journal(directory).clean


def test_retention_by_bytes_keeps_the_total_within_the_bound(tmp_path: Path) -> None:
    """max_bytes deletes oldest sealed segments only until the total fits, and no more."""
    directory = tmp_path / "j"
    clock = FakeClock()
    writer = open_writer(directory, clock)
    _fill(writer, clock, 1)
    sealed_size = list_segments(directory)[0].path.stat().st_size
    writer.close()
    shutil.rmtree(directory)
    bound = 3 * sealed_size + sealed_size // 2
    writer = open_writer(directory, clock, retention=RetentionPolicy(max_bytes=bound))
    _fill(writer, clock, 7)
    sizes = _sizes(directory)
    numbers = sorted(sizes)
    assert numbers == list(range(numbers[0], 9))  # the newest, contiguous up to the active 8
    assert sum(sizes.values()) <= bound
    assert sum(sizes.values()) + sealed_size > bound  # deleting one more was not needed
    writer.close()


def test_retention_by_age_uses_each_segments_last_record_time(tmp_path: Path) -> None:
    """max_age deletes sealed segments whose newest record is older than the bound."""
    directory = tmp_path / "j"
    clock = FakeClock()
    writer = open_writer(directory, clock, retention=RetentionPolicy(max_age_ns=25 * SECOND))
    _fill(writer, clock, 3, step_ns=10 * SECOND)  # segments last written at 0 s, 10 s, 20 s
    assert [s.number for s in list_segments(directory)] == [1, 2, 3, 4]
    clock.advance(10 * SECOND)  # now 40 s: 0 s and 10 s are older than 25 s
    with capture_logs() as logs:
        assert writer.apply_retention() == [segment_name(1), segment_name(2)]
    assert [(e["segment"], e["reason"]) for e in logs if e["event"] == "segment_deleted"] == [
        (1, "max_age"),
        (2, "max_age"),
    ]
    assert [s.number for s in list_segments(directory)] == [3, 4]
    writer.close()


def test_retention_never_deletes_the_active_segment(tmp_path: Path) -> None:
    """Even when every bound is exceeded, the active segment survives retention."""
    directory = tmp_path / "j"
    clock = FakeClock()
    policy = RetentionPolicy(max_bytes=1, max_age_ns=1, max_segments=1)
    writer = open_writer(directory, clock, retention=policy)
    _fill(writer, clock, 3)
    writer.append_messages(items(3, start_ns=clock.now))
    clock.advance(3600 * SECOND)
    writer.apply_retention()
    assert writer.active_segment is not None
    assert [s.number for s in list_segments(directory)] == [writer.active_segment.number]
    assert writer.active_segment.path.exists()
    writer.append_messages(items(1, start_ns=clock.now))
    assert len(messages(records_of(directory))) == 4
    writer.close()


def test_retention_after_close_keeps_the_newest_segment_for_the_sequence(tmp_path: Path) -> None:
    """Retention run by close() keeps the newest segment, so a restart never reuses seq numbers."""
    directory = tmp_path / "j"
    writer = open_writer(directory, retention=RetentionPolicy(max_bytes=100, max_segments=1))
    writer.append_messages(items(1, payload=b"x" * 500))
    writer.rotate()
    writer.append_messages(items(1, payload=b"x" * 500))
    writer.close()
    assert [s.number for s in list_segments(directory)] == [2]
    last_seq = seqs(records_of(directory))[-1]
    again = open_writer(directory)
    assert again.recovery is not None
    assert (again.recovery.previous_last_seq, again.recovery.clean) == (last_seq, True)
    assert again.next_seq > last_seq
    assert again.active_segment is not None and again.active_segment.number == 3
    again.close()


def test_retention_disabled_deletes_nothing(tmp_path: Path) -> None:
    """With no bounds set, apply_retention deletes nothing."""
    clock = FakeClock()
    writer = open_writer(tmp_path / "j", clock)
    _fill(writer, clock, 3)
    assert writer.apply_retention() == []
    assert len(list_segments(tmp_path / "j")) == 4
    writer.close()


# -- compression ------------------------------------------------------------------------------


def _write_twins(tmp_path: Path) -> tuple[Path, Path]:
    """The same records written to a zstd journal and a plain one with identical clocks."""
    paths = []
    for compression in (Compression.ZSTD, Compression.NONE):
        directory = tmp_path / compression.value
        clock = FakeClock()
        writer = open_writer(directory, clock, compression=compression)
        for n in range(3):
            payload = b'{"kind":"Pod","metadata":{"name":"web-%d"}}' % n * 20
            writer.append_messages(items(20, start_ns=clock.now, payload=payload))
            clock.advance(SECOND)
            if n < 2:
                writer.rotate()
        writer.close()
        paths.append(directory)
    return paths[0], paths[1]


def test_sealed_segments_are_compressed_and_read_transparently(tmp_path: Path) -> None:
    """With zstd, every sealed segment becomes .seg.zst, and reader, summarize and inspect agree
    with an uncompressed journal of the same records."""
    zstd_dir, plain_dir = _write_twins(tmp_path)
    compressed = list_segments(zstd_dir)
    assert [s.name for s in compressed] == [f"{segment_name(n)}.zst" for n in (1, 2, 3)]
    assert all(s.compressed for s in compressed)
    assert not list(zstd_dir.glob("*.seg"))
    assert read_all(zstd_dir) == read_all(plain_dir)
    plain = list_segments(plain_dir)
    for small, big in zip(compressed, plain, strict=True):
        assert summarize(small).footer == summarize(big).footer is not None
        assert summarize(small).header == summarize(big).header
        assert small.path.stat().st_size < big.path.stat().st_size
    rows = inspect_journal(zstd_dir)
    plain_rows = inspect_journal(plain_dir)
    assert [(r.state, r.records, r.first_seq, r.last_seq, r.compressed) for r in rows] == [
        (r.state, r.records, r.first_seq, r.last_seq, True) for r in plain_rows
    ]
    assert verify_journal(zstd_dir).clean


def test_compressed_segments_decompress_to_the_original_bytes(tmp_path: Path) -> None:
    """A .seg.zst decompresses (skipping the summary frame) to the plain segment byte for byte."""
    zstd_dir, plain_dir = _write_twins(tmp_path)
    for small, big in zip(list_segments(zstd_dir), list_segments(plain_dir), strict=True):
        reader = zstandard.ZstdDecompressor().stream_reader(
            small.path.read_bytes(), read_across_frames=True
        )
        assert reader.read() == big.path.read_bytes()


@pytest.mark.skipif(shutil.which("zstd") is None, reason="the zstd command is not installed")
def test_compressed_segments_are_readable_by_the_zstd_command(tmp_path: Path) -> None:
    """`zstd -d` turns a .seg.zst back into the original .seg."""
    zstd_dir, plain_dir = _write_twins(tmp_path)
    for small, big in zip(list_segments(zstd_dir), list_segments(plain_dir), strict=True):
        result = subprocess.run(
            ["zstd", "-d", "-q", "-c", str(small.path)], capture_output=True, check=True
        )
        assert result.stdout == big.path.read_bytes()


def test_filters_skip_compressed_segments_without_decompressing(tmp_path: Path) -> None:
    """A sequence filter skips compressed segments from their summary frame alone."""
    zstd_dir, _ = _write_twins(tmp_path)
    last = summarize(list_segments(zstd_dir)[2]).footer
    assert last is not None
    reader = JournalReader(zstd_dir, query=Query(from_seq=last.first_seq))
    got = list(reader)
    assert reader.stats.segments_skipped == 2
    assert [r.seq for _, r in got] == [
        s for s in range(last.first_seq, last.last_seq + 1) if s != last.last_seq
    ]  # the last record is the STOPPED marker, skipped without markers=True


def test_restart_continues_after_compressed_segments(tmp_path: Path) -> None:
    """A restarted writer finds the sequence in compressed segments' summaries and continues it."""
    zstd_dir, _ = _write_twins(tmp_path)
    before = segment_digests(zstd_dir)
    writer = open_writer(zstd_dir, compression=Compression.ZSTD)
    assert writer.active_segment is not None and writer.active_segment.number == 4
    writer.append_messages(items(1))
    writer.close()
    assert {name: digest(zstd_dir / name) for name in before} == before
    assert _contiguous(seqs(records_of(zstd_dir)))
    assert verify_journal(zstd_dir).clean


# -- write errors ---------------------------------------------------------------------------


def test_write_error_cuts_back_and_the_writer_carries_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails after a partial write raises JournalWriteError and cuts the segment
    back to its last fsync (no torn bytes, nothing unsynced); the next append writes the kept
    unsynced records again, and the sequence goes on without a gap or a repeat."""
    directory = tmp_path / "j"
    writer = open_writer(directory)
    writer.append_messages(items(3, subject="before"))
    writer.sync()
    active = writer.active_segment
    assert active is not None
    size_before = active.path.stat().st_size
    writer.append_messages(items(2, subject="unsynced"))
    next_before = writer.next_seq
    real_write = os.write
    failures = {"partial": 1, "fail": 1}
    target_fd = writer._active.fd  # type: ignore[union-attr]

    def failing_write(fd: int, data: bytes) -> int:
        if fd == target_fd and failures["partial"]:
            failures["partial"] -= 1
            return real_write(fd, bytes(data)[: len(data) // 2])
        if fd == target_fd and failures["fail"]:
            failures["fail"] -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    def failing_writev(fd: int, buffers: list[bytes]) -> int:
        return failing_write(fd, b"".join(buffers))

    monkeypatch.setattr(os, "write", failing_write)
    monkeypatch.setattr(os, "writev", failing_writev)
    with pytest.raises(JournalWriteError) as caught:
        writer.append_messages(items(4, subject="lost", payload=b"L" * 300))
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.segment == active.name
    assert "No space left on device" in str(caught.value)
    assert failures == {"partial": 0, "fail": 0}
    assert caught.value.written == 0
    assert active.path.stat().st_size == size_before
    assert writer.next_seq == next_before
    assert writer.durable_seq == next_before - 3

    assert writer.append_messages(items(2, subject="after")) == next_before + 1
    writer.close()
    records = records_of(directory)
    assert _contiguous(seqs(records))
    subjects = [m.subject for m in messages(records)]
    assert subjects == ["before"] * 3 + ["unsynced"] * 2 + ["after"] * 2
    assert verify_journal(directory).clean


_FSIZE_CHILD = textwrap.dedent(
    """
    import json, resource, signal, sys
    from pathlib import Path
    from recorder.errors import JournalWriteError
    from recorder.journal.record import Incoming
    from recorder.journal.writer import JournalWriter

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
    writer = JournalWriter(Path(sys.argv[1]))
    writer.open()
    writer.append_messages([Incoming(1, "before", "", None, b"x" * 100, None)] * 3)
    writer.sync()  # a failed write cuts the segment back to its last fsync
    path = writer.active_segment.path
    facts = {"size_before": path.stat().st_size, "seq_before": writer.next_seq}
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (facts["size_before"] + 150, hard))
    try:
        writer.append_messages([Incoming(2, "lost", "", None, b"y" * 100, None)] * 5)
    except JournalWriteError as exc:
        facts["errno"] = exc.errno
    facts["size_after"] = path.stat().st_size
    facts["seq_after"] = writer.next_seq
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    writer.append_messages([Incoming(3, "after", "", None, b"z" * 100, None)] * 2)
    writer.close()
    print(json.dumps(facts))
    """
)


def test_file_size_limit_in_a_child_process_is_a_clean_write_error(tmp_path: Path) -> None:
    """Hitting RLIMIT_FSIZE mid-batch raises JournalWriteError(EFBIG), cuts back to the last fsync and leaves a clean journal."""
    directory = tmp_path / "j"
    result = subprocess.run(
        [sys.executable, "-c", _FSIZE_CHILD, str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout.strip().splitlines()[-1])
    assert facts["errno"] == errno.EFBIG
    assert facts["size_after"] == facts["size_before"]
    assert facts["seq_after"] == facts["seq_before"]
    records = records_of(directory)
    assert _contiguous(seqs(records))
    assert [m.subject for m in messages(records)] == ["before"] * 3 + ["after"] * 2
    assert verify_journal(directory).clean


# -- permissions ------------------------------------------------------------------------------


def test_files_are_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    """Segments (plain and compressed) and the lock are 0600 and the directory 0700, even with umask 0."""
    old = os.umask(0)
    try:
        directory = tmp_path / "j"
        writer = open_writer(directory, compression=Compression.ZSTD)
        writer.append_messages(items(2))
        writer.rotate()
        writer.wait_background()
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        for path in directory.iterdir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
        assert {p.name for p in directory.iterdir()} == {
            "LOCK",
            f"{segment_name(1)}.zst",
            segment_name(2),
        }
        writer.close()
    finally:
        os.umask(old)


def test_message_fields_survive_the_writer(tmp_path: Path) -> None:
    """What append_messages is given is exactly what the reader returns, seq numbers added."""
    directory = tmp_path / "j"
    writer = open_writer(directory)
    headers: Headers = (("Nats-Msg-Id", "1"), ("X", "a"), ("X", "b"))
    batch: list[Incoming] = [
        Incoming(T0, "meshsync.a", "_INBOX.x", headers, b"\x00\x01", 17),
        Incoming(T0 + 1, "meshsync.b", "", None, b"", None),
    ]
    last = writer.append_messages(batch)
    writer.close()
    got = messages(records_of(directory))
    assert got == [
        Message(last - 1, T0, "meshsync.a", "_INBOX.x", headers, b"\x00\x01", 17),
        Message(last, T0 + 1, "meshsync.b", "", None, b"", None),
    ]
