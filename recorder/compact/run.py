"""`recorder compact` as a library call: journal (+ checkpoint) -> snapshot files, with stats.

The pure dedup lives in `state` and the renderers in `snapshot`; this module does the I/O
around them: reading segments, the checkpoint file, the output files, and pruning.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Final, Literal

from recorder.compact.model import CompactOptions, CompactStats, LiveObject
from recorder.compact.snapshot import (
    extended_documents,
    iter_json,
    iter_meshsync,
    iter_yaml,
    meshsync_snapshot_paths,
    snapshot_meta,
)
from recorder.compact.state import Compactor
from recorder.errors import EmptyJournalError, SegmentGoneError, UsageError
from recorder.fsutil import atomic_file, fsync_dir, read_file, write_atomic
from recorder.journal.directory import journal_segments
from recorder.journal.gaps import Gap
from recorder.journal.query import Query
from recorder.journal.reader import JournalReader
from recorder.journal.record import Message, Record
from recorder.journal.segment import remove_segment, summarize
from recorder.log import get_logger
from recorder.meshsync import Decoded
from recorder.timeparse import format_time

log = get_logger("compact")

CHECKPOINT_NAME: Final = "checkpoint.compact"
Format = Literal["yaml", "json", "meshsync"]
_SUFFIX: Final = {"yaml": ".yaml", "json": ".json"}
# `writing`: told (objects written, objects to write) while a snapshot is written.
WriteProgress = Callable[[int, int], None]
WRITE_PROGRESS_EVERY: Final = 256


@dataclass(frozen=True, slots=True)
class CompactRequest:
    directory: Path
    format: Format = "yaml"
    out: Path | None = None  # None: the default name in the current directory; "-": stdout
    to_stdout: bool = False
    until_seq: int | None = None
    until_ns: int | None = None
    cluster: str | None = None
    kinds: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    checkpoint: bool = False
    prune: bool = False
    prune_ghosts: bool = False
    idle_ns: int = 10 * 1_000_000_000
    allow_gaps: bool = False  # a checkpoint moves on past missing records (recorded in it)


@dataclass(slots=True)
class CompactResult:
    stats: CompactStats
    outputs: list[Path] = field(default_factory=list)
    objects_written: int = 0
    resumed_from_seq: int | None = None
    # What this run read; `stats` also counts what the checkpoint it resumed from had read.
    messages_read: int = 0
    object_events_read: int = 0
    stopped_at: tuple[int, int] | None = None  # (seq, time_ns) of the first record past until_ns
    checkpoint: Path | None = None
    pruned: list[str] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)  # every gap met, inside the range or not

    @property
    def inside_gaps(self) -> list[Gap]:
        """Gaps in the middle of what was read: records inside the snapshot's range are lost."""
        return [gap for gap in self.gaps if gap.inside]


def run_compaction(
    request: CompactRequest,
    stdout: IO[bytes] | None = None,
    progress: Callable[[int], None] | None = None,
    writing: WriteProgress | None = None,
) -> CompactResult:
    """Compact the journal into a snapshot; `progress` is told each segment it reaches."""
    _check_request(request)
    options = CompactOptions(
        until_seq=request.until_seq,
        until_ns=request.until_ns,
        prune_ghosts=request.prune_ghosts,
        idle_ns=request.idle_ns,
    )
    checkpoint_path = request.directory / CHECKPOINT_NAME
    compactor = _resumed_state(request, options, checkpoint_path) or Compactor(options)
    resumed = compactor.last_seq  # None unless a checkpoint covers records
    # The checkpoint's counters, read off the state: stats() would walk every object for them.
    messages_before, object_events_before = compactor.messages, compactor.object_events
    # No time bound in the query: a time filter picks records by stamp wherever they are, but
    # the state is a fold in sequence order, and a wall clock that stepped back stamps later
    # records earlier. So `until_ns` cuts the journal at the first record stamped past it (the
    # Compactor stops there): never a later record folded in over an earlier one left out,
    # never a checkpoint covering records it did not apply.
    reader = JournalReader(
        request.directory,
        query=Query(
            from_seq=resumed + 1 if resumed is not None else None, to_seq=request.until_seq
        ),
        markers=True,  # markers move compaction's clock on, which closes idle re-list epochs
    )
    with contextlib.ExitStack() as stack:
        meshsync_paths = extended = None
        if request.format == "meshsync":
            directory = request.out or Path.cwd()
            directory.mkdir(exist_ok=True)  # like the other formats' files, made when missing
            meshsync_paths = meshsync_snapshot_paths(directory, datetime.now(UTC).date())
            # Streamed as it is read: the -extended file grows with events, memory must not.
            extended = stack.enter_context(atomic_file(meshsync_paths[1]))
        stopped_at = _feed(compactor, reader, request.until_ns, progress, extended)
        stats = compactor.stats()
        result = CompactResult(
            stats,
            resumed_from_seq=resumed,
            messages_read=stats.messages - messages_before,
            object_events_read=stats.object_events - object_events_before,
            stopped_at=stopped_at,
        )
        result.gaps = _gaps(reader, resumed)
        compactor.gaps += [gap.describe() for gap in result.inside_gaps]
        log_damage(reader)
        stdout = stdout or sys.stdout.buffer
        write_outputs(request, compactor, stats, meshsync_paths, result, stdout, writing)
    if request.checkpoint and (request.allow_gaps or not result.inside_gaps):
        # Never past a gap unasked: the next compaction would start after it, none the wiser.
        write_atomic(checkpoint_path, [compactor.to_bytes()])
        result.checkpoint = checkpoint_path
        if request.prune and stats.last_seq is not None:
            result.pruned = prune_covered_segments(request.directory, stats.last_seq)
    return result


