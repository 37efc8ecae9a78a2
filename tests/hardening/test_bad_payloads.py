"""Bad payloads end to end: a real broker and recorder journal them byte for byte, compact reports them.

Empty, exactly 1 MiB (the broker's default max_payload), binary, invalid UTF-8, invalid JSON,
JSON of the wrong shape, 10,000 labels, and nesting from 300 levels (past what orjson writes) to
10,000 (past what it reads): the recorder does not look inside payloads, and `recorder compact`
counts what it cannot use and names each by seq and subject instead of crashing.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import orjson
from broker import Broker
from cli_streams import summary_event
from run_helpers import (
    Outgoing,
    Recorders,
    messages_of,
    publish,
    read_records,
    run_cli,
)

from recorder.compact.state import compact
from recorder.meshsync import CORE_SUBJECT, STORE_SUBJECT

MiB = 1024 * 1024


def _event(uid: str, **extra: object) -> dict[str, object]:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"uid": uid, "name": uid}, **extra}
    return {"ObjectType": "meshsync-data", "EventType": "ADDED", "Request": None, "Object": obj}


def _exactly_one_mib() -> bytes:
    """A valid ADDED event padded with an annotation to exactly 1 MiB."""
    event = _event("big", data='{"blob":"@"}')
    skeleton = orjson.dumps(event)
    return skeleton.replace(b"@", b"x" * (MiB - len(skeleton) + 1))


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def bad_payloads() -> list[tuple[str, bytes, bool]]:
    """(name, payload, compaction cannot use it) for every kind of bad input the issue lists."""
    rng = random.Random(11)
    labels = [{"key": f"app.kubernetes.io/l{i}", "value": f"v{i}"} for i in range(10_000)]
    huge_labels = _event("labels")
    huge_labels["Object"]["metadata"]["labels"] = labels  # type: ignore[index]
    deep_spec = json.dumps(_event("deep-spec", spec={"attribute": _nested(300)})).encode()
    deep_field = json.dumps(_event("deep-field")).replace(
        '"deep-field"}', '"deep-field"}, "x": ' + _nested(1000), 1
    )
    return [
        ("empty", b"", True),
        ("one-mib", _exactly_one_mib(), False),
        ("binary", rng.randbytes(65_536), True),
        ("nul", b"\x00", True),
        ("invalid-utf8", b'{"ObjectType":"\xff\xfe\x80"}', True),
        ("sync-marker", b"\xff\xfeMR{}", True),
        (
            "invalid-json",
            b'{"ObjectType": "meshsync-data", "EventType": "ADDED", "Object": {',
            True,
        ),
        ("json-array", b"[1, 2, 3]", True),
        ("json-number", b"42", True),
        ("json-string", b'"ADDED"', True),
        ("json-null", b"null", True),
        (
            "no-metadata",
            orjson.dumps(
                {"ObjectType": "meshsync-data", "EventType": "ADDED", "Object": {"kind": "Pod"}}
            ),
            True,
        ),
        (
            "object-is-text",
            orjson.dumps({"ObjectType": "meshsync-data", "EventType": "ADDED", "Object": "x"}),
            True,
        ),
        (
            "event-type-number",
            orjson.dumps({"ObjectType": "meshsync-data", "EventType": 7, "Object": {}}),
            True,
        ),
        ("foreign-object", orjson.dumps({"hello": "world"}), True),
        ("huge-labels", orjson.dumps(huge_labels), False),
        ("deep-10k", _nested(10_000).encode(), True),
        ("deep-1025", _nested(1025).encode(), True),
        ("deep-spec-300", deep_spec, False),
        ("deep-field-1000", deep_field.encode(), False),
        ("fine", orjson.dumps(_event("fine")), False),
    ]


def test_bad_payloads_are_recorded_byte_for_byte_and_compaction_reports_them(
    nats_server: Broker, recorders: Recorders, tmp_path: Path
) -> None:
    """Every bad payload is journaled unchanged; compact counts and names the unusable ones and writes every format."""
    journal = tmp_path / "journal"
    recorder = recorders.start(journal, nats_server.url, subjects=[CORE_SUBJECT, STORE_SUBJECT])
    recorder.wait_ready()
    cases = bad_payloads()
    dump_with_deep_item = (
        '{"ObjectType":"","EventType":"","Object":[{"apiVersion":"v1","kind":"X","metadata":'
        '{"uid":"deep-item"},"x":'
        + _nested(300)
        + '},{"apiVersion":"v1","kind":"X","metadata":{"uid":"ok-item"}}]}'
    ).encode()
    traffic = [Outgoing(CORE_SUBJECT, payload) for _, payload, _ in cases]
    traffic.append(Outgoing(STORE_SUBJECT, dump_with_deep_item))
    assert len(traffic[1].payload) == MiB
    publish(nats_server.url, traffic)
    recorder.wait_written(len(traffic), timeout=30)
    assert recorder.stop() == 0

    messages = messages_of(read_records(journal))
    core = [m for m in messages if m.subject == CORE_SUBJECT]
    assert [m.payload for m in core] == [payload for _, payload, _ in cases]  # byte for byte
    assert [m.payload for m in messages if m.subject == STORE_SUBJECT] == [dump_with_deep_item]

    # What compaction should report, from the same records in-process.
    _, expected = compact(messages)
    unusable = [m.seq for m, (_, _, bad) in zip(core, cases, strict=True) if bad]
    assert expected.undecodable == len(unusable) + 1  # + the dump item too deep to re-encode
    assert {issue.seq for issue in expected.issues} >= set(unusable)

    for fmt, out in (
        ("yaml", tmp_path / "s.yaml"),
        ("json", tmp_path / "s.json"),
        ("meshsync", tmp_path),
    ):
        result = run_cli("compact", str(journal), "--format", fmt, "--out", str(out), timeout=120)
        stderr = result.stderr.decode()
        assert result.returncode == 0, stderr[-3000:]
        assert "Traceback" not in stderr
        summary = summary_event(stderr, "compact_summary")  # RECORDER asks for JSON logs
        assert summary["skipped"]["undecodable"] == expected.undecodable, stderr[-3000:]
        issues = summary["issues"]
        reported = {issue["seq"] for issue in issues if issue["subject"] == CORE_SUBJECT}
        assert set(unusable) <= reported, stderr[-3000:]
        assert any(
            issue["subject"] == STORE_SUBJECT
            and issue["reason"].startswith("dump item 'deep-item' cannot be kept")
            for issue in issues
        )
    snapshot = orjson.loads((tmp_path / "s.json").read_bytes())
    uids = {item["metadata"]["uid"] for item in snapshot["items"]}
    # Objects the JSON encoder cannot write (the 300-deep spec) are left out and logged.
    assert {"big", "labels", "fine", "ok-item", "deep-field"} <= uids
    big = next(item for item in snapshot["items"] if item["metadata"]["uid"] == "big")
    assert len(big["data"]["blob"]) > MiB - 200
    labels = next(item for item in snapshot["items"] if item["metadata"]["uid"] == "labels")
    assert len(labels["metadata"]["labels"]) == 10_000
    yaml_text = (tmp_path / "s.yaml").read_text()
    assert "uid: deep-spec" in yaml_text and "uid: labels" in yaml_text
