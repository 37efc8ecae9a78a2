"""Durable file operations: fsync of directories, and files that appear complete or not at all."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

# Journals and snapshots hold whatever MeshSync publishes, Secret data included: owner-only.
PRIVATE_FILE_MODE = 0o600


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
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
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
