"""`recorder compact` end to end: simulated MeshSync journals in, snapshots and exit codes out."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from cli_streams import human_lines, summary_event

from recorder.cli import main
from recorder.demo.simulator import SimMessage, Simulator
from recorder.journal.options import WriterOptions
from recorder.journal.record import Incoming
from recorder.journal.segment import list_segments, summarize
from recorder.journal.writer import JournalWriter
from recorder.log import reset_logging
from recorder.meshsync import CORE_SUBJECT
from recorder.timeparse import format_time

SEED = 11
EVENTS = 3000
PER_SEGMENT = 500
SIM_OPTIONS: dict[str, Any] = {
    "clusters": 2,
    "namespaces": 2,
    "apps_per_namespace": 3,
    "pods_per_app": 2,
    "resync_every": 300,
    "store_every": 450,
}
MESHSYNC_ONLY = ("id", "model", "cluster_id", "pattern_resource", "component_metadata")
CLUSTER_ANNOTATION = "meshery.io/cluster-id"
Key = tuple[str, str]
SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the extended file is ~10 MB


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI points logging at capsys' stderr, which is gone after the test."""
    yield
    reset_logging()


# -- building journals ----------------------------------------------------------------------


def simulate(count: int, **options: Any) -> tuple[Simulator, list[SimMessage]]:
    """The first `count` messages of the standard two-cluster simulation, and its simulator."""
    sim = Simulator(SEED, **(SIM_OPTIONS | options))
    return sim, list(sim.events(count))


class _Clock:
    """Marker times follow the simulated traffic, so a stop marker never closes a re-list early."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def write_journal(
    directory: Path, messages: list[SimMessage], per_segment: int = PER_SEGMENT
) -> None:
    """Append `messages` as one recorder run (started marker, sealed segments, stop marker)."""
    clock = _Clock(messages[0].time_ns - 1)
    writer = JournalWriter(directory, WriterOptions(), clock=clock)
    writer.open()
    for start in range(0, len(messages), per_segment):
        if start:
            writer.rotate()
        batch = messages[start : start + per_segment]
        writer.append_messages(
            [Incoming(m.time_ns, m.subject, "", None, m.payload, None) for m in batch]
        )
        clock.now = batch[-1].time_ns
    writer.close()


def message_seq(index: int) -> int:
    """The journal sequence number of the index-th message of a fresh journal (after `started`)."""
    return index + 2


@pytest.fixture(scope="module")
def standard(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Simulator]:
    """A closed journal of the standard simulation (read-only: copy it to change it)."""
    directory = tmp_path_factory.mktemp("standard") / "journal"
    sim, messages = simulate(EVENTS)
    write_journal(directory, messages)
    return directory, sim


# -- running the CLI ------------------------------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    capsys.readouterr()  # drop whatever the set-up printed
    with pytest.raises(SystemExit) as exit_info:
        # Console logs: the summary for people is what these tests read (JSON logs carry it as
        # a record instead, see test_cli_summaries.py).
        main(["--log-format", "console", "compact", *map(str, args)])
    captured = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 0), captured.out, captured.err


def compact_ok(capsys: pytest.CaptureFixture[str], *args: str | Path) -> list[str]:
    """Run `recorder compact`, expect success, return its summary lines (logs left out)."""
    code, _, err = run_cli(capsys, *args)
    summary = human_lines(err)
    assert code == 0, err
    return summary


def without_created(data: bytes | str) -> str:
    """Snapshot text without its creation time, the one thing two runs may differ in."""
    text = data.decode() if isinstance(data, bytes) else data
    text = re.sub(r"(?m)^# created: .*\n", "", text)
    return re.sub(r'\n *"meshery.io/snapshot-created": "[^"]*",?', "", text)


def body(data: bytes | str) -> str:
    """The documents of a YAML snapshot without the header comment."""
    text = data.decode() if isinstance(data, bytes) else data
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("# "))


def documents(text: str | bytes) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def state_of(docs: list[dict[str, Any]]) -> dict[Key, str]:
    """(cluster id, uid) -> resourceVersion of snapshot documents."""
    return {
        (doc["metadata"]["annotations"][CLUSTER_ANNOTATION], doc["metadata"]["uid"]): doc[
            "metadata"
        ]["resourceVersion"]
        for doc in docs
    }


def cluster_files(out: Path, sim: Simulator) -> dict[str, Path]:
    return {
        cluster: out.with_name(f"{out.stem}.{cluster}{out.suffix}") for cluster in sim.cluster_ids
    }


# -- the snapshot is the cluster's state, as valid manifests ------------------------------------


def test_yaml_snapshot_is_the_ground_truth_as_valid_manifests(
    standard: tuple[Path, Simulator], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One YAML file per cluster holding exactly the live uids and versions, as clean manifests."""
    journal, sim = standard
    out = tmp_path / "snap.yaml"
    summary = compact_ok(capsys, journal, "--out", out)
    files = cluster_files(out, sim)
    assert sorted(tmp_path.iterdir()) == sorted(files.values())
    assert [f"wrote {path}" for path in sorted(files.values())] == [
        line for line in summary if line.startswith("wrote ")
    ]
    assert summary[0].startswith(f"read {EVENTS} messages")
    truth = sim.truth()
    live = sim.live_objects()
    for cluster, path in files.items():
        docs = documents(path.read_text())
        assert state_of(docs) == {key: rv for key, rv in truth.items() if key[0] == cluster}
        for doc in docs:
            assert_valid_manifest(doc)
            assert_same_object(doc, live[(cluster, doc["metadata"]["uid"])])
        order = [
            (d["metadata"].get("namespace", ""), d["kind"], d["metadata"]["name"]) for d in docs
        ]
        assert order == sorted(order)


