"""What a power loss could leave on disk at each point of an operation log (pure logic).

The model: bytes a file's fsync covered survive; the writes and truncations after that survive
as any prefix of the file's sequence of them, the last one torn at a 512-byte sector boundary,
independently per file; a create, rename, unlink or mkdir survives when its directory was
fsynced after it, and otherwise may or may not (an operation that depends on an earlier one on
the same name survives only with it).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from crashsim.oplog import Op

SECTOR = 512


@dataclass(slots=True)
class Inode:
    """A file's durable bytes and its writes and truncations since its last fsync."""

    durable: bytearray = field(default_factory=bytearray)
    pending: list[tuple[int, bytes | None]] = field(default_factory=list)  # (offset, data|size)
    issued: bytearray = field(default_factory=bytearray)
    # The content before each truncation that cut bytes away: what was written stays written
    # (a crash may keep it), even after the writer cut it back after a write or fsync error.
    shed: list[bytes] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class DirOp:
    kind: str  # link (a create), rename, unlink, mkdir, rmdir
    name: str
    inode: int  # link, rename: the inode named; else -1
    directory: str
    needs: tuple[str, ...]
    source: str = ""  # rename: the old name, gone exactly when the new one appears


@dataclass(frozen=True, slots=True)
class CrashState:
    """A disk state: the files (path -> bytes) and directories, and where in the log it is."""

    point: int
    files: dict[str, bytes]
    dirs: frozenset[str]


def apply_data(content: bytearray, offset: int, data: bytes | None) -> None:
    """Apply one write (`data`) or truncation (`data` None, `offset` the size) to `content`."""
    if data is None:
        del content[offset:]
        content.extend(bytes(max(0, offset - len(content))))
        return
    if len(content) < offset:
        content.extend(bytes(offset - len(content)))
    content[offset : offset + len(data)] = data


def torn(offset: int, data: bytes, rng: random.Random) -> bytes:
    """A prefix of a write ending on a sector boundary of the file (possibly empty)."""
    cuts = [
        cut - offset for cut in range(offset - offset % SECTOR + SECTOR, offset + len(data), SECTOR)
    ]
    return data[: rng.choice([0, *cuts])]


