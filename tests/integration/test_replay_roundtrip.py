"""`recorder replay` end to end: recorded traffic and snapshots go back on the wire unchanged."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from broker import Broker
from meshsync_samples import sample
from run_helpers import (
    Outgoing,
    Recorders,
    messages_of,
    publish,
    read_records,
)
from test_replay_support import build_journal, replay_cli, sent_count, tree_state

from recorder.compact.run import CompactRequest, run_compaction
from recorder.demo.simulator import Simulator
from recorder.meshsync import CORE_SUBJECT, REQUEST_SUBJECT
from recorder.natsclient import HeaderPairs


def meshsync_traffic(count: int) -> list[Outgoing]:
    """Simulated MeshSync churn with resync requests mixed in and headers on some messages.

    Some headers repeat a name, which NATS allows and nats-py's plain dict would collapse.
    """
    resync = sample("request-resync-discovery")
    out = []
    for index, (subject, payload) in enumerate(Simulator(11).stream(count)):
        headers: dict[str, str] | None = None
        if index % 7 == 0:
            headers = {"X-Trace": f"trace-{index}", "Content-Type": "json"}
        elif index % 13 == 0:
            headers = HeaderPairs([("X-Hop", "a"), ("X-Other", "b"), ("X-Hop", f"b{index}")])
        out.append(Outgoing(subject, payload, headers))
        if index % 50 == 25:
            out.append(Outgoing(REQUEST_SUBJECT, resync, {"X-Request": str(index)}))
    return out


def test_replay_into_a_remapped_subject_is_recorded_identically(
    nats_server: Broker, recorders: Recorders, tmp_path: Path
) -> None:
    """Traffic recorded by one recorder, replayed under `replay.*`, is journaled by a second one with the same payload bytes, headers and order."""
    original, copy = tmp_path / "original", tmp_path / "copy"
    first = recorders.start(original, nats_server.url, subjects=["meshery.meshsync.>"])
    first.wait_ready()
    traffic = meshsync_traffic(400)
    publish(nats_server.url, traffic)
    first.wait_written(len(traffic))
    assert first.stop() == 0

    second = recorders.start(copy, nats_server.url, subjects=["replay.>"])
    second.wait_ready()
    before = tree_state(original)
    result = replay_cli(
        original,
        "--nats-url",
        nats_server.url,
        "--subject-map",
        "meshery.meshsync.*=replay.*",
        "--speed",
        "max",
    )
    assert result.returncode == 0, result.stderr
    assert sent_count(result.stderr) == len(traffic)
    second.wait_written(len(traffic))
    assert second.stop() == 0
    assert tree_state(original) == before

    recorded = messages_of(read_records(original))
    replayed = messages_of(read_records(copy))
    assert [m.payload for m in recorded] == [m.payload for m in traffic]
    assert [m.subject.replace("meshery.meshsync.", "replay.", 1) for m in recorded] == [
        m.subject for m in replayed
    ]
    assert [m.payload for m in replayed] == [m.payload for m in recorded]
    assert [m.headers for m in replayed] == [m.headers for m in recorded]
    assert sum(1 for m in replayed if m.headers) == sum(1 for m in traffic if m.headers)
    repeated = [m.headers for m in replayed if m.headers and m.headers[0][0] == "X-Hop"]
    assert repeated and all(len(headers) == 3 for headers in repeated)


def snapshot_documents(path: Path) -> list[object]:
    """The objects of a YAML snapshot (its comment header, with the creation time, left out)."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def header_facts(path: Path) -> dict[str, str]:
    """The snapshot header lines that describe the state rather than when or from where."""
    facts = dict(re.findall(r"(?m)^# ([a-z-]+): (.*)$", path.read_text()))
    return {key: facts[key] for key in ("clusters", "objects", "kinds")}


@pytest.mark.parametrize("fmt", ["yaml", "json", "meshsync"])
def test_snapshot_replay_is_compacted_back_into_the_same_snapshot(
    nats_server: Broker, recorders: Recorders, tmp_path: Path, fmt: str
) -> None:
    """A snapshot of K objects (in any format compact writes) replays as K ADDED messages that `compact` turns back into the same snapshot."""
    source = tmp_path / "source"
    build_journal(source, [(m.time_ns, m.subject, m.payload) for m in Simulator(4).events(800)])
    out = tmp_path / "meshsync" if fmt == "meshsync" else tmp_path / f"snapshot.{fmt}"
    if fmt == "meshsync":
        out.mkdir()
    expected = tmp_path / "expected.yaml"
    written = run_compaction(CompactRequest(source, format=fmt, out=out))  # type: ignore[arg-type]
    snapshot = written.outputs[0]  # MeshSync's main file; its -extended sibling is outputs[1]
    objects = run_compaction(CompactRequest(source, out=expected)).objects_written
    assert objects > 50

    journal = tmp_path / "seeded"
    recorder = recorders.start(journal, nats_server.url, subjects=[CORE_SUBJECT])
    recorder.wait_ready()
    before = snapshot.read_bytes()
    result = replay_cli("--snapshot", snapshot, "--nats-url", nats_server.url, "--speed", "max")
    assert result.returncode == 0, result.stderr
    assert sent_count(result.stderr) == objects
    recorder.wait_written(objects)
    assert recorder.stop() == 0
    assert snapshot.read_bytes() == before

    messages = messages_of(read_records(journal))
    assert len(messages) == objects
    assert all(
        m.payload.startswith(b'{"ObjectType":"meshsync-data","EventType":"ADDED"') for m in messages
    )
    rebuilt = tmp_path / "rebuilt.yaml"
    run_compaction(CompactRequest(journal, out=rebuilt))
    assert snapshot_documents(rebuilt) == snapshot_documents(expected)
    assert header_facts(rebuilt) == header_facts(expected)