def assert_valid_manifest(doc: dict[str, Any]) -> None:
    assert isinstance(doc["apiVersion"], str) and doc["apiVersion"]
    assert isinstance(doc["kind"], str) and doc["kind"]
    meta = doc["metadata"]
    assert isinstance(meta["name"], str) and meta["name"]
    for field in ("labels", "annotations"):
        mapping = meta.get(field, {})
        assert isinstance(mapping, dict)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items())
    for field in MESHSYNC_ONLY:
        assert field not in doc
        assert field not in meta
    assert not any("unique_id" in str(value) for value in meta.get("labels", {}).values())
    for field in ("spec", "status", "data"):
        if field in doc:
            assert isinstance(doc[field], dict)


def assert_same_object(doc: dict[str, Any], wire: dict[str, Any]) -> None:
    """The manifest carries what MeshSync sent, decoded independently here from the wire form."""
    meta, wire_meta = doc["metadata"], wire["metadata"]
    assert (doc["apiVersion"], doc["kind"]) == (wire["apiVersion"], wire["kind"])
    assert meta["name"] == wire_meta["name"]
    assert meta.get("namespace") == wire_meta.get("namespace")
    assert meta.get("labels", {}) == {
        p["key"]: p.get("value", "") for p in wire_meta.get("labels", [])
    }
    annotations = {
        p["key"]: json.loads('"' + p.get("value", "") + '"')
        for p in wire_meta.get("annotations", [])
    }
    assert meta["annotations"] == annotations | {CLUSTER_ANNOTATION: wire["cluster_id"]}
    applied = annotations.get("kubectl.kubernetes.io/last-applied-configuration")
    if applied is not None:  # the escaping quirk undone: the value is JSON text again
        assert json.loads(applied)["metadata"]["name"] == meta["name"]
    for part in ("spec", "status"):
        if part in wire:
            assert doc[part] == json.loads(wire[part]["attribute"])
    if "ownerReferences" in wire_meta:
        assert meta["ownerReferences"] == json.loads(wire_meta["ownerReferences"])
    if "data" in wire:
        assert doc["data"] == json.loads(wire["data"])


