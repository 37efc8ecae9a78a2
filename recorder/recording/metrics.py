"""The daemon's counters and gauges, rendered in the Prometheus text format.

Counters are plain ints and dicts: each has one writing thread (the writer thread, or the
event loop for connection state), and a scrape only reads them.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from recorder.journal.record import Incoming, MarkerType
from recorder.log import log_write_errors

FSYNC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Series per subject-labelled family: a wildcard subscription may see any number of subjects,
# and one series (and one dict entry) each would grow the scrape and memory without bound.
# Subjects past the first SUBJECT_SERIES_MAX share one series; the label has a space, which no
# NATS subject can.
SUBJECT_SERIES_MAX: Final = 100
OTHER_SUBJECTS: Final = "(other subjects)"


def count_subject(counts: dict[str, int], subject: str, n: int = 1) -> None:
    """Add `n` to `subject`'s count, or to OTHER_SUBJECTS once the series are all taken."""
    if subject not in counts and len(counts) >= SUBJECT_SERIES_MAX:
        subject = OTHER_SUBJECTS
    counts[subject] = counts.get(subject, 0) + n


@dataclass(frozen=True, slots=True)
class JournalSize:
    segments: int
    bytes: int


@dataclass
class Metrics:
    written_msgs: dict[str, int] = field(default_factory=dict)
    written_bytes: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)  # by reason
    dropped_by_subject: dict[str, int] = field(default_factory=dict)
    _folded: dict[tuple[str, str], int] = field(default_factory=dict)
    markers: dict[str, int] = field(default_factory=dict)
    write_errors: int = 0
    redeliveries_recognised: int = 0  # JetStream redeliveries of journaled messages, acked
    disconnects: int = 0
    reconnects: int = 0
    fsync_buckets: list[int] = field(default_factory=lambda: [0] * (len(FSYNC_BUCKETS) + 1))
    fsync_sum: float = 0.0
    fsync_count: int = 0
    free_disk_bytes: int = 0
    queue_depth: int = 0
    queue_bytes: int = 0
    active_segment: int = 0
    last_written_ns: int = 0  # monotonic: a step of the wall clock is no message's age
    connected: bool = False
    subscribed: bool = False
    journal_writable: bool = True
    journal_fault: str = ""  # the write or fsync error the writer has not recovered from
    disk_ok: bool = True
    journal_size: Callable[[], JournalSize] | None = None
    # Families of other parts (the archiver), rendered after ours.
    extra: list[Callable[[], str]] = field(default_factory=list)

    # -- updates (writer thread) ----------------------------------------------------------

    def count_written(self, batch: list[Incoming]) -> None:
        msgs, sizes = self.written_msgs, self.written_bytes
        for item in batch:
            # count_subject's cap, inline: this loop runs once per message on the writer thread,
            # and the bytes share the messages' choice of series.
            subject = item.subject
            if subject not in msgs and len(msgs) >= SUBJECT_SERIES_MAX:
                subject = OTHER_SUBJECTS
            msgs[subject] = msgs.get(subject, 0) + 1
            sizes[subject] = sizes.get(subject, 0) + len(item.payload)
        self.last_written_ns = time.monotonic_ns()

    def count_dropped(self, batch: list[Incoming], reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + len(batch)
        for item in batch:
            count_subject(self.dropped_by_subject, item.subject)

    def fold_drops(self, reason: str, by_subject: dict[str, int]) -> None:
        """Fold drops counted on the event loop (running totals by subject) into ours."""
        for subject, total in list(by_subject.items()):
            new = total - self._folded.get((reason, subject), 0)
            if new > 0:
                self._folded[reason, subject] = total
                self.dropped[reason] = self.dropped.get(reason, 0) + new
                count_subject(self.dropped_by_subject, subject, new)

    def count_marker(self, marker: MarkerType) -> None:
        self.markers[str(marker)] = self.markers.get(str(marker), 0) + 1

    def observe_fsync(self, seconds: float) -> None:
        self.fsync_buckets[bisect.bisect_left(FSYNC_BUCKETS, seconds)] += 1
        self.fsync_sum += seconds
        self.fsync_count += 1

    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    # -- health ---------------------------------------------------------------------------

    def not_ready_reasons(self) -> list[str]:
        reasons = []
        if not self.connected:
            reasons.append("not connected to the broker")
        if not self.subscribed:
            reasons.append("not subscribed")
        if not self.journal_writable:
            fault = self.journal_fault
            reasons.append(f"journal not writable ({fault})" if fault else "journal not writable")
        if not self.disk_ok:
            reasons.append("free disk below the floor")
        return reasons

    # -- exposition -----------------------------------------------------------------------

    def render(self) -> str:
        """The Prometheus text exposition of every family."""
        out: list[str] = []
        received = dict(self.written_msgs)
        for subject, count in list(self.dropped_by_subject.items()):
            count_subject(received, subject, count)  # the union stays within the cap too
        _family(out, "messages_received_total", "counter", "Messages received, by subject.")
        _by_subject(out, "messages_received_total", received)
        _family(out, "messages_written_total", "counter", "Messages journaled, by subject.")
        _by_subject(out, "messages_written_total", self.written_msgs)
        _family(out, "bytes_written_total", "counter", "Payload bytes journaled, by subject.")
        _by_subject(out, "bytes_written_total", self.written_bytes)
        _family(out, "messages_dropped_total", "counter", "Messages lost, by reason.")
        # The three known reasons always (at 0 too), then any other; each reason once.
        reasons = dict.fromkeys(
            ("queue_full", "write_error", "slow_consumer", *sorted(self.dropped))
        )
        for reason in reasons:
            out.append(
                f'meshsync_recorder_messages_dropped_total{{reason="{reason}"}} '
                f"{self.dropped.get(reason, 0)}"
            )
        _family(out, "markers_total", "counter", "Marker records written (gaps, drops, stops).")
        for marker in MarkerType:
            out.append(
                f'meshsync_recorder_markers_total{{type="{marker}"}} {self.markers.get(str(marker), 0)}'
            )
        gaps = self.markers.get(str(MarkerType.DISCONNECTED), 0)
        _simple(out, "gaps_total", "counter", "Capture gaps (broker disconnects).", gaps)
        _simple(out, "reconnects_total", "counter", "Reconnections to the broker.", self.reconnects)
        _simple(out, "write_errors_total", "counter", "Failed journal writes.", self.write_errors)
        _simple(
            out,
            "redeliveries_recognised_total",
            "counter",
            "JetStream redeliveries of messages already journaled, acked without a second copy.",
            self.redeliveries_recognised,
        )
        self._render_fsync_histogram(out)
        self._render_gauges(out)
        _simple(out, "connected", "gauge", "1 while connected to the broker.", int(self.connected))
        _simple(
            out, "ready", "gauge", "1 while /readyz answers 200.", int(not self.not_ready_reasons())
        )
        return "\n".join(out) + "\n" + self._render_extra()

    def _render_fsync_histogram(self, out: list[str]) -> None:
        _family(out, "fsync_seconds", "histogram", "Latency of journal fsyncs.")
        cumulative = 0
        for bound, count in zip((*FSYNC_BUCKETS, float("inf")), self.fsync_buckets, strict=True):
            cumulative += count
            label = "+Inf" if bound == float("inf") else repr(bound)
            out.append(f'meshsync_recorder_fsync_seconds_bucket{{le="{label}"}} {cumulative}')
        out.append(f"meshsync_recorder_fsync_seconds_sum {self.fsync_sum}")
        out.append(f"meshsync_recorder_fsync_seconds_count {self.fsync_count}")

    def _render_gauges(self, out: list[str]) -> None:
        if self.journal_size is not None:
            size = self.journal_size()
            _simple(out, "journal_segments", "gauge", "Segment files.", size.segments)
            _simple(out, "journal_bytes", "gauge", "Bytes of all segment files.", size.bytes)
        _simple(
            out, "active_segment", "gauge", "Number of the active segment.", self.active_segment
        )
        _simple(out, "queue_depth", "gauge", "Messages waiting for the writer.", self.queue_depth)
        _simple(
            out,
            "queue_bytes",
            "gauge",
            "Payload bytes queued or being written.",
            self.queue_bytes,
        )
        _simple(
            out,
            "log_write_errors_total",
            "counter",
            "Log lines lost because the log sink failed (stderr closed, broken pipe).",
            log_write_errors(),
        )
        _simple(
            out,
            "free_disk_bytes",
            "gauge",
            "Free bytes on the journal's filesystem.",
            self.free_disk_bytes,
        )
        age = (time.monotonic_ns() - self.last_written_ns) / 1e9 if self.last_written_ns else -1
        _simple(
            out,
            "last_message_age_seconds",
            "gauge",
            "Seconds since the newest message was journaled (-1: none yet).",
            round(age, 3),
        )

    def _render_extra(self) -> str:
        # Families of other parts (the archiver's), each already in exposition format.
        return "".join(render() for render in self.extra)


def _family(out: list[str], name: str, kind: str, help_text: str) -> None:
    out.append(f"# HELP meshsync_recorder_{name} {help_text}")
    out.append(f"# TYPE meshsync_recorder_{name} {kind}")


def _simple(out: list[str], name: str, kind: str, help_text: str, value: float) -> None:
    _family(out, name, kind, help_text)
    out.append(f"meshsync_recorder_{name} {value}")


def _by_subject(out: list[str], name: str, values: dict[str, int]) -> None:
    for subject, count in sorted(values.items()):
        escaped = subject.replace("\\", "\\\\").replace('"', '\\"')
        out.append(f'meshsync_recorder_{name}{{subject="{escaped}"}} {count}')
