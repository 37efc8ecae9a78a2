"""The intake: bounded by count and by bytes, every refusal counted, subject counts capped."""

from __future__ import annotations

import time
from pathlib import Path

from recorder.journal.options import WriterOptions
from recorder.journal.record import Incoming
from recorder.journal.writer import JournalWriter
from recorder.recording.intake import Intake
from recorder.recording.metrics import OTHER_SUBJECTS, SUBJECT_SERIES_MAX, Metrics
from recorder.recording.pump import Pump, PumpOptions

KiB = 1024
MiB = 1024 * KiB


def _msg(size: int, subject: str = "a") -> Incoming:
    return Incoming(0, subject, "", None, b"x" * size, None)


def test_bytes_bound_refuses_what_would_exceed_it_and_counts_it() -> None:
    """Messages are taken while their payload bytes fit; the next is a counted drop."""
    intake = Intake(limit=1000, max_bytes=3 * KiB)
    for _ in range(4):
        intake.put(_msg(KiB))
    assert (len(intake), intake.accepted, intake.dropped) == (3, 3, 1)
    assert intake.held_bytes() == 3 * KiB
    assert intake.dropped_by_subject == {"a": 1}


def test_released_bytes_make_room_again() -> None:
    """Bytes the writer releases (after writing its batch) may be taken again."""
    intake = Intake(limit=1000, max_bytes=2 * KiB)
    intake.put(_msg(KiB))
    intake.put(_msg(KiB))
    batch = [intake.items.popleft(), intake.items.popleft()]
    intake.put(_msg(KiB))  # popped but not yet written: still held
    assert intake.dropped == 1
    intake.release(sum(len(item.payload) for item in batch))
    intake.put(_msg(KiB))
    assert (intake.accepted, intake.dropped, intake.held_bytes()) == (3, 1, KiB)


def test_a_message_larger_than_the_bound_passes_when_nothing_is_held() -> None:
    """A payload above queue_max_bytes is not refused forever: it is taken into an empty intake."""
    intake = Intake(limit=10, max_bytes=KiB)
    intake.put(_msg(4 * KiB))
    intake.put(_msg(4 * KiB))
    assert (intake.accepted, intake.dropped) == (1, 1)


def test_count_bound_still_applies() -> None:
    """The count bound refuses the message past queue_max_messages, however small."""
    intake = Intake(limit=2, max_bytes=10 * KiB)
    for _ in range(3):
        intake.put(_msg(1))
    assert (intake.accepted, intake.dropped) == (2, 1)


def test_hand_over_is_never_refused_and_is_counted_in_the_bytes() -> None:
    """A JetStream batch is handed over whole (a refused one would be acked unwritten)."""
    intake = Intake(limit=1, max_bytes=KiB)
    intake.hand_over([_msg(KiB), _msg(KiB)])
    assert (len(intake), intake.dropped, intake.held_bytes()) == (2, 0, 2 * KiB)


def test_drops_by_subject_are_capped_with_an_other_bucket() -> None:
    """Drops over more subjects than SUBJECT_SERIES_MAX share one OTHER_SUBJECTS count."""
    intake = Intake(limit=0, max_bytes=KiB)
    extra = 50
    for n in range(SUBJECT_SERIES_MAX + extra):
        intake.put(_msg(1, f"s.{n}"))
    assert len(intake.dropped_by_subject) == SUBJECT_SERIES_MAX + 1
    assert intake.dropped_by_subject[OTHER_SUBJECTS] == extra
    assert sum(intake.dropped_by_subject.values()) == intake.dropped


def test_the_writer_releases_every_byte_and_batches_stay_under_their_byte_bound(
    tmp_path: Path,
) -> None:
    """A real pump and journal writer drain 1 MiB messages in batches of at most batch_max_bytes, and once all are written the intake holds no bytes: nothing leaks that would later refuse messages."""
    writer = JournalWriter(tmp_path / "journal", WriterOptions(segment_max_bytes=256 * MiB))
    writer.open({})
    batches: list[int] = []
    real_append = writer.append_messages

    def observed(items: list[Incoming]) -> int:  # an observer on the real call, not a double
        batches.append(sum(len(item.payload) for item in items))
        return real_append(items)

    writer.append_messages = observed  # type: ignore[method-assign]
    intake = Intake(limit=1000, max_bytes=64 * MiB)
    metrics = Metrics()
    for n in range(24):
        intake.put(_msg(MiB, f"s.{n % 3}"))
    pump = Pump(writer, intake, metrics, PumpOptions(batch_max_bytes=4 * MiB))
    pump.start()
    deadline = time.monotonic() + 30
    while sum(metrics.written_msgs.values()) < 24 and time.monotonic() < deadline:
        time.sleep(0.01)
    pump.stop()
    pump.join(30)
    assert sum(metrics.written_msgs.values()) == 24
    assert intake.held_bytes() == 0 and intake.dropped == 0
    assert max(batches) <= 4 * MiB and sum(batches) == 24 * MiB
