"""Real file systems for fault tests: a small tmpfs to fill, and a filler that fills it."""

from __future__ import annotations

import errno
import subprocess
from pathlib import Path


class MountRefusedError(Exception):
    """This machine would not mount a tmpfs (not root, or no CAP_SYS_ADMIN)."""


def mount_tmpfs(where: Path, size: str) -> None:
    """Mount a tmpfs of `size` (as mount(8) takes it: "1m", "512k") on the directory `where`."""
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        raise MountRefusedError(result.stderr.decode().strip())


def unmount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def fill(path: Path) -> int:
    """Write `path` until the filesystem refuses (ENOSPC); returns the bytes it holds."""
    written = 0
    with path.open("ab", buffering=0) as handle:
        for chunk in (64 * 1024, 4096, 512, 1):
            try:
                while True:
                    written += handle.write(b"\0" * chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    return written
