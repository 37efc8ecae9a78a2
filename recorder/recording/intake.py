"""The bounded hand-over between the NATS callback (event loop) and the writer thread.

The event loop only appends tuples to a deque and bumps two integers: no awaits, no locks,
no allocation beyond the tuple itself. CPython's deque append/popleft are atomic, and each
counter has a single writing thread, so no lock is needed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from recorder.journal.record import Incoming, MarkerType


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
    """A bounded FIFO of incoming messages, plus ordered control entries."""

    __slots__ = (
        "accepted",
        "controls",
        "dropped",
        "dropped_by_subject",
        "items",
        "limit",
        "slow_consumer_by_subject",
        "slow_consumer_dropped",
    )

    def __init__(self, limit: int) -> None:
        self.items: deque[Incoming] = deque()
        self.controls: deque[Control] = deque()
        self.limit = limit
        self.accepted = 0  # written only by the event loop
        self.dropped = 0  # refused because the queue was full; written only by the event loop
        self.dropped_by_subject: dict[str, int] = {}
        # Messages nats-py itself dropped (its pending limits), reported through error_cb.
        self.slow_consumer_dropped = 0
        self.slow_consumer_by_subject: dict[str, int] = {}

    def put(self, item: Incoming) -> None:
        """The hot path: queue a message, or count it as dropped when the queue is full."""
        if len(self.items) < self.limit:
            self.items.append(item)
            self.accepted += 1
        else:
            self.dropped += 1
            subject = item.subject
            self.dropped_by_subject[subject] = self.dropped_by_subject.get(subject, 0) + 1

    def count_slow_consumer(self, subject: str) -> None:
        self.slow_consumer_dropped += 1
        self.slow_consumer_by_subject[subject] = self.slow_consumer_by_subject.get(subject, 0) + 1

    def mark(self, marker: MarkerType, fields: dict[str, Any]) -> None:
        """Queue a marker record, ordered after every message accepted so far."""
        self.controls.append(Control(self.accepted, marker, fields))

    def barrier(self, done: Callable[[bool], None]) -> None:
        """Call `done(ok)` once every message accepted so far is written and fsynced."""
        self.controls.append(Control(self.accepted, done=done))

    def __len__(self) -> int:
        return len(self.items)
