"""Reading the shim's operation log (fslog.c) into operations with their written bytes."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import shims

SHIM_SOURCE = Path(__file__).with_name("fslog.c")


@dataclass(frozen=True, slots=True)
class Op:
    """One logged operation: `kind`, the process and descriptor, the path(s) and its numbers."""

    kind: str
    pid: int
    fd: int
    path: str
    target: str = ""  # rename: the new name
    flags: int = 0  # open: the flags; truncate: the size; write: the offset
    created: bool = False
    data: bytes = b""


def build_shim(out_dir: Path) -> Path:
    """Compile the shim into `out_dir` and return the library's path."""
    return shims.build_shim(SHIM_SOURCE, out_dir)


def shim_env(library: Path, root: Path, log: Path) -> dict[str, str]:
    """Environment that makes a child process log its operations under `root` to `log`."""
    return {
        "LD_PRELOAD": str(library),
        "CRASHSIM_ROOT": os.path.realpath(root),
        "CRASHSIM_LOG": str(log),
    }


def read_log(log: Path) -> list[Op]:
    """The operations in the order they completed, with each write's bytes loaded."""
    data: dict[int, bytes] = {}
    ops = []
    for line in log.read_text().splitlines():
        fields = line.split("\t")
        pid, kind, fd, path = int(fields[0]), fields[1], int(fields[2]), fields[3]
        if pid not in data:
            blob = log.with_name(f"{log.name}.{pid}.data")
            data[pid] = blob.read_bytes() if blob.exists() else b""
        if kind == "open":
            ops.append(Op(kind, pid, fd, path, flags=int(fields[4]), created=fields[5] == "1"))
        elif kind == "write":
            offset, length, at = int(fields[4]), int(fields[5]), int(fields[6])
            ops.append(Op(kind, pid, fd, path, flags=offset, data=data[pid][at : at + length]))
        elif kind in ("truncate", "pathtruncate"):
            ops.append(Op(kind, pid, fd, path, flags=int(fields[4])))
        elif kind == "rename":
            ops.append(Op(kind, pid, fd, path, target=fields[4]))
        elif kind.endswith("_end"):
            if int(fields[4]) == 0:  # a failed fsync makes nothing durable
                ops.append(Op("sync_end", pid, fd, path))
        elif kind.endswith("_begin"):
            ops.append(Op("sync_begin", pid, fd, path))
        else:
            ops.append(Op(kind, pid, fd, path))
    return ops
