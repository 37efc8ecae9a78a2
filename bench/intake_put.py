"""The cost of `Intake.put` (the per-message hot path) next to a count-only bound.

    .venv/bin/python bench/intake_put.py [--messages N] [--repeat R]

The baseline is the intake as it was before it counted bytes: a method that checks the count
bound, appends to a deque and bumps a counter. `Intake.put` also adds the payload's length and
compares it with the byte allowance. Both take the same prebuilt tuples into a fresh queue
whose bounds refuse nothing (a healthy recorder), interleaved R times; prints the median ns
per message of each and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import deque
from collections.abc import Callable

from recorder.journal.record import Incoming
from recorder.recording.intake import Intake


class CountOnly:
    """The baseline: the count bound alone."""

    __slots__ = ("accepted", "items", "limit")

    def __init__(self, limit: int) -> None:
        self.items: deque[Incoming] = deque()
        self.limit = limit
        self.accepted = 0

    def put(self, item: Incoming) -> None:
        if len(self.items) < self.limit:
            self.items.append(item)
            self.accepted += 1


def _ns_per_message(put: Callable[[Incoming], None], items: list[Incoming]) -> float:
    started = time.perf_counter_ns()
    for item in items:
        put(item)
    return (time.perf_counter_ns() - started) / len(items)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    payload = b"x" * 2048  # a typical MeshSync event
    items = [
        Incoming(time.time_ns(), "meshery.meshsync.core", "", None, payload, None)
        for _ in range(args.messages)
    ]
    baseline, intake = [], []
    for _ in range(args.repeat):
        baseline.append(_ns_per_message(CountOnly(len(items) + 1).put, items))
        intake.append(_ns_per_message(Intake(len(items) + 1, 2**40).put, items))
    base_ns, intake_ns = statistics.median(baseline), statistics.median(intake)
    print(f"count-only bound (baseline): {base_ns:.0f} ns/message")
    print(f"Intake.put (count + bytes):  {intake_ns:.0f} ns/message")
    print(f"ratio: {intake_ns / base_ns:.2f}x, +{intake_ns - base_ns:.0f} ns/message")


if __name__ == "__main__":
    main()