def _check_request(request: CompactRequest) -> None:
    if request.prune and not request.checkpoint:
        raise UsageError(
            "pruning needs a checkpoint: segments are only deleted once one covers them"
        )
    if request.format == "meshsync" and request.to_stdout:
        raise UsageError(
            "the MeshSync format writes two files, so it needs a directory, not stdout"
        )


def _resumed_state(
    request: CompactRequest, options: CompactOptions, checkpoint_path: Path
) -> Compactor | None:
    """The checkpoint's state when this run continues from it; refused if it is past `until`."""
    if not (request.checkpoint or _pruned_before(request.directory, checkpoint_path)):
        return None
    compactor = _load_checkpoint(checkpoint_path, options)
    if compactor is None:
        return None
    resumed = compactor.last_seq
    if resumed is not None and request.until_seq is not None and resumed > request.until_seq:
        raise UsageError(
            f"the checkpoint already covers up to seq {resumed}, after --until {request.until_seq}",
            hint="a checkpoint cannot be rewound; compact a journal that still has those segments",
        )
    covered_ns = compactor.last_time_ns
    if covered_ns is not None and request.until_ns is not None and covered_ns > request.until_ns:
        raise UsageError(
            f"the checkpoint already covers up to {format_time(covered_ns)}, after --until",
            hint="a checkpoint cannot be rewound; compact a journal that still has those segments",
        )
    return compactor


def _feed(
    compactor: Compactor,
    reader: JournalReader,
    until_ns: int | None,
    progress: Callable[[int], None] | None,
    extended: IO[bytes] | None,
) -> tuple[int, int] | None:
    """Fold the journal into `compactor`; (seq, time) of the record that ended it at `until_ns`."""
    stopped_at = None
    if not compactor.feed_many(_records(reader, progress), _extended_writer(extended)):
        past = compactor.stopped_by
        if past is not None and until_ns is not None and past.time_ns > until_ns:
            log.info("compaction_stopped_at_time", seq=past.seq, time=format_time(past.time_ns))
            stopped_at = (past.seq, past.time_ns)
    if until_ns is not None:
        compactor.close_idle_epoch(until_ns)
    return stopped_at


def log_damage(reader: JournalReader) -> None:
    """Every stretch the reader skipped (a torn tail, damage it salvaged past), one event each."""
    for damage in reader.stats.damages:
        log.warning(
            "journal_damage_skipped",
            segment=damage.segment,
            offset=damage.offset,
            torn=damage.torn,
            reason=damage.reason,
        )


def _gaps(reader: JournalReader, resumed: int | None) -> list[Gap]:
    """The reader's gaps, and the records missing between a checkpoint and what follows it."""
    gaps = list(reader.stats.gaps)
    first = reader.stats.first_seq
    inside = any(gap.inside for gap in gaps)  # a hole in the numbering says it better
    if resumed is not None and first is not None and first > resumed + 1 and not inside:
        gaps.insert(0, Gap(None, None, resumed + 1, first - 1, "missing after the checkpoint"))
    return gaps  # reported by the caller (the CLI's warnings), not logged here a second time


def _records(reader: JournalReader, progress: Callable[[int], None] | None) -> Iterator[Record]:
    segment = None
    for position, record in reader:
        if progress is not None and position.segment != segment:
            segment = position.segment
            progress(segment)
        yield record


def _extended_writer(extended: IO[bytes] | None) -> Callable[[Decoded, Message], None] | None:
    """Write each applied message's events to the `-extended` file, from the one decoding."""
    if extended is None:
        return None

    def write(decoded: Decoded, message: Message) -> None:
        documents = extended_documents(
            message.payload, message.subject, decoded=decoded, seq=message.seq
        )
        extended.write(b"".join(documents))

    return write


def _pruned_before(directory: Path, checkpoint_path: Path) -> bool:
    """Whether segments were pruned into a checkpoint: then every compaction must start from it."""
    if not checkpoint_path.exists():
        return False
    segments = journal_segments(directory)
    if not segments or segments[0].number > 1:
        return True
    try:
        footer = summarize(segments[0]).footer
    except SegmentGoneError:
        return True  # removed since it was listed: the journal no longer starts at 1
    return footer is not None and footer.first_seq > 1


