"""Snapshot files: compacted objects -> YAML manifests, a JSON `List`, or MeshSync's file format;
and `load_snapshot`, reading the manifests of a YAML or JSON one back (for replay).

Renderers are pure and stream: each yields bytes chunks, one per document, so a large snapshot is
never held in memory twice; `render_*` joins them for small outputs and tests. Files are written
by the caller with `recorder.fsutil` (tmp -> fsync -> rename -> fsync(dir)).

For byte-identical snapshots of the same state, give the same `created_ns` (or None, which leaves
the creation time out); everything else in the output depends only on the objects and the range.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final, TypeVar

import orjson

from recorder.compact.model import CompactStats, LiveObject
from recorder.compact.yaml_emit import YamlEmitter
from recorder.log import get_logger
from recorder.manifest import to_manifest, to_meshsync
from recorder.meshsync import DOCS, Decoded, ObjectEvent, decode, events_of

log = get_logger("snapshot")

SNAPSHOT_PREFIX: Final = "meshery-cluster-snapshot"
_ANNOTATION: Final = "meshery.io/snapshot-"

_EMITTER: Final = YamlEmitter()
CDump = Callable[[Any, bool], "bytes | None"]


def c_emitter() -> CDump | None:
    """The C emitter's dump (same bytes, several times faster), or None where it was not built."""
    try:
        from recorder.compact._yamlemit import dump
    except ImportError:  # installed without a C compiler: the Python emitter does the work
        return None
    return dump


_C_DUMP: CDump | None = c_emitter()
YAML_EMITTER: Final = "C" if _C_DUMP is not None else "Python"


def to_yaml(document: Any, *, sort_keys: bool = False) -> bytes:
    """One YAML document, block style, strings that look like other types quoted."""
    # The C emitter returns None for a str with a lone surrogate, which only Python can escape.
    if _C_DUMP is not None and (data := _C_DUMP(document, sort_keys)) is not None:
        return data
    return _EMITTER.dump(document, sort_keys=sort_keys).encode()


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    """What a snapshot covers: the journal range, when it was made, which clusters and kinds."""

    first_seq: int | None
    last_seq: int | None
    first_time_ns: int | None
    last_time_ns: int | None
    clusters: tuple[str, ...]
    per_kind: dict[str, int] = field(default_factory=dict)
    objects: int = 0
    journal: str = ""
    created_ns: int | None = None
    gaps: tuple[str, ...] = ()  # records missing inside the range, each described

    def fields(self) -> dict[str, str]:
        """The metadata as ordered string pairs (header lines, List annotations)."""
        pairs = {
            "journal": self.journal,
            "first-seq": _text(self.first_seq),
            "last-seq": _text(self.last_seq),
            "first-time": _iso(self.first_time_ns),
            "last-time": _iso(self.last_time_ns),
            "created": _iso(self.created_ns),
            "clusters": ",".join(self.clusters),
            "objects": str(self.objects),
            "kinds": ",".join(f"{kind}={count}" for kind, count in self.per_kind.items()),
            "gaps": "; ".join(self.gaps),
        }
        return {key: value for key, value in pairs.items() if value}


def _text(value: int | None) -> str:
    return "" if value is None else str(value)


