"""The bounded hand-over between the NATS callback (event loop) and the writer thread.

The event loop only appends tuples to a deque and bumps integers: no awaits, no locks, no
allocation beyond the tuple itself. CPython's deque append/popleft are atomic, and each counter
has a single writing thread, so no lock is needed: the bytes held are what the event loop
accepted minus what the writer thread released, two counters with one writer each.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from recorder.journal.record import Incoming, MarkerType
from recorder.recording.metrics import count_subject

# What one queued message costs beyond its payload: the tuple, its time, subject and reply, the
# bytes object's header (about 220 bytes by sys.getsizeof for a MeshSync subject). Counted so
# that a flood of tiny messages is bounded by bytes too, not only by count.
ITEM_OVERHEAD: Final = 256


@dataclass(frozen=True, slots=True)
class Control:
    """Something the writer must do once every message accepted before it has been written.

    A marker record, or a barrier: fsync, then call `done(ok)` (JetStream acks wait on it).
    """

    after: int  # the value of Intake.accepted when it was queued
    marker: MarkerType | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    done: Callable[[bool], None] | None = None


class Intake:
    """A FIFO of incoming messages bounded by count and by bytes, plus ordered control entries.

    A message stays counted in the bytes held from `put` until the writer `release`s it after
    writing (or dropping) it, so the batch the writer holds is inside the bound too.
    """

    __slots__ = (
        "accepted",
        "accepted_bytes",
        "controls",
        "dropped",
        "dropped_by_subject",
        "items",
        "limit",
        "max_bytes",
        "released_bytes",
        "slow_consumer_by_subject",
        "slow_consumer_dropped",
    )

    def __init__(self, limit: int, max_bytes: int) -> None:
        self.items: deque[Incoming] = deque()
        self.controls: deque[Control] = deque()
        self.limit = limit
        self.max_bytes = max_bytes
        self.accepted = 0  # written only by the event loop
        self.accepted_bytes = 0  # written only by the event loop
        self.released_bytes = 0  # written only by the writer thread
        self.dropped = 0  # refused because the queue was full; written only by the event loop
        self.dropped_by_subject: dict[str, int] = {}
        # Messages nats-py itself dropped (its pending limits), reported through error_cb.
        self.slow_consumer_dropped = 0
        self.slow_consumer_by_subject: dict[str, int] = {}

    def put(self, item: Incoming) -> None:
        """The hot path: queue a message, or count it as dropped when the queue is full.

        A message larger than the whole byte bound is still taken when nothing else is held,
        so a broker's max_payload above queue_max_bytes slows the recorder instead of starving it.
        """
        size = len(item[4]) + ITEM_OVERHEAD
        held = self.accepted_bytes - self.released_bytes
        if len(self.items) < self.limit and (held + size <= self.max_bytes or held == 0):
            self.items.append(item)
            self.accepted += 1
            self.accepted_bytes += size
        else:
            self.dropped += 1
            count_subject(self.dropped_by_subject, item[1])

    def hand_over(self, items: Iterable[Incoming]) -> None:
        """Queue messages whose producer bounds itself (a JetStream batch waiting on a barrier).

        Never refused: a refused JetStream message would be acknowledged without being written.
        """
        for item in items:
            self.items.append(item)
            self.accepted += 1
            self.accepted_bytes += item_bytes(item)

    def release(self, nbytes: int) -> None:
        """The writer is done with messages of `nbytes` (as `item_bytes` counts them)."""
        self.released_bytes += nbytes

    def held_bytes(self) -> int:
        """Bytes of messages queued or in the writer's hands, overhead included."""
        return self.accepted_bytes - self.released_bytes

    def count_slow_consumer(self, subject: str) -> None:
        self.slow_consumer_dropped += 1
        count_subject(self.slow_consumer_by_subject, subject)

    def mark(self, marker: MarkerType, fields: dict[str, Any]) -> None:
        """Queue a marker record, ordered after every message accepted so far."""
        self.controls.append(Control(self.accepted, marker, fields))

    def barrier(self, done: Callable[[bool], None]) -> None:
        """Call `done(ok)` once every message accepted so far is written and fsynced."""
        self.controls.append(Control(self.accepted, done=done))

    def __len__(self) -> int:
        return len(self.items)


def item_bytes(item: Incoming) -> int:
    """What one message counts for in the byte bound."""
    return len(item[4]) + ITEM_OVERHEAD
