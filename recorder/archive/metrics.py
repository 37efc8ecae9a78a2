"""The archiver's Prometheus families, appended to the daemon's /metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

KINDS: Final = ("unavailable", "server_error", "no_bucket", "denied", "mismatch", "other")
_P: Final = "meshsync_recorder_archive_"


@dataclass(slots=True)
class ArchiveStatus:
    """What /metrics shows: the backlog and the failures by kind."""

    waiting_segments: int = 0
    waiting_bytes: int = 0
    oldest_waiting_age_s: float = 0.0
    archived_segments: int = 0
    errors: dict[str, int] = field(default_factory=dict)


def render_archive_metrics(status: ArchiveStatus) -> str:
    out: list[str] = []
    gauges = (
        ("waiting_segments", "Sealed segments not yet archived.", status.waiting_segments),
        ("waiting_bytes", "Bytes of sealed segments not yet archived.", status.waiting_bytes),
        (
            "oldest_waiting_age_seconds",
            "Seconds since the oldest unarchived segment was sealed (0: none).",
            round(status.oldest_waiting_age_s, 3),
        ),
        ("archived_segments", "Segments named by the stored index.", status.archived_segments),
    )
    for name, help_text, value in gauges:
        out += [f"# HELP {_P}{name} {help_text}", f"# TYPE {_P}{name} gauge", f"{_P}{name} {value}"]
    out += [
        f"# HELP {_P}errors_total Failed archive operations, by kind.",
        f"# TYPE {_P}errors_total counter",
    ]
    for kind in (*KINDS, *sorted(set(status.errors) - set(KINDS))):
        out.append(f'{_P}errors_total{{kind="{kind}"}} {status.errors.get(kind, 0)}')
    return "\n".join(out) + "\n"
