"""Builders for the recording tests: numbered messages, a pump rig on a real journal, reading back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from recorder.journal.reader import JournalReader
from recorder.journal.record import Incoming, Message, Record
from recorder.journal.writer import JournalWriter
from recorder.recording.intake import Intake
from recorder.recording.metrics import Metrics
from recorder.recording.pump import Pump

# A byte bound no test here reaches: these tests are about the count, batches and barriers.
UNBOUNDED_BYTES = 1 << 40

T0 = 1_790_000_000 * 10**9
SUBJECT = "meshery.meshsync.core"
JOIN_S = 30.0


def incoming(n: int, *, subject: str = SUBJECT, size: int = 0) -> Incoming:
    """Message `n`: its number as the payload (padded to `size`), received n µs after T0."""
    return Incoming(T0 + n * 1000, subject, "", None, str(n).encode().ljust(size, b"."), None)


@dataclass
class Rig:
    """One Pump with its real JournalWriter, Intake and Metrics."""

    directory: Path
    writer: JournalWriter
    intake: Intake
    metrics: Metrics
    pump: Pump

    def put(self, *items: Incoming) -> None:
        for item in items:
            self.intake.put(item)

    def written(self) -> int:
        return sum(self.metrics.written_msgs.values())

    def finish(self) -> list[Record]:
        """Stop the thread (it writes what is queued and closes), then read the journal."""
        self.pump.stop()
        self.pump.join(JOIN_S)
        assert not self.pump.is_alive(), "the writer thread did not finish"
        assert self.pump.failure is None, self.pump.failure
        return records(self.directory)


def records(directory: Path) -> list[Record]:
    return [record for _position, record in JournalReader(directory, markers=True)]


def payloads(found: list[Record]) -> list[bytes]:
    return [record.payload for record in found if isinstance(record, Message)]
