"""The journal directory's exclusive lock: two writers can never share a directory."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import Final

from recorder.errors import LockedError, PathAccessError
from recorder.fsutil import open_nofollow, read_file
from recorder.journal.segment import FILE_MODE

LOCK_NAME: Final = "LOCK"
_ATTEMPTS: Final = 5
_RETRY_S: Final = 0.02


class DirectoryLock:
    """An flock on DIR/LOCK holding the owner's pid, released when the process dies."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = open_nofollow(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        for attempt in range(_ATTEMPTS):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == _ATTEMPTS - 1:
                    os.close(fd)
                    raise LockedError(str(self.directory), holder_pid(self.directory)) from None
                # `is_locked` probes hold a shared lock for microseconds; do not fail on one.
                time.sleep(_RETRY_S)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None  # not held any more even if close fails: never closed twice
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing drops the flock

    def __enter__(self) -> DirectoryLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def holder_pid(directory: Path) -> int | None:
    try:
        text = read_file(directory / LOCK_NAME).decode(errors="replace").strip()
    except (OSError, PathAccessError):
        return None
    return int(text) if text.isdigit() else None


def is_locked(directory: Path) -> bool:
    """Whether a live writer holds the directory (probed with a shared, non-blocking flock)."""
    try:
        fd = open_nofollow(directory / LOCK_NAME, os.O_RDONLY)
    except (OSError, PathAccessError):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
