"""How a journal writer writes: segment size and age, the fsync policy, compression, retention."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from recorder.journal.retention import RetentionPolicy


class FsyncPolicy(enum.StrEnum):
    ALWAYS = "always"  # one fsync per appended batch (group commit)
    INTERVAL = "interval"  # at most one fsync per interval, and on rotation and close
    NEVER = "never"  # leave it to the kernel, except on rotation and close


class Compression(enum.StrEnum):
    NONE = "none"
    ZSTD = "zstd"


@dataclass(frozen=True, slots=True)
class WriterOptions:
    segment_max_bytes: int = 64 * 1024 * 1024
    segment_max_age_ns: int = 3600 * 10**9
    fsync: FsyncPolicy = FsyncPolicy.INTERVAL
    fsync_interval_ns: int = 10**9
    compression: Compression = Compression.NONE
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)
