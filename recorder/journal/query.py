"""What a read asks for (`Query`) and what it found on the way (`ReadStats`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from recorder.journal.frames import Damage
from recorder.journal.gaps import Bounds, Gap
from recorder.journal.record import Footer


@dataclass(frozen=True, slots=True)
class Query:
    """Which records a command wants; bounds are inclusive, subjects use NATS wildcards."""

    since_ns: int | None = None
    until_ns: int | None = None
    from_seq: int | None = None
    to_seq: int | None = None
    subjects: tuple[str, ...] = ()

    def before_segment(self, footer: Footer) -> bool:
        """Whether a sealed segment lies wholly before the query's range."""
        return (self.from_seq is not None and footer.last_seq < self.from_seq) or (
            self.since_ns is not None and footer.last_time_ns < self.since_ns
        )

    def excludes_segment(self, footer: Footer) -> bool:
        """Whether a sealed segment's range lies wholly outside the query."""
        return (
            footer.records == 0
            or self.before_segment(footer)
            or (self.to_seq is not None and footer.first_seq > self.to_seq)
            or (self.until_ns is not None and footer.first_time_ns > self.until_ns)
        )

    def admits(self, seq: int, time_ns: int) -> bool:
        return not (
            (self.from_seq is not None and seq < self.from_seq)
            or (self.to_seq is not None and seq > self.to_seq)
            or (self.since_ns is not None and time_ns < self.since_ns)
            or (self.until_ns is not None and time_ns > self.until_ns)
        )

    @property
    def bounds(self) -> Bounds:
        return Bounds(self.from_seq, self.to_seq, self.since_ns, self.until_ns)

    @property
    def bounded(self) -> bool:
        return any(
            bound is not None
            for bound in (self.since_ns, self.until_ns, self.from_seq, self.to_seq)
        )


@dataclass(slots=True)
class ReadStats:
    segments_read: int = 0
    segments_skipped: int = 0
    records: int = 0
    damages: list[Damage] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    first_seq: int | None = None  # of the first record returned
    in_progress: str | None = None  # the live writer's segment, read up to its last whole record

    @property
    def skipped_bytes(self) -> int:
        return sum(damage.length for damage in self.damages)