def test_json_format_is_a_v1_list_with_metadata(
    standard: tuple[Path, Simulator], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--format json writes a v1 List whose items match the YAML documents and whose metadata says what it covers."""
    journal, sim = standard
    cluster = sim.cluster_ids[0]
    compact_ok(capsys, journal, "--cluster", cluster, "--out", tmp_path / "s.yaml")
    compact_ok(
        capsys, journal, "--cluster", cluster, "--format", "json", "--out", tmp_path / "s.json"
    )
    listing = json.loads((tmp_path / "s.json").read_text())
    assert (listing["apiVersion"], listing["kind"]) == ("v1", "List")
    assert listing["items"] == documents((tmp_path / "s.yaml").read_text())
    annotations = listing["metadata"]["annotations"]
    assert annotations["meshery.io/snapshot-clusters"] == cluster
    assert annotations["meshery.io/snapshot-first-seq"] == str(message_seq(0))
    assert annotations["meshery.io/snapshot-last-seq"] == str(message_seq(EVENTS - 1))
    assert annotations["meshery.io/snapshot-objects"] == str(len(listing["items"]))
    assert "meshery.io/snapshot-created" in annotations
    kinds = dict(pair.split("=") for pair in annotations["meshery.io/snapshot-kinds"].split(","))
    assert sum(map(int, kinds.values())) == len(listing["items"])


def test_meshsync_format_writes_meshsyncs_file_pair(
    standard: tuple[Path, Simulator], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--format meshsync writes the dated snapshot and its -extended file, keys sorted, `---` after each document."""
    journal, sim = standard
    summary = compact_ok(capsys, journal, "--format", "meshsync", "--out", tmp_path)
    day = datetime.now(UTC).strftime("%Y%m%d")
    main_file = tmp_path / f"meshery-cluster-snapshot-{day}-00.yaml"
    extended = tmp_path / f"meshery-cluster-snapshot-{day}-00-extended.yaml"
    assert sorted(tmp_path.iterdir()) == sorted([main_file, extended])
    live = sim.live_objects()
    for path in (main_file, extended):
        text = path.read_text()
        assert text.endswith("---\n")
        parts = text.split("---\n")
        assert parts[-1] == ""
        docs = [yaml.load(part, Loader=SAFE_LOADER) for part in parts[:-1]]
        assert all(is_sorted(doc) for doc in docs)
        if path == main_file:
            assert {(d["cluster_id"], d["metadata"]["uid"]): d for d in docs} == live
        else:  # every object event, DELETED and dump items included
            events = int(re.search(r"\((\d+) object events\)", summary[0]).group(1))  # type: ignore[union-attr]
            assert len(docs) == events
    compact_ok(capsys, journal, "--format", "meshsync", "--out", tmp_path)
    assert (tmp_path / f"meshery-cluster-snapshot-{day}-01.yaml").exists()
    assert (tmp_path / f"meshery-cluster-snapshot-{day}-01-extended.yaml").exists()


def test_meshsync_format_decodes_each_message_once(
    standard: tuple[Path, Simulator],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The snapshot and its -extended file come from one decoding of each recorded message."""
    from recorder.compact import snapshot, state

    journal, _sim = standard
    calls = 0
    real = state.decode

    def counting(payload: bytes, subject: str = CORE_SUBJECT) -> Any:
        nonlocal calls
        calls += 1
        return real(payload, subject)

    monkeypatch.setattr(state, "decode", counting)
    monkeypatch.setattr(snapshot, "decode", counting)
    summary = compact_ok(capsys, journal, "--format", "meshsync", "--out", tmp_path)
    messages = int(re.search(r"read (\d+) messages", summary[0]).group(1))  # type: ignore[union-attr]
    assert calls == messages


def is_sorted(value: Any) -> bool:
    if isinstance(value, dict):
        return list(value) == sorted(value) and all(map(is_sorted, value.values()))
    if isinstance(value, list):
        return all(map(is_sorted, value))
    return True


def test_out_dash_streams_the_same_snapshot_to_stdout(
    standard: tuple[Path, Simulator], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--out - prints the same bytes the file gets, the summary stays on stderr."""
    journal, sim = standard
    cluster = sim.cluster_ids[1]
    for fmt, name in (("yaml", "s.yaml"), ("json", "s.json")):
        compact_ok(capsys, journal, "--cluster", cluster, "--format", fmt, "--out", tmp_path / name)
        code, out, err = run_cli(
            capsys, journal, "--cluster", cluster, "--format", fmt, "--out", "-"
        )
        assert code == 0, err
        assert without_created(out) == without_created((tmp_path / name).read_bytes())
        assert not any(line.startswith("wrote") for line in human_lines(err))


def test_cluster_kind_and_namespace_filters(
    standard: tuple[Path, Simulator], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--cluster picks one cluster into one file; --kind (any case, repeatable) and --namespace filter objects."""
    journal, sim = standard
    cluster = sim.cluster_ids[0]
    out = tmp_path / "one.yaml"
    compact_ok(
        capsys, journal, "--cluster", cluster, "--kind", "pod", "--kind", "Service",
        "--namespace", "team-001", "--out", out,
    )  # fmt: skip
    assert [path.name for path in tmp_path.iterdir()] == ["one.yaml"]
    expected = {
        key: obj["metadata"]["resourceVersion"]
        for key, obj in sim.live_objects().items()
        if key[0] == cluster
        and obj["kind"] in ("Pod", "Service")
        and obj["metadata"]["namespace"] == "team-001"
    }
    docs = documents(out.read_text())
    assert expected and state_of(docs) == expected
    assert f"# clusters: {cluster}" in out.read_text()


# -- the state at a chosen moment -------------------------------------------------------------


@pytest.mark.parametrize("cut", [700, 1901])
def test_until_seq_and_until_time_give_the_state_at_that_point(
    standard: tuple[Path, Simulator], tmp_path: Path, capsys: pytest.CaptureFixture[str], cut: int
) -> None:
    """--until SEQ and --until TIME equal compacting a journal that ends at that message, and the simulator's state then."""
    journal, _ = standard
    sim, messages = simulate(cut)
    truncated = tmp_path / "truncated"
    write_journal(truncated, messages)
    compact_ok(capsys, truncated, "--out", tmp_path / "t.yaml")
    seq = message_seq(cut - 1)
    compact_ok(capsys, journal, "--until", str(seq), "--out", tmp_path / "seq.yaml")
    until = format_time(messages[-1].time_ns)
    compact_ok(capsys, journal, "--until", until, "--out", tmp_path / "time.yaml")
    for cluster in sim.cluster_ids:
        expected = (tmp_path / f"t.{cluster}.yaml").read_text()
        assert f"# last-seq: {seq}\n" in expected
        assert state_of(documents(expected)) == {
            key: rv for key, rv in sim.truth().items() if key[0] == cluster
        }
        for name in ("seq", "time"):
            got = (tmp_path / f"{name}.{cluster}.yaml").read_text()
            assert body(got) == body(expected)
            assert f"# last-seq: {seq}\n" in got


def test_two_compactions_of_the_same_state_are_byte_identical(
    standard: tuple[Path, Simulator], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only the creation time differs between two snapshots of the same journal."""
    journal, sim = standard
    for fmt in ("yaml", "json"):
        first, second = tmp_path / f"a.{fmt}", tmp_path / f"b.{fmt}"
        compact_ok(capsys, journal, "--format", fmt, "--out", first)
        compact_ok(capsys, journal, "--format", fmt, "--out", second)
        for cluster in sim.cluster_ids:
            a = (tmp_path / f"a.{cluster}.{fmt}").read_bytes()
            b = (tmp_path / f"b.{cluster}.{fmt}").read_bytes()
            assert without_created(a) == without_created(b)
            assert len(a.splitlines()) == len(b.splitlines())


# -- checkpoints and pruning -------------------------------------------------------------------


def split_run(tmp_path: Path, cut: int = 1800) -> tuple[Path, list[SimMessage], list[SimMessage]]:
    """A journal of the first `cut` messages, and the rest of the stream for a second recorder run."""
    _, messages = simulate(EVENTS)
    directory = tmp_path / "journal"
    write_journal(directory, messages[:cut])
    return directory, messages[:cut], messages[cut:]


def test_checkpoint_twice_with_records_in_between_equals_a_full_compaction(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The second --checkpoint run reads only newer records and yields the full compaction's bytes."""
    directory, _, rest = split_run(tmp_path)
    first = compact_ok(capsys, directory, "--checkpoint", "--out", tmp_path / "c1.yaml")
    assert any(line.startswith(f"checkpoint {directory / 'checkpoint.compact'}") for line in first)
    write_journal(directory, rest)  # a restarted recorder: new segments after the old ones
    second = compact_ok(capsys, directory, "--checkpoint", "--out", tmp_path / "c2.yaml")
    assert second[0].endswith(f", resuming after seq {message_seq(1799)}")
    compact_ok(capsys, directory, "--out", tmp_path / "full.yaml")
    for cluster in Simulator(SEED, **SIM_OPTIONS).cluster_ids:
        got = (tmp_path / f"c2.{cluster}.yaml").read_bytes()
        assert without_created(got) == without_created(
            (tmp_path / f"full.{cluster}.yaml").read_bytes()
        )


def test_checkpoint_rerun_says_what_this_run_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --checkpoint run with nothing new reads 0 messages, and says the state covers them all."""
    directory, messages, _ = split_run(tmp_path)
    first = compact_ok(capsys, directory, "--checkpoint", "--out", tmp_path / "c1.yaml")
    assert first[0].startswith(f"read {len(messages)} messages")
    again = compact_ok(capsys, directory, "--checkpoint", "--out", tmp_path / "c2.yaml")
    last = message_seq(len(messages) - 1)
    assert again[0] == f"read 0 messages (0 object events), resuming after seq {last}"
    assert again[1] == f"state: {len(messages)} messages read in all, up to seq {last}"


def test_prune_deletes_covered_segments_and_loses_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--prune deletes sealed covered segments but the newest; later compactions still give the full state."""
    directory, _, rest = split_run(tmp_path)
    reference = tmp_path / "reference"
    shutil.copytree(directory, reference)
    before = [segment.name for segment in list_segments(directory)]
    assert len(before) == 4
    summary = compact_ok(capsys, directory, "--checkpoint", "--prune", "--out", tmp_path / "p.yaml")
    assert [line for line in summary if line.startswith("pruned")] == [
        f"pruned {name}" for name in before[:-1]
    ]
    assert [segment.name for segment in list_segments(directory)] == before[-1:]

    def assert_same_as_reference(*flags: str) -> None:
        compact_ok(capsys, directory, *flags, "--format", "json", "--out", tmp_path / "p.json")
        compact_ok(capsys, reference, "--format", "json", "--out", tmp_path / "r.json")
        for cluster in Simulator(SEED, **SIM_OPTIONS).cluster_ids:
            pruned = json.loads((tmp_path / f"p.{cluster}.json").read_bytes())
            full = json.loads((tmp_path / f"r.{cluster}.json").read_bytes())
            assert pruned["items"] == full["items"]
            assert pruned["items"]
            for field in ("first-seq", "last-seq", "objects", "kinds"):
                key = f"meshery.io/snapshot-{field}"
                assert (
                    pruned["metadata"]["annotations"][key] == full["metadata"]["annotations"][key]
                )

    assert_same_as_reference()
    assert_same_as_reference("--checkpoint")
    for until in (str(message_seq(100)), format_time(rest[0].time_ns - 10**9)):
        code, _, err = run_cli(capsys, directory, "--until", until, "--out", tmp_path / "u.yaml")
        assert code == 2  # the pruned history is gone: no silent later state
        assert human_lines(err)[0].startswith("Error: the checkpoint already covers up to")
    write_journal(directory, rest)
    write_journal(reference, rest)
    assert_same_as_reference()  # the checkpoint is used although not asked for: segments are gone
    summary = compact_ok(capsys, directory, "--checkpoint", "--prune", "--out", tmp_path / "p.yaml")
    remaining = list_segments(directory)
    assert len(remaining) == 1  # the newest survives even though the checkpoint covers it
    footer = summarize(remaining[0]).footer
    assert footer is not None and footer.last_seq >= message_seq(EVENTS - 1)
    assert_same_as_reference("--checkpoint")


# -- bad input ---------------------------------------------------------------------------------


def test_undecodable_payloads_are_reported_and_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Garbage, foreign JSON and objects without uid are counted and listed by seq and subject; the rest compacts."""
    sim, messages = simulate(1200)
    good = messages[300]
    assert b'"uid":"' in good.payload
    without_uid = re.sub(rb'"uid":"[^"]*",', b"", good.payload, count=1)
    bad = {
        100: (b"\xff\xfe not json at all", "not JSON"),
        200: (b"[1, 2, 3]", "not a JSON object"),
        300: (without_uid, "object without metadata.uid"),
        400: (b'{"hello": "world"}', "neither a MeshSync envelope"),
    }
    journal: list[SimMessage] = []
    seqs = {}
    for index, message in enumerate(messages):
        if index in bad:
            seqs[index] = message_seq(len(journal))
            journal.append(SimMessage(message.time_ns - 1, CORE_SUBJECT, bad[index][0]))
        journal.append(message)
    directory = tmp_path / "journal"
    write_journal(directory, journal)
    summary = compact_ok(capsys, directory, "--out", tmp_path / "s.yaml")
    assert "skipped: 4 undecodable, 0 without uid" in summary
    for index, (_, reason) in bad.items():
        assert any(
            line.startswith(f"  seq {seqs[index]} on {CORE_SUBJECT}: {reason}") for line in summary
        ), (reason, summary)
    got: dict[Key, str] = {}
    for cluster in sim.cluster_ids:
        got |= state_of(documents((tmp_path / f"s.{cluster}.yaml").read_text()))
    assert got == sim.truth()


def test_prune_ghosts_drops_objects_missing_from_a_complete_relist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Silently deleted objects stay without --prune-ghosts and are dropped after a re-list with it."""
    sim, messages = simulate(4000, ghost_rate=0.3)
    directory = tmp_path / "journal"
    write_journal(directory, messages)
    ghosts, unpruned = sim.ghosts, sim.unpruned_ghosts()
    assert ghosts - unpruned
    truth = set(sim.truth())
    for flags, expected in (((), truth | ghosts), (("--prune-ghosts",), truth | unpruned)):
        summary = compact_ok(
            capsys, directory, *flags, "--format", "json", "--out", tmp_path / "s.json"
        )
        got: set[Key] = set()
        for cluster in sim.cluster_ids:
            items = json.loads((tmp_path / f"s.{cluster}.json").read_bytes())["items"]
            got |= {(cluster, item["metadata"]["uid"]) for item in items}
        assert got == expected
        pruned = len(ghosts - unpruned) if flags else 0
        assert f"{pruned} ghosts pruned" in summary[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prune"], "Error: --prune needs --checkpoint"),
        (["--until", "yesterday"], "Error: --until: not a time: 'yesterday'"),
        (["--until", "2025-13-45T99:00:00Z"], "Error: --until: not a time"),
        (["--format", "xml"], "Error: --format: must be one of yaml, json, meshsync, got 'xml'"),
        (["--format", "meshsync"], "Error: --format meshsync writes two files"),
    ],
)
def test_bad_options_exit_2_with_one_line(
    standard: tuple[Path, Simulator],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    """A bad option value exits 2 with one `Error:` line naming it, and writes nothing."""
    journal, _ = standard
    before = sorted(journal.iterdir())
    out_path = "-" if "meshsync" in args else tmp_path / "s.yaml"
    code, out, err = run_cli(capsys, journal, *args, "--out", out_path)
    assert code == 2
    assert out == ""
    lines = human_lines(err)
    assert len(lines) == 1, lines
    assert lines[0].startswith(message)
    assert list(tmp_path.iterdir()) == []
    assert sorted(journal.iterdir()) == before


def test_output_into_a_missing_directory_is_refused_before_reading(
    standard: tuple[Path, Simulator], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--out inside a directory that does not exist exits 2 with one line, for files and meshsync."""
    journal, _ = standard
    for args in (
        ["--out", tmp_path / "nope" / "s.yaml"],
        ["--format", "meshsync", "--out", tmp_path / "nope" / "snapshots"],
    ):
        code, _, err = run_cli(capsys, journal, *args)
        assert code == 2
        assert human_lines(err) == [f"Error: --out: {tmp_path / 'nope'} is not a directory"]
    assert not (tmp_path / "nope").exists()


def test_meshsync_output_directory_is_created_like_an_output_file(
    standard: tuple[Path, Simulator], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--format meshsync --out D` makes D when its parent exists, as --out F makes the file F."""
    journal, _ = standard
    summary = compact_ok(capsys, journal, "--format", "meshsync", "--out", tmp_path / "snaps")
    written = sorted(path.name for path in (tmp_path / "snaps").iterdir())
    assert len(written) == 2 and written[0].endswith("-extended.yaml")
    assert [line for line in summary if line.startswith("wrote ")] == [
        f"wrote {tmp_path / 'snaps' / name}" for name in reversed(written)
    ]


def test_meshsync_output_that_is_a_file_is_refused(
    standard: tuple[Path, Simulator], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--format meshsync --out F` where F is a file exits 2 naming it, and leaves F alone."""
    journal, _ = standard
    target = tmp_path / "file"
    target.write_text("mine\n")
    code, _, err = run_cli(capsys, journal, "--format", "meshsync", "--out", target)
    assert code == 2
    assert human_lines(err) == [
        f"Error: --out: {target} is not a directory (meshsync writes two files into one)"
    ]
    assert target.read_text() == "mine\n"


def test_console_script_compacts_to_stdout(standard: tuple[Path, Simulator]) -> None:
    """The installed `recorder` script streams a JSON List to stdout, the summary as a log record."""
    journal, sim = standard
    script = Path(sys.executable).with_name("recorder")
    result = subprocess.run(
        [
            str(script),
            "--log-format",
            "json",
            "compact",
            str(journal),
            "--format",
            "json",
            "--out",
            "-",
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    listing = orjson.loads(result.stdout)
    assert listing["kind"] == "List"
    assert {
        (item["metadata"]["annotations"][CLUSTER_ANNOTATION], item["metadata"]["uid"])
        for item in listing["items"]
    } == set(sim.truth())
    summary = summary_event(result.stderr.decode(), "compact_summary")
    assert summary["read"]["messages"] == EVENTS