class Model:
    """Replays operations and samples the states a crash after the latest one could leave."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.inodes: list[Inode] = []
        self.names: dict[str, int] = {}  # issued namespace: path -> inode (-1 for directories)
        self.durable_names: dict[str, int] = {root: -1}
        self.names[root] = -1
        self.pending_dir: list[DirOp] = []
        self.fds: dict[tuple[int, int], int | str] = {}  # -> inode, or a directory's path
        self.syncs: dict[tuple[int, int], int] = {}  # fsync begun: pending count it covers
        self.history: dict[int, list[str]] = {}  # inode -> every name it had
        # Names only ever given by a rename (atomic writes): every complete version renamed in.
        self.versions: dict[str, list[bytes]] = {}
        self.created: set[str] = set()

    def _link(self, name: str, inode: int) -> None:
        self.names[name] = inode
        self.history.setdefault(inode, []).append(name)

    def _dir_op(self, kind: str, name: str, inode: int = -1, source: str = "") -> None:
        directory = os.path.dirname(name)
        self.pending_dir.append(DirOp(kind, name, inode, directory, (directory,), source))

    def apply(self, op: Op) -> None:
        key = (op.pid, op.fd)
        if op.kind == "open":
            if op.flags & os.O_DIRECTORY:
                self.fds[key] = op.path
                return
            if op.created or op.path not in self.names:
                self.inodes.append(Inode())
                self.created.add(op.path)
                self._link(op.path, len(self.inodes) - 1)
                self._dir_op("link", op.path, len(self.inodes) - 1)
            inode = self.names[op.path]
            self.fds[key] = inode
            if op.flags & os.O_TRUNC and op.flags & (os.O_WRONLY | os.O_RDWR):
                self._data(inode, 0, None)
        elif op.kind == "write":
            self._data(self._fd_inode(key), op.flags, op.data)
        elif op.kind == "truncate":
            self._data(self._fd_inode(key), op.flags, None)
        elif op.kind == "pathtruncate":
            self._data(self.names[op.path], op.flags, None)
        elif op.kind == "sync_begin":
            target = self.fds[key]
            if isinstance(target, str):
                self.syncs[key] = len(self.pending_dir)
            else:
                self.syncs[key] = len(self.inodes[target].pending)
        elif op.kind == "sync_end":
            self._sync(key, self.syncs.pop(key))
        elif op.kind == "rename":
            inode = self.names.pop(op.path)
            self._link(op.target, inode)
            self.versions.setdefault(op.target, []).append(bytes(self.inodes[inode].issued))
            self._dir_op("rename", op.target, inode, op.path)
        elif op.kind == "unlink":
            self.names.pop(op.path, None)
            self._dir_op("unlink", op.path)
        elif op.kind == "mkdir":
            self.names[op.path] = -1
            self._dir_op("mkdir", op.path)
        elif op.kind == "rmdir":
            self.names.pop(op.path, None)
            self._dir_op("rmdir", op.path)
        elif op.kind == "close":
            self.fds.pop(key, None)

    def _fd_inode(self, key: tuple[int, int]) -> int:
        target = self.fds[key]
        assert isinstance(target, int), f"a write to directory {target}"
        return target

    def _data(self, inode: int, offset: int, data: bytes | None) -> None:
        node = self.inodes[inode]
        node.pending.append((offset, data))
        if data is None and offset < len(node.issued):
            node.shed.append(bytes(node.issued))
        apply_data(node.issued, offset, data)

    def _sync(self, key: tuple[int, int], covered: int) -> None:
        target = self.fds.get(key)
        if target is None:
            return
        if isinstance(target, int):
            node = self.inodes[target]
            for offset, data in node.pending[:covered]:
                apply_data(node.durable, offset, data)
            del node.pending[:covered]
            return
        # Only the entries of this directory issued before the fsync began become durable.
        done = [op for op in self.pending_dir[:covered] if op.directory == target]
        for op in done:
            _apply_dir(self.durable_names, op)
        self.pending_dir = [op for op in self.pending_dir if not _contains(done, op)]

    def sample(self, point: int, rng: random.Random, mode: str = "random") -> CrashState:
        """One state a crash now could leave: `min` keeps only what is durable, `max` all."""
        names = dict(self.durable_names)
        lost: set[str] = set()
        for op in self.pending_dir:
            touched = {op.name, op.source} - {""}
            blocked = bool(touched & lost) or any(need in lost for need in op.needs)
            keep = not blocked and (mode == "max" or (mode == "random" and rng.random() < 0.5))
            if keep:
                _apply_dir(names, op)
            else:
                lost |= touched
        files = {}
        dirs = set()
        for name, inode in names.items():
            if inode < 0:
                dirs.add(name)
                continue
            files[name] = self._content(self.inodes[inode], rng, mode)
        reachable = {name: data for name, data in files.items() if os.path.dirname(name) in dirs}
        return CrashState(point, reachable, frozenset(dirs))

    def _content(self, node: Inode, rng: random.Random, mode: str) -> bytes:
        content = bytearray(node.durable)
        count = {"min": 0, "max": len(node.pending)}.get(mode, rng.randint(0, len(node.pending)))
        for offset, data in node.pending[:count]:
            apply_data(content, offset, data)
        if mode == "random" and count < len(node.pending):
            offset, data = node.pending[count]
            if data is not None:
                apply_data(content, offset, torn(offset, data, rng))
        return bytes(content)

    def durable_content(self, inode: int) -> bytes:
        return bytes(self.inodes[inode].durable)


def _contains(ops: list[DirOp], op: DirOp) -> bool:
    return any(candidate is op for candidate in ops)


def _apply_dir(names: dict[str, int], op: DirOp) -> None:
    if op.kind == "rename":
        names.pop(op.source, None)
        names[op.name] = op.inode
    elif op.kind == "link":
        names[op.name] = op.inode
    elif op.kind == "mkdir":
        names[op.name] = -1
    else:
        names.pop(op.name, None)


def crash_points(ops: list[Op], rng: random.Random, between: int) -> list[int]:
    """Every fsync boundary (just before it began, just after it returned) plus random points."""
    points = {index for index, op in enumerate(ops) if op.kind in ("sync_begin", "sync_end")}
    points |= {index + 1 for index, op in enumerate(ops) if op.kind == "sync_end"}
    points |= {rng.randrange(len(ops) + 1) for _ in range(between)}
    return sorted(points)


def explore(
    root: str, ops: list[Op], points: list[int], rng: random.Random, per_point: int
) -> Iterator[tuple[Model, CrashState]]:
    """Replay `ops`; at each crash point (ops before it done) yield the model and sampled states.

    The first state at a point keeps only what is durable, the second everything issued, the
    rest are random.
    """
    model = Model(root)
    wanted = set(points)
    for index in range(len(ops) + 1):
        if index in wanted:
            for sample in range(per_point):
                mode = ("min", "max")[sample] if sample < 2 else "random"
                yield model, model.sample(index, rng, mode)
        if index < len(ops):
            model.apply(ops[index])
