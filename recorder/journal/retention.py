"""Retention: which sealed segments to delete by total bytes, age and count (pure planning)."""

from __future__ import annotations

from dataclasses import dataclass

from recorder.journal.segment import SegmentSummary


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Zero means unlimited for each bound."""

    max_bytes: int = 0
    max_age_ns: int = 0
    max_segments: int = 0

    @property
    def enabled(self) -> bool:
        return bool(self.max_bytes or self.max_age_ns or self.max_segments)


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
