"""Checks one crash state: recover it with the product, then every acknowledged record is there."""

from __future__ import annotations

import itertools
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from crashsim.states import CrashState, Model
from recorder.journal.frames import walk_frames
from recorder.journal.maintenance import verify_journal
from recorder.journal.record import FRAME_OVERHEAD, Kind, Marker, MarkerType, decode_body
from recorder.journal.segment import list_segments, segment_bytes
from recorder.journal.writer import JournalWriter

SEGMENT_SUFFIX = ".seg"


@dataclass(slots=True)
class Totals:
    """What the exploration covered and found; `lost` and `invented` must stay 0."""

    states: int = 0
    acknowledged: int = 0
    lost: int = 0
    invented: int = 0
    compactions: int = 0  # states whose compaction was compared with the complete journal's
    failures: list[str] = field(default_factory=list)


def frames(name: str, data: bytes) -> dict[int, bytes]:
    """seq -> raw frame bytes of every valid record in one segment's bytes."""
    found = {}
    for offset, kind, body in walk_frames(name, data, salvage=True, damages=[]):
        if kind is Kind.FOOTER:
            break
        record = decode_body(kind, body, offset)
        found[record.seq] = data[offset : offset + FRAME_OVERHEAD + len(body)]
    return found


def acknowledged(model: Model, journal: str) -> dict[int, bytes]:
    """Records fsynced into a segment that still has a name (retention may delete the rest)."""
    live = {
        os.path.basename(name).split(".")[0] for name in model.names if name.startswith(journal)
    }
    acked: dict[int, bytes] = {}
    for inode, names in model.history.items():
        segment = os.path.basename(names[0])
        if not segment.endswith(SEGMENT_SUFFIX) or segment.split(".")[0] not in live:
            continue
        acked.update(frames(segment, model.durable_content(inode)))
    return acked


def written(model: Model) -> set[bytes]:
    """Every record frame ever written to a segment (as issued), for spotting invented ones."""
    every: set[bytes] = set()
    for inode, names in model.history.items():
        if names[0].endswith(SEGMENT_SUFFIX):
            node = model.inodes[inode]
            for content in (*node.shed, bytes(node.issued)):
                every.update(frames(names[0], content).values())
    return every


def materialise(state: CrashState, root: str, into: Path) -> None:
    """Write the state's directories and files under `into` in place of `root`."""
    shutil.rmtree(into, ignore_errors=True)
    for directory in sorted(state.dirs):
        (into / os.path.relpath(directory, root)).mkdir(parents=True, exist_ok=True)
    for name, data in state.files.items():
        (into / os.path.relpath(name, root)).write_bytes(data)


def journal_frames(directory: Path) -> list[tuple[int, bytes]]:
    """(seq, frame) of every record of every segment, in segment order."""
    out = []
    for segment in list_segments(directory):
        out.extend(frames(segment.name, segment_bytes(segment)).items())
    return out


def check_state(
    model: Model, state: CrashState, root: str, journal: str, into: Path, totals: Totals
) -> None:
    """Recover the state as a restarted recorder would and compare it with the shim's log."""
    materialise(state, root, into)
    directory = into / os.path.relpath(journal, root)
    acked = acknowledged(model, journal)
    totals.states += 1
    totals.acknowledged += len(acked)
    where = f"crash point {state.point}"
    if not directory.is_dir():
        if acked:
            totals.lost += len(acked)
            totals.failures.append(f"{where}: the journal directory is gone")
        return
    for name, versions in model.versions.items():
        data = state.files.get(name)
        if name not in model.created and data is not None and data not in versions:
            totals.failures.append(f"{where}: {name} is neither of its atomic versions")
    before = journal_frames(directory)
    writer = JournalWriter(directory)
    writer.open()
    writer.close()
    after = journal_frames(directory)
    seqs = [seq for seq, _frame in after]
    if any(b <= a for a, b in itertools.pairwise(seqs)):
        totals.failures.append(f"{where}: sequence numbers repeat or go back: {seqs}")
    present = dict(after)
    missing = [seq for seq, frame in acked.items() if present.get(seq) != frame]
    if missing:
        totals.lost += len(missing)
        totals.failures.append(f"{where}: acknowledged records lost: {missing[:10]}")
    known = written(model)
    newest = max((seq for seq, _frame in before), default=0)
    invented = [seq for seq, frame in after if frame not in known and seq <= newest]
    if invented:
        totals.invented += len(invented)
        totals.failures.append(f"{where}: records never written: {invented[:10]}")
    report = verify_journal(directory)
    if not report.clean:
        totals.failures.append(f"{where}: verify after recovery: {report.problems[:3]}")
    if before and not _ends_stopped(before) and not _marks_unclean(after, newest):
        totals.failures.append(f"{where}: the unclean stop is not marked")


def _record(frame: bytes) -> object:
    kind = Kind(frame[12])
    return decode_body(kind, frame[FRAME_OVERHEAD:])


def _ends_stopped(records: list[tuple[int, bytes]]) -> bool:
    last = _record(records[-1][1])
    return isinstance(last, Marker) and last.type is MarkerType.STOPPED


def _marks_unclean(records: list[tuple[int, bytes]], after_seq: int) -> bool:
    for seq, frame in records:
        record = _record(frame)
        if seq > after_seq and isinstance(record, Marker) and record.type is MarkerType.STOPPED:
            return record.fields.get("clean") is False
    return False
