"""The bounded hand-over from the NATS callback to the writer thread, with plain values."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from recorder.journal.record import MarkerType
from recorder.recording.intake import Intake

from ._helpers import UNBOUNDED_BYTES, incoming


def test_put_keeps_order_until_the_limit_then_counts_each_refusal_by_subject() -> None:
    """Below the limit messages queue in order; at it they are refused and counted per subject."""
    intake = Intake(3, UNBOUNDED_BYTES)
    for n in range(3):
        intake.put(incoming(n))
    intake.put(incoming(3, subject="a"))
    intake.put(incoming(4, subject="b"))
    intake.put(incoming(5, subject="a"))
    assert [item.payload for item in intake.items] == [b"0", b"1", b"2"]
    assert len(intake) == 3
    assert intake.accepted == 3
    assert intake.dropped == 3
    assert intake.dropped_by_subject == {"a": 2, "b": 1}


def test_room_made_by_the_writer_is_used_again() -> None:
    """Once the writer takes a message off the queue, the next one is accepted again."""
    intake = Intake(1, UNBOUNDED_BYTES)
    intake.put(incoming(0))
    intake.put(incoming(1))
    assert intake.items.popleft().payload == b"0"
    intake.put(incoming(2))
    assert [item.payload for item in intake.items] == [b"2"]
    assert (intake.accepted, intake.dropped) == (2, 1)


def test_controls_are_ordered_after_the_messages_accepted_before_them() -> None:
    """A marker or barrier records how many messages were accepted; refused ones do not count."""
    intake = Intake(2, UNBOUNDED_BYTES)
    intake.mark(MarkerType.DISCONNECTED, {"url": "nats://a"})
    intake.put(incoming(0))
    intake.put(incoming(1))
    intake.put(incoming(2))  # refused: the queue is full
    calls: list[bool] = []
    intake.barrier(calls.append)
    first, second = intake.controls
    assert (first.after, first.marker, first.fields) == (
        0,
        MarkerType.DISCONNECTED,
        {"url": "nats://a"},
    )
    assert first.done is None
    assert (second.after, second.marker) == (2, None)
    assert second.done is not None
    second.done(True)
    assert calls == [True]


def test_slow_consumer_drops_are_counted_apart_from_queue_drops() -> None:
    """Messages nats-py dropped are counted by subject, separately from the queue's refusals."""
    intake = Intake(10, UNBOUNDED_BYTES)
    intake.count_slow_consumer("a")
    intake.count_slow_consumer("a")
    intake.count_slow_consumer("b")
    assert intake.slow_consumer_dropped == 3
    assert intake.slow_consumer_by_subject == {"a": 2, "b": 1}
    assert (intake.dropped, intake.dropped_by_subject, len(intake)) == (0, {}, 0)


@given(
    limit=st.integers(1, 8),
    steps=st.lists(st.sampled_from(["put", "take"]), max_size=60),
)
def test_every_put_is_either_queued_or_counted(limit: int, steps: list[str]) -> None:
    """Whatever the interleaving with the writer, the queue stays bounded, FIFO, and loses nothing
    silently: accepted + dropped is the number of puts."""
    intake = Intake(limit, UNBOUNDED_BYTES)
    puts, taken = 0, []
    for step in steps:
        if step == "put":
            intake.put(incoming(puts))
            puts += 1
        elif intake.items:
            taken.append(int(intake.items.popleft().payload))
        assert len(intake) <= limit
    assert intake.accepted + intake.dropped == puts
    assert sum(intake.dropped_by_subject.values()) == intake.dropped
    delivered = taken + [int(item.payload) for item in intake.items]
    assert delivered == sorted(delivered)
    assert len(delivered) == intake.accepted
