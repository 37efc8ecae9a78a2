"""The bounded hand-over between the NATS callback (event loop) and the writer thread.

The event loop only appends tuples to a deque and bumps integers: no awaits, no locks, no
allocation beyond the tuple and two integers. CPython's deque append/popleft are atomic, and
each counter has a single writing thread, so no lock is needed: the event loop adds the payload
bytes it accepts, the writer thread raises the allowance by what it has written.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from recorder.journal.record import Incoming, MarkerType
from recorder.recording.metrics import count_subject


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
    """A FIFO of incoming messages bounded by count and by payload bytes, plus control entries.

    A message's payload stays counted from `put` until the writer `release`s it after writing
    (or dropping) it, so the batch the writer holds is inside the bound too. The Python objects
    around each payload (about 230 bytes) are bounded by the count, not counted as bytes: one
    addition less per message on the hot path.
    """

    __slots__ = (
        "accepted",
        "accepted_bytes",
        "allowed_bytes",
        "controls",
        "dropped",
        "dropped_by_subject",
        "items",
        "limit",
        "max_bytes",
        "slow_consumer_by_subject",
        "slow_consumer_dropped",
    )

    def __init__(self, limit: int, max_bytes: int) -> None:
        self.items: deque[Incoming] = deque()
        self.controls: deque[Control] = deque()
        self.limit = limit
        self.max_bytes = max_bytes
        self.accepted = 0  # written only by the event loop
        self.accepted_bytes = 0  # payload bytes ever accepted; written only by the event loop
        # max_bytes plus every payload byte released: written only by the writer thread, so
        # the hot path compares two counters instead of subtracting a third.
        self.allowed_bytes = max_bytes
        self.dropped = 0  # refused because the queue was full; written only by the event loop
        self.dropped_by_subject: dict[str, int] = {}
        # Messages nats-py itself dropped (its pending limits), reported through error_cb.
        self.slow_consumer_dropped = 0
        self.slow_consumer_by_subject: dict[str, int] = {}

    def put(self, item: Incoming) -> None:
        """The hot path: queue a message, or count it as dropped when the queue is full."""
        accepted_bytes = self.accepted_bytes + len(item.payload)
        if accepted_bytes <= self.allowed_bytes and len(self.items) < self.limit:
            self.items.append(item)
            self.accepted += 1
            self.accepted_bytes = accepted_bytes
        else:
            self._over(item)

    def _over(self, item: Incoming) -> None:
        """Past a bound: drop and count, unless this one message is all there would be.

        A payload larger than the whole byte bound is taken when nothing else is held, so a
        broker's max_payload above queue_max_bytes slows the recorder instead of starving it.
        """
        if self.held_bytes() == 0 and len(self.items) < self.limit:
            self.items.append(item)
            self.accepted += 1
            self.accepted_bytes += len(item.payload)
            return
        self.dropped += 1
        count_subject(self.dropped_by_subject, item.subject)

    def hand_over(self, items: Iterable[Incoming]) -> None:
        """Queue messages whose producer bounds itself (a JetStream batch waiting on a barrier).

        Never refused: a refused JetStream message would be acknowledged without being written.
        """
        for item in items:
            self.items.append(item)
            self.accepted += 1
            self.accepted_bytes += len(item.payload)

    def release(self, nbytes: int) -> None:
        """The writer is done with messages whose payloads total `nbytes`."""
        self.allowed_bytes += nbytes

    def held_bytes(self) -> int:
        """Payload bytes of messages queued or in the writer's hands."""
        return self.accepted_bytes - (self.allowed_bytes - self.max_bytes)

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
