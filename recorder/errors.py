"""The recorder's exception hierarchy: the CLI catches RecorderError, anything else is a bug."""

from __future__ import annotations


class RecorderError(Exception):
    """An expected failure with a one-line explanation for the operator."""

    exit_code = 1
    hint: str | None = None


class UsageError(RecorderError):
    """A command-line value that cannot be used (bad time, bad pattern, missing path)."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class OutputClosedError(RecorderError):
    """The reader of our standard output went away (`recorder dump DIR | head -1`): not a failure."""

    exit_code = 0


class ConfigError(RecorderError):
    """A configuration value is unknown, of the wrong type, or out of range."""

    exit_code = 2

    def __init__(self, field: str, reason: str, source: str | None = None) -> None:
        where = f" (in {source})" if source else ""
        super().__init__(f"{field}: {reason}{where}")
        self.field = field
        self.reason = reason
        self.source = source


class JournalError(RecorderError):
    """The journal directory cannot be used as asked."""


class CorruptionError(JournalError):
    """A record in the middle of a segment fails its length bound or checksum."""

    def __init__(self, segment: str, offset: int, reason: str) -> None:
        super().__init__(f"{segment}: corrupt record at offset {offset}: {reason}")
        self.segment = segment
        self.offset = offset
        self.reason = reason
        self.hint = "run `recorder verify` for a full report, `recorder repair` to move it aside"


class LockedError(JournalError):
    """Another recorder process holds the journal directory's lock."""

    def __init__(self, directory: str, pid: int | None) -> None:
        holder = f"process {pid}" if pid else "another process"
        super().__init__(f"journal {directory} is locked by {holder}")
        self.directory = directory
        self.pid = pid
        self.hint = "two recorders can never share a journal directory; give each its own"


class PathAccessError(JournalError):
    """A journal or snapshot file that may not be used: unreadable, or a symlink where none may be."""

    def __init__(self, path: str, errno: int | None, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.errno = errno
        self.reason = reason


class SegmentGoneError(JournalError):
    """A segment listed a moment ago is gone: retention or a prune removed it while it was read."""

    def __init__(self, segment: str) -> None:
        super().__init__(f"{segment}: removed while the journal was being read")
        self.segment = segment


class NotAJournalError(JournalError):
    """A directory holding no segment and no LOCK, only files a journal never has."""

    exit_code = 2

    def __init__(self, directory: str, entries: list[str]) -> None:
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        super().__init__(
            f"{directory}: not a journal directory (no segment and no LOCK file; "
            f"{len(entries)} other entries: {shown})"
        )
        self.directory = directory
        self.entries = entries


class GapError(JournalError):
    """Records inside the range read are missing from the journal; the missing ranges listed."""

    def __init__(self, directory: str, gaps: list[str]) -> None:
        super().__init__(f"{directory}: records missing: {'; '.join(gaps)}")
        self.directory = directory
        self.gaps = gaps


class EmptyJournalError(JournalError):
    """A journal without messages would replace an existing snapshot with an empty one."""

    def __init__(self, directory: str, snapshot: str) -> None:
        super().__init__(
            f"{directory}: the journal holds no messages; {snapshot} left as it was, "
            "not replaced by an empty snapshot"
        )
        self.directory = directory
        self.snapshot = snapshot


class BrokerError(RecorderError):
    """The NATS broker cannot be reached, refused us, or rejected an operation."""


class UnhealthyError(RecorderError):
    """A health check found no live recorder: `target` (a URL or a journal directory) and why."""

    def __init__(self, target: str, reason: str) -> None:
        super().__init__(f"{target}: {reason}")
        self.target = target
        self.reason = reason


class UnsupportedClientError(RecorderError):
    """The installed nats-py lacks an internal the recorder relies on, or bypasses it."""

    def __init__(self, version: str, missing: list[str]) -> None:
        super().__init__(
            f"nats-py {version} is not supported: {'; '.join(missing)} "
            "(repeated header names would be collapsed or messages not delivered)"
        )
        self.version = version
        self.missing = missing
        self.hint = "install a nats-py version in the range pyproject.toml pins (>=2.15,<3)"


class JournalWriteError(JournalError):
    """Appending failed (disk full, permission lost, file size limit); nothing torn was left."""

    def __init__(self, segment: str, errno: int | None, reason: str) -> None:
        super().__init__(f"{segment}: write failed: {reason}")
        self.segment = segment
        self.errno = errno
        self.written = 0  # how many of the batch's records did reach the journal


class PublishError(BrokerError):
    """A message that cannot be put on the wire, or a connection that can no longer take any."""


class ArchiveError(RecorderError):
    """The object store refused or failed an archive operation; `kind` classifies why."""

    def __init__(self, location: str, kind: str, reason: str) -> None:
        super().__init__(f"{location}: {reason}")
        self.location = location
        self.kind = kind  # not_found, no_bucket, denied, unavailable, mismatch, bad_url, other
        self.reason = reason


class ObjectNotFoundError(RecorderError):
    """No event in the journal (within the range asked) matches the object asked for."""

    def __init__(self, directory: str, wanted: str) -> None:
        super().__init__(f"{directory}: no events of {wanted}")
        self.directory = directory
        self.wanted = wanted