def _load_checkpoint(path: Path, options: CompactOptions) -> Compactor | None:
    try:
        data = read_file(path)
    except FileNotFoundError:
        return None
    try:
        compactor = Compactor.from_bytes(data, options)
    except UsageError as exc:
        raise UsageError(f"{path}: {exc}", hint=exc.hint) from None
    except (KeyError, TypeError, ValueError):  # msgpack, but not in the shape to_bytes writes
        raise UsageError(f"{path}: the checkpoint is not a compaction state", "delete it") from None
    log.info("checkpoint_loaded", path=str(path), last_seq=compactor.last_seq)
    return compactor


def write_outputs(
    request: CompactRequest,
    compactor: Compactor,
    stats: CompactStats,
    meshsync_paths: tuple[Path, Path] | None,
    result: CompactResult,
    stdout: IO[bytes],
    writing: WriteProgress | None = None,
) -> None:
    kinds = request.kinds or None
    namespaces = request.namespaces or None
    created = time.time_ns()
    journal = str(request.directory)
    gaps = tuple(compactor.gaps)
    if meshsync_paths is not None:
        objects = compactor.objects(request.cluster, kinds, namespaces)
        main, extended_path = meshsync_paths  # the caller writes the extended file
        write_atomic(main, iter_meshsync(_told(objects, writing, 0, len(objects))))
        result.outputs += [main, extended_path]
        result.objects_written = len(objects)
        return
    render = iter_yaml if request.format == "yaml" else iter_json
    if request.to_stdout:
        objects = compactor.objects(request.cluster, kinds, namespaces)
        meta = snapshot_meta(objects, stats, journal=journal, created_ns=created, gaps=gaps)
        for chunk in render(_told(objects, writing, 0, len(objects)), meta):
            stdout.write(chunk)
        stdout.flush()
        result.objects_written = len(objects)
        return
    base = request.out or Path(f"snapshot{_SUFFIX[request.format]}")
    if not stats.messages and base.exists():
        raise EmptyJournalError(journal, str(base))
    clusters = [request.cluster] if request.cluster else list(compactor.clusters()) or [""]
    # Every file's objects up front (references only), so progress can count to the total.
    batches = [
        (cluster, compactor.objects(cluster or None, kinds, namespaces)) for cluster in clusters
    ]
    total = sum(len(objects) for _cluster, objects in batches)
    for cluster, objects in batches:
        meta = snapshot_meta(objects, stats, journal=journal, created_ns=created, gaps=gaps)
        path = base if len(clusters) == 1 else _per_cluster(base, cluster)
        with atomic_file(path) as handle:
            for chunk in render(_told(objects, writing, result.objects_written, total), meta):
                handle.write(chunk)
        result.outputs.append(path)
        result.objects_written += len(objects)


def _told(
    objects: list[LiveObject], writing: WriteProgress | None, done: int, total: int
) -> Iterable[LiveObject]:
    """`objects`, telling `writing` how far the snapshot has got every WRITE_PROGRESS_EVERY."""
    if writing is None:
        return objects
    return _telling(objects, writing, done, total)


def _telling(
    objects: list[LiveObject], writing: WriteProgress, done: int, total: int
) -> Iterator[LiveObject]:
    # Told per batch, not per object: a call per object would cost more than a small one writes.
    # A slice, not islice: islice walks the list from its start for every batch.
    for start in range(0, len(objects), WRITE_PROGRESS_EVERY):
        writing(done + start, total)
        yield from objects[start : start + WRITE_PROGRESS_EVERY]
    writing(done + len(objects), total)


def _per_cluster(base: Path, cluster: str) -> Path:
    """One file per cluster when the journal holds several: `snapshot.<cluster>.yaml`."""
    return base.with_name(f"{base.stem}.{cluster}{base.suffix}")


def prune_covered_segments(directory: Path, covered_seq: int) -> list[str]:
    """Delete sealed segments whose every record is at or before `covered_seq`.

    Never the newest segment (the active one while a recorder runs, and the one a restarted
    recorder continues the numbering and sequence from), never an unsealed one, never one with
    records after the checkpoint.
    """
    segments = journal_segments(directory)[:-1]
    deleted = []
    for segment in segments:
        footer = summarize(segment).footer
        if footer is None or (footer.records and footer.last_seq > covered_seq):
            break  # keep everything from the first segment the checkpoint does not cover
        remove_segment(segment)
        # Oldest first, each durable before the next: a power loss never leaves a gap that
        # would hide the checkpoint from a later compaction (or fail verify).
        fsync_dir(directory)
        deleted.append(segment.name)
        log.info("segment_pruned", segment=segment.number, covered_seq=covered_seq)
    return deleted
