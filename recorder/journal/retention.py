"""Retention: which sealed segments to delete by total bytes, age and count, and deleting them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from recorder.fsutil import fsync_dir
from recorder.journal.segment import (
    SegmentFile,
    SegmentSummary,
    list_segments,
    remove_segment,
    summarize,
)
from recorder.log import get_logger

log = get_logger("journal")


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Zero means unlimited for each bound."""

    max_bytes: int = 0
    max_age_ns: int = 0
    max_segments: int = 0

    @property
    def enabled(self) -> bool:
        return bool(self.max_bytes or self.max_age_ns or self.max_segments)


class SteadyNow:
    """The "now" that the age bound measures record stamps against: the wall clock, but never
    ahead of the wall clock at start-up plus the monotonic time elapsed since.

    Record stamps are wall-clock times, so age is a wall-clock comparison by nature; taking the
    smaller of the two readings means a segment is deleted for its age only when both clocks
    agree it is old. A wall clock stepped forward (a day, say) would otherwise make every sealed
    segment look a day old and delete them all at once; stepped back, segments look younger and
    deletion waits for the step to pass: late, never early. Size and count bounds are unaffected.
    """

    def __init__(self, wall: Callable[[], int], monotonic: Callable[[], int]) -> None:
        self._wall = wall
        self._monotonic = monotonic
        self._wall_at_start = wall()
        self._monotonic_at_start = monotonic()

    def __call__(self) -> int:
        steady = self._wall_at_start + self._monotonic() - self._monotonic_at_start
        return min(self._wall(), steady)


@dataclass(frozen=True, slots=True)
class Deletion:
    summary: SegmentSummary
    reason: str


def plan_retention(
    sealed: list[SegmentSummary], active_size: int, policy: RetentionPolicy, now_ns: int
) -> list[Deletion]:
    """Oldest-first deletions that bring the journal within every bound.

    `sealed` must be in write order and exclude the active segment, which is never deleted;
    its size still counts toward `max_bytes`.
    """
    deletions: list[Deletion] = []
    remaining = list(sealed)
    total = active_size + sum(summary.size for summary in remaining)
    while remaining:
        oldest = remaining[0]
        if policy.max_segments and len(remaining) > policy.max_segments:
            reason = "max_segments"
        elif policy.max_bytes and total > policy.max_bytes:
            reason = "max_bytes"
        elif policy.max_age_ns and _last_time(oldest) < now_ns - policy.max_age_ns:
            reason = "max_age"
        else:
            break
        deletions.append(Deletion(oldest, reason))
        total -= oldest.size
        remaining.pop(0)
    return deletions


def _last_time(summary: SegmentSummary) -> int:
    if summary.footer is not None and summary.footer.records:
        return summary.footer.last_time_ns
    if summary.header is not None:
        return summary.header.created_ns
    return 0


def enforce_retention(
    directory: Path,
    policy: RetentionPolicy,
    active_number: int | None,
    active_size: int,
    now_ns: int,
    may_delete: Callable[[SegmentFile], bool] | None = None,
) -> list[str]:
    """Delete what `plan_retention` says, logging each deletion; returns the names deleted.

    Oldest first, stopping at the first segment `may_delete` refuses: a held segment (not yet
    archived) keeps every newer one too, so the journal never gets a gap. A disk that fills
    meanwhile is the free-space floor's to report, not a reason to delete unarchived data.
    """
    segments = list_segments(directory)
    if active_number is None and segments:
        # Closed: the newest segment is what a restarted writer continues the sequence from,
        # so it is kept (and counted) as the active one would be.
        active_size = segments.pop().path.stat().st_size
    sealed = [summarize(segment) for segment in segments if segment.number != active_number]
    sealed = [summary for summary in sealed if summary.footer is not None]
    deleted = []
    for deletion in plan_retention(sealed, active_size, policy, now_ns):
        if may_delete is not None and not may_delete(deletion.summary.file):
            log.warning(
                "retention_waiting_for_archive",
                segment=deletion.summary.file.number,
                reason=deletion.reason,
            )
            break
        remove_segment(deletion.summary.file)
        # Oldest first, each durable before the next: a power loss never leaves a gap.
        fsync_dir(directory)
        deleted.append(deletion.summary.file.name)
        log.info(
            "segment_deleted",
            segment=deletion.summary.file.number,
            bytes=deletion.summary.size,
            reason=deletion.reason,
        )
    return deleted
