"""`recorder diff`: the difference of two `compact --until` snapshots, computed in one pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from recorder.journal.reader import JournalReader
from recorder.timeparse import format_time

from ._helpers import Recorded, cli

State = dict[tuple[str, str], dict[str, Any]]


def snapshot(capsys: pytest.CaptureFixture[str], journal: Path, until: str) -> State:
    """(cluster, uid) -> manifest of `recorder compact --until` as a JSON List."""
    code, out, err = cli(
        capsys, "compact", journal, "--until", until, "--format", "json", "--out", "-"
    )
    assert code == 0, err
    items = orjson.loads(out)["items"]
    return {
        (item["metadata"]["annotations"]["meshery.io/cluster-id"], item["metadata"]["uid"]): item
        for item in items
    }


def expected(before: State, after: State) -> dict[str, set[tuple[str, str]]]:
    return {
        "added": set(after) - set(before),
        "deleted": set(before) - set(after),
        "changed": {
            key
            for key in set(before) & set(after)
            if before[key]["metadata"]["resourceVersion"]
            != after[key]["metadata"]["resourceVersion"]
        },
    }


def run_diff(
    capsys: pytest.CaptureFixture[str], journal: Path, start: str, end: str
) -> tuple[int, dict[str, Any]]:
    code, out, err = cli(capsys, "diff", journal, "--from", start, "--to", end, "-o", "json")
    assert code in (0, 1), err
    return code, orjson.loads(out)


def keys(entries: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(entry["cluster"], entry["uid"]) for entry in entries}


@pytest.mark.parametrize("by", ["seq", "time"])
def test_diff_equals_the_difference_of_two_compact_snapshots(
    recorded: Recorded, capsys: pytest.CaptureFixture[str], by: str
) -> None:
    """Added, deleted and changed objects are exactly what two `compact --until` runs disagree on."""
    records = [record for _position, record in JournalReader(recorded.directory)]
    first, second = records[len(records) // 3], records[2 * len(records) // 3]
    points = (
        (str(first.seq), str(second.seq))
        if by == "seq"
        else (format_time(first.time_ns), format_time(second.time_ns))
    )
    before = snapshot(capsys, recorded.directory, points[0])
    after = snapshot(capsys, recorded.directory, points[1])
    want = expected(before, after)
    assert want["added"] and want["deleted"] and want["changed"]
    code, got = run_diff(capsys, recorded.directory, *points)
    assert code == 1
    assert {name: keys(got[name]) for name in ("added", "deleted", "changed")} == want
    for entry in got["changed"]:
        key = (entry["cluster"], entry["uid"])
        assert entry["from_resource_version"] == before[key]["metadata"]["resourceVersion"]
        assert entry["resource_version"] == after[key]["metadata"]["resourceVersion"]
        for name in ("kind", "namespace", "name"):
            assert entry[name] == (
                after[key][name] if name == "kind" else after[key]["metadata"].get(name, "")
            )
    assert got["objects_before"] == len(before) and got["objects_after"] == len(after)


def test_the_same_point_twice_is_no_change_and_exit_0(
    recorded: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing changes between a point and itself: exit 0 and empty lists, like diff(1)."""
    code, got = run_diff(capsys, recorded.directory, "700", "700")
    assert code == 0
    assert got["added"] == got["deleted"] == got["changed"] == []


def test_text_lists_field_changes_and_a_summary(
    recorded: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    """Text output marks added (+), deleted (-) and changed (~) objects, then counts them."""
    code, out, err = cli(
        capsys, "diff", recorded.directory, "--from", "300", "--to", "1200", "--kind", "Deployment"
    )
    assert code == 1, err
    lines = out.splitlines()
    assert lines[-1].endswith("after)")
    assert all(line[:2] in ("+ ", "- ", "~ ", "  ") for line in lines[:-1])
    assert all(" Deployment " in line for line in lines[:-1] if not line.startswith("  "))


def test_a_bad_point_is_one_error_line_exit_2(
    recorded: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    """A point that is neither a seq nor a time names the option and exits 2."""
    code, _out, err = cli(capsys, "diff", recorded.directory, "--from", "yesterday", "--to", "5")
    assert code == 2
    assert err.splitlines()[0].startswith("Error: --from:")
