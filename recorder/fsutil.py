"""Durable file operations: fsync of directories, and files that appear complete or not at all."""

from __future__ import annotations

import contextlib
import errno
import io
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from recorder.errors import PathAccessError

# Journals and snapshots hold whatever MeshSync publishes, Secret data included: owner-only.
PRIVATE_FILE_MODE = 0o600

# A link planted in a shared or group-writable directory must not redirect a write (or a read
# of Secret data) to a file of the attacker's choosing: nothing here is opened through a link.
_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC
# Errors that say "this path may not be used" rather than "it is not there (yet)": a missing
# file keeps its FileNotFoundError, which readers of a live journal rely on.
_REFUSED = {errno.ELOOP, errno.EACCES, errno.EPERM, errno.EEXIST}


def refused(path: Path, exc: OSError, writing: bool) -> PathAccessError:
    """The facts of an open that was refused, as one error naming the file."""
    if exc.errno == errno.ELOOP:
        reason = "is a symbolic link; journal and snapshot files are never opened through one"
    elif exc.errno == errno.EEXIST:
        reason = "already exists (a file or link planted where a new file goes); refused"
    else:
        reason = f"permission denied for {'writing' if writing else 'reading'}"
    return PathAccessError(str(path), exc.errno, reason)


def open_nofollow(path: Path, flags: int, mode: int = PRIVATE_FILE_MODE) -> int:
    """os.open that never follows a symlink at `path`; a refusal raises PathAccessError."""
    try:
        return os.open(path, flags | _NOFOLLOW, mode)
    except OSError as exc:
        if exc.errno in _REFUSED:
            raise refused(path, exc, writing=bool(flags & (os.O_WRONLY | os.O_RDWR))) from None
        raise


def open_for_reading(path: Path) -> io.FileIO:
    """An unbuffered file object for reading `path`, opened without following a symlink.

    Unbuffered: its readers take whole files, footers or large chunks.
    """
    return io.FileIO(open_nofollow(path, os.O_RDONLY), "rb")


def read_file(path: Path) -> bytes:
    """The whole of `path`, opened without following a symlink."""
    with open_for_reading(path) as handle:
        return handle.read()


def fsync_dir(directory: Path) -> None:
    """Make a create, rename or unlink in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: Path, mode: int = PRIVATE_FILE_MODE) -> Iterator[IO[bytes]]:
    """A binary file written as tmp -> fsync -> rename -> fsync(dir)."""
    # Unpredictable and exclusive: nobody can plant a link at the name before we create it.
    # os.urandom, not secrets: the same bytes, without hashlib and hmac loaded at every start.
    tmp = path.with_name(f".{path.name}.{os.urandom(8).hex()}.tmp")
    fd = open_nofollow(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def write_atomic(path: Path, chunks: Iterable[bytes], mode: int = PRIVATE_FILE_MODE) -> int:
    """Write `chunks` to `path` atomically; returns the number of bytes written."""
    written = 0
    with atomic_file(path, mode) as handle:
        for chunk in chunks:
            handle.write(chunk)
            written += len(chunk)
    return written


IOV_MAX = os.sysconf("SCIOV_MAX") if "SCIOV_MAX" in os.sysconf_names else 1024


def write_all(fd: int, data: bytes | list[bytes]) -> int:
    """Write everything (one buffer, or parts gathered with writev); returns the byte count."""
    if isinstance(data, bytes):
        data = [data]
    total = 0
    for start in range(0, len(data), IOV_MAX):
        chunk = data[start : start + IOV_MAX]
        expected = sum(map(len, chunk))
        written = os.writev(fd, chunk)
        if written < expected:  # a short write: finish the rest plainly
            rest = memoryview(b"".join(chunk))[written:]
            while rest:
                rest = rest[os.write(fd, rest) :]
        total += expected
    return total
