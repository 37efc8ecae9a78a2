"""`recorder compact A B`: several journals merged by (cluster, uid), the newest event winning."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from meshsync_samples import sample
from structlog.testing import capture_logs

from recorder.compact.merge import run_merged_compaction
from recorder.compact.run import CompactRequest
from recorder.journal.record import Incoming
from recorder.journal.writer import JournalWriter
from recorder.meshsync import CORE_SUBJECT

T0 = 1_700_000_000_000_000_000


def _event(name: str, resource_version: str) -> bytes:
    message = json.loads(sample(name))
    message["Object"]["metadata"]["resourceVersion"] = resource_version
    return json.dumps(message).encode()


def _journal(directory: Path, events: list[tuple[int, bytes]]) -> Path:
    writer = JournalWriter(directory)
    writer.open()
    for offset, payload in events:
        writer.append_messages([Incoming(T0 + offset, CORE_SUBJECT, "", None, payload, None)])
    writer.close()
    return directory


def _compact(out: Path, *sources: Path) -> dict[str, dict[str, object]]:
    argv = [sys.executable, "-m", "recorder", "compact", *map(str, sources), "--format", "json"]
    result = subprocess.run([*argv, "--out", str(out)], capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.decode()
    items = json.loads(out.read_text())["items"]
    return {item["metadata"]["uid"]: item for item in items}


def test_the_newest_event_wins_whichever_journal_holds_it(tmp_path: Path) -> None:
    """A pod seen by two recorders keeps the later state; objects only one saw are kept too."""
    first = _journal(
        tmp_path / "a",
        [(1, _event("core-added-pod", "100")), (3, _event("core-added-service", "7"))],
    )
    second = _journal(tmp_path / "b", [(2, _event("core-added-pod", "200"))])
    merged = _compact(tmp_path / "ab.json", first, second)
    again = _compact(tmp_path / "ba.json", second, first)
    assert merged == again  # the order of the arguments does not matter
    kinds = {item["kind"]: item for item in merged.values()}
    assert set(kinds) == {"Pod", "Service"}
    assert kinds["Pod"]["metadata"]["resourceVersion"] == "200"


def test_a_delete_seen_later_by_another_journal_removes_the_object(tmp_path: Path) -> None:
    first = _journal(tmp_path / "a", [(1, _event("core-added-pod", "100"))])
    second = _journal(tmp_path / "b", [(5, _event("core-deleted-pod", "300"))])
    assert _compact(tmp_path / "out.json", first, second) == {}


def test_a_torn_tail_in_one_journal_is_logged_not_skipped_silently(
    tmp_path: Path,
) -> None:
    """A merge skips a crashed recorder's torn last record as compact does: never silently."""
    first = _journal(tmp_path / "a", [(1, _event("core-added-service", "7"))])
    second = tmp_path / "b"
    writer = JournalWriter(second)
    writer.open()
    for offset, resource_version in ((2, "100"), (3, "200")):
        payload = _event("core-added-pod", resource_version)
        writer.append_messages([Incoming(T0 + offset, CORE_SUBJECT, "", None, payload, None)])
    active = writer.active_segment
    assert active is not None
    writer.abandon()  # the recorder died: the segment is left unsealed
    active.path.write_bytes(active.path.read_bytes()[:-3])  # its last record cut short
    request = CompactRequest(first, format="json", out=tmp_path / "out.json")
    with capture_logs() as logs:
        run_merged_compaction(request, [first, second])
    damages = [e for e in logs if e["event"] == "journal_damage_skipped"]
    assert [(e["segment"], e["torn"]) for e in damages] == [(active.path.name, True)]
    items = json.loads((tmp_path / "out.json").read_text())["items"]
    pod = next(item for item in items if item["kind"] == "Pod")
    assert pod["metadata"]["resourceVersion"] == "100"  # the record before the torn one
