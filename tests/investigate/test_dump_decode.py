"""`recorder dump --decode` and `-o table`: decoded object events with the object filters."""

from __future__ import annotations

import orjson
import pytest

from ._helpers import Recorded, cli, published_events


def test_decode_prints_every_published_object_event_in_order(
    recorded: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    """One JSON line per object event, in publishing order, with its decoded identity."""
    code, out, err = cli(capsys, "dump", recorded.directory, "--decode")
    assert code == 0, err
    lines = [orjson.loads(line) for line in out.splitlines()]
    events = [line for line in lines if "event_type" in line]
    truth = published_events(recorded.messages)
    assert [(e["uid"], e["event_type"], e["resource_version"]) for e in events] == [
        (t.uid, t.type, t.resource_version) for t in truth
    ]
    assert all(isinstance(e["object"], dict) for e in events)
    relists = [line for line in lines if "relist" in line]
    assert relists, "the simulator's re-list requests are shown as such"


def test_object_filters_keep_only_matching_events(
    recorded: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    """--kind, --namespace and --event-type narrow the decoded events to exactly what matches."""
    truth = [
        t
        for t in published_events(recorded.messages)
        if t.kind == "Deployment" and t.type == "MODIFIED"
    ]
    namespace = truth[0].namespace
    code, out, err = cli(
        capsys,
        "dump",
        recorded.directory,
        "--kind",
        "deployment",
        "--event-type",
        "modified",
        "--namespace",
        namespace,
    )
    assert code == 0, err
    got = [orjson.loads(line) for line in out.splitlines()]
    want = [t for t in truth if t.namespace == namespace]
    assert want
    assert [(e["uid"], e["resource_version"]) for e in got] == [
        (t.uid, t.resource_version) for t in want
    ]


def test_table_output_has_one_row_per_event_under_a_header(
    recorded: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    """-o table aligns time, cluster, event, kind, namespace/name and resourceVersion."""
    cluster = recorded.sim.cluster_ids[0]
    code, out, err = cli(
        capsys, "dump", recorded.directory, "-o", "table", "--cluster", cluster[:8]
    )
    assert code == 0, err
    header, rule, *rows = out.splitlines()
    assert header.split() == [
        "time",
        "cluster",
        "event",
        "kind",
        "namespace/name",
        "resourceVersion",
    ]
    assert set(rule) <= {"-", " "}
    truth = [t for t in published_events(recorded.messages) if t.cluster_id == cluster]
    assert len(rows) == len(truth)
    assert all(row.split()[1] == cluster[:8] for row in rows)


def test_a_bad_event_type_is_one_error_line(
    recorded: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown --event-type exits 2 naming the option, before reading anything."""
    code, out, err = cli(capsys, "dump", recorded.directory, "--event-type", "CHANGED")
    assert code == 2
    assert out == ""
    assert err.splitlines()[0].startswith("Error: --event-type:")