def _iso(time_ns: int | None) -> str:
    if time_ns is None:
        return ""
    moment = datetime.fromtimestamp(time_ns / 1e9, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def snapshot_meta(
    objects: Sequence[LiveObject],
    stats: CompactStats,
    *,
    journal: str = "",
    created_ns: int | None = None,
    gaps: tuple[str, ...] = (),
) -> SnapshotMeta:
    """Metadata for a snapshot of `objects` (after filters) out of a compaction with `stats`."""
    per_kind = Counter(obj.kind for obj in objects)
    return SnapshotMeta(
        first_seq=stats.first_seq,
        last_seq=stats.last_seq,
        first_time_ns=stats.first_time_ns,
        last_time_ns=stats.last_time_ns,
        clusters=tuple(sorted({obj.cluster_id for obj in objects})),
        per_kind=dict(sorted(per_kind.items())),
        objects=len(objects),
        journal=journal,
        created_ns=created_ns,
        gaps=gaps,
    )


_Obj = TypeVar("_Obj", LiveObject, ObjectEvent)


def _written(render: Callable[[_Obj], bytes], obj: _Obj, seq: int) -> bytes | None:
    """One object's document, or None (logged) when it nests deeper than the encoders can go.

    A payload's JSON may nest up to orjson's read limit (1024) while orjson writes only 254
    levels and the YAML emitter recurses in Python: such an object is left out, not a crash.
    """
    try:
        return render(obj)
    except (orjson.JSONEncodeError, RecursionError) as exc:
        reason = str(exc) or type(exc).__name__
        log.warning("object_not_written", seq=seq, uid=obj.uid, kind=obj.kind, reason=reason)
        return None


# -- YAML manifests -------------------------------------------------------------------------


def iter_yaml(objects: Iterable[LiveObject], meta: SnapshotMeta) -> Iterator[bytes]:
    """Multi-document Kubernetes manifests behind a header comment with the snapshot metadata."""
    header = ["# meshsync-recorder snapshot"]
    header += [f"# {key}: {value}" for key, value in meta.fields().items()]
    yield ("\n".join(header) + "\n").encode()
    for obj in objects:
        if (document := _written(_yaml_manifest, obj, obj.seq)) is not None:
            yield b"---\n" + document


def _yaml_manifest(obj: LiveObject) -> bytes:
    return to_yaml(obj.manifest())


def render_yaml(objects: Iterable[LiveObject], meta: SnapshotMeta) -> bytes:
    """`iter_yaml` as one bytes value."""
    return b"".join(iter_yaml(objects, meta))


# -- JSON List ------------------------------------------------------------------------------


def _indent(data: bytes, spaces: int) -> bytes:
    return data.replace(b"\n", b"\n" + b" " * spaces)


def iter_json(objects: Iterable[LiveObject], meta: SnapshotMeta) -> Iterator[bytes]:
    """A `v1` `List` as `kubectl get -o json` prints it; the metadata as List annotations."""
    option = _JSON_OPTION
    yield b'{\n  "apiVersion": "v1",\n  "items": ['
    separator = b"\n    "
    for obj in objects:
        if (document := _written(_json_manifest, obj, obj.seq)) is not None:
            yield separator + _indent(document, 4)
            separator = b",\n    "
    annotations = {_ANNOTATION + key: value for key, value in meta.fields().items()}
    list_meta = {"annotations": annotations, "resourceVersion": ""}
    yield b"\n  ],\n" if separator != b"\n    " else b"],\n"
    yield b'  "kind": "List",\n  "metadata": ' + _indent(orjson.dumps(list_meta, option=option), 2)
    yield b"\n}\n"


_JSON_OPTION: Final = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS


def _json_manifest(obj: LiveObject) -> bytes:
    return orjson.dumps(obj.manifest(), option=_JSON_OPTION)


def render_json(objects: Iterable[LiveObject], meta: SnapshotMeta) -> bytes:
    """`iter_json` as one bytes value."""
    return b"".join(iter_json(objects, meta))


# -- MeshSync file mode ---------------------------------------------------------------------


def meshsync_document(obj: dict[str, Any]) -> bytes:
    """One object as MeshSync's YAMLWriter writes it: keys sorted at every level, then `---`."""
    return to_yaml(obj, sort_keys=True) + b"---\n"


def iter_meshsync(objects: Iterable[LiveObject]) -> Iterator[bytes]:
    """The main MeshSync-format file: each live object in MeshSync's own form."""
    for obj in objects:
        if (document := _written(_meshsync_form, obj, obj.seq)) is not None:
            yield document


def _meshsync_form(obj: LiveObject) -> bytes:
    return meshsync_document(obj.as_meshsync())


def render_meshsync(objects: Iterable[LiveObject]) -> bytes:
    """`iter_meshsync` as one bytes value."""
    return b"".join(iter_meshsync(objects))


def extended_documents(
    payload: bytes, subject: str, decoded: Decoded | None = None, seq: int = 0
) -> list[bytes]:
    """Documents for the `-extended` file from one message: every object event, DELETED too."""
    decoded = decode(payload, subject) if decoded is None else decoded
    documents = []
    for event in events_of(decoded):
        if (document := _written(_extended_document, event, seq)) is not None:
            documents.append(document)
    return documents


def _extended_document(event: ObjectEvent) -> bytes:
    obj = event.obj
    if event.wrapper == DOCS:
        obj = to_meshsync(to_manifest(obj, event.cluster_id, meshsync_form=False))
    return meshsync_document(obj)


def meshsync_snapshot_paths(directory: Path, day: date) -> tuple[Path, Path]:
    """The first free `meshery-cluster-snapshot-YYYYMMDD-NN.yaml` and its `-extended` sibling."""
    stem = f"{SNAPSHOT_PREFIX}-{day:%Y%m%d}"
    for number in range(1024):  # MeshSync's own bound (GenerateUniqueFileNameForSnapshot)
        main = directory / f"{stem}-{number:02d}.yaml"
        extended = directory / f"{stem}-{number:02d}-extended.yaml"
        if not main.exists() and not extended.exists():
            return main, extended
    raise FileExistsError(f"no free snapshot name for {stem} in {directory}")
