"""The investigation commands over every real MeshSync sample, recorded by a real recorder."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
import pytest
from broker import NatsServer
from meshsync_samples import sample, sample_names
from run_helpers import Outgoing, Recorders, publish

from recorder.meshsync import (
    CORE_SUBJECT,
    REQUEST_SUBJECT,
    Boundary,
    DumpBatch,
    ObjectEvent,
    decode,
    events_of,
)

from ._helpers import cli
from .conftest import SUBJECTS


def subject_of(name: str) -> str:
    return REQUEST_SUBJECT if name.startswith("request-") else CORE_SUBJECT


@pytest.fixture
def samples_journal(tmp_path: Path, recorders: Recorders) -> tuple[Path, list[Outgoing]]:
    """Every sample published once, journaled by a real recorder."""
    sent = [Outgoing(subject_of(name), sample(name)) for name in sample_names()]
    with NatsServer() as server:
        recorder = recorders.start(tmp_path / "journal", server.url, subjects=SUBJECTS)
        recorder.wait_ready()
        publish(server.url, sent)
        recorder.wait_written(len(sent))
        assert recorder.stop() == 0, recorder.stderr()
    return tmp_path / "journal", sent


def test_stats_and_decoded_dump_agree_with_the_samples(
    samples_journal: tuple[Path, list[Outgoing]], capsys: pytest.CaptureFixture[str]
) -> None:
    """Counts per kind and the decoded events are what decoding each sample gives."""
    journal, sent = samples_journal
    events = [e for m in sent for e in events_of(decode(m.payload, m.subject))]
    code, out, err = cli(capsys, "stats", journal, "-o", "json")
    assert code == 0, err
    got = orjson.loads(out)
    assert got["messages"] == len(sent)
    assert got["kinds"] == dict(Counter(e.kind for e in events))
    assert len(got["relists"]) == sum(
        isinstance(decode(m.payload, m.subject), Boundary) for m in sent
    )
    code, out, err = cli(capsys, "dump", journal, "--decode")
    assert code == 0, err
    decoded = [orjson.loads(line) for line in out.splitlines()]
    assert [d["uid"] for d in decoded if "uid" in d] == [e.uid for e in events]
    # A message with object events gives one line per event; any other message, one line.
    per_message = [decode(m.payload, m.subject) for m in sent]
    assert len(decoded) == sum(
        len(events_of(d)) if isinstance(d, ObjectEvent | DumpBatch) else 1 for d in per_message
    )
