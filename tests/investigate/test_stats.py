"""`recorder stats`: counts equal what was published; gaps come from real disconnects and crashes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
import pytest
from broker import NatsServer
from polling import wait_until
from run_helpers import Outgoing, Recorders, markers_of, publish, read_records

from recorder.journal.options import WriterOptions
from recorder.journal.reader import iter_messages
from recorder.journal.record import Incoming, MarkerType
from recorder.journal.segment import list_segments
from recorder.journal.writer import JournalWriter
from recorder.meshsync import CORE_SUBJECT, Boundary, decode
from recorder.timeparse import format_time

from ._helpers import Recorded, cli, published_events
from .conftest import RECORDER_ENV, SUBJECTS


def stats_json(capsys: pytest.CaptureFixture[str], *args: object) -> dict:  # type: ignore[type-arg]
    code, out, err = cli(capsys, "stats", *args, "-o", "json")
    assert code == 0, err
    result: dict = orjson.loads(out)  # type: ignore[type-arg]
    return result


def test_counts_equal_what_was_published(
    recorded: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    """Messages per subject, events per cluster, kind and EventType, and re-lists match the sender."""
    got = stats_json(capsys, recorded.directory)
    messages = recorded.messages
    events = published_events(messages)
    assert got["messages"] == len(messages)
    assert got["subjects"] == dict(Counter(m.subject for m in messages))
    assert got["events"] == len(events)
    assert got["clusters"] == dict(Counter(e.cluster_id for e in events))
    assert got["kinds"] == dict(Counter(e.kind for e in events))
    assert got["event_types"] == dict(Counter(e.type for e in events))
    boundaries = [m for m in messages if isinstance(decode(m.payload, m.subject), Boundary)]
    assert len(got["relists"]) == len(boundaries) > 0
    assert got["gaps"] == []  # one clean run
    assert got["rate_per_minute"]["peak"] >= got["rate_per_minute"]["mean"] > 0
    assert got["covered_ns"] == got["last_ns"] - got["first_ns"] > 0


def test_text_output_names_each_section(
    recorded: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    """The text report covers time, counts, rates, each breakdown, re-lists and gaps."""
    code, out, err = cli(capsys, "stats", recorded.directory)
    assert code == 0, err
    for heading in ("time covered:", "rate per minute:", "subject", "kind", "re-lists:", "gaps: 0"):
        assert heading in out


def test_disconnect_crash_and_missing_segment_are_gaps(
    tmp_path: Path, recorders: Recorders, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broker restart, a recorder killed by SIGKILL and a deleted segment each show as a gap."""
    journal = tmp_path / "journal"
    pad = "x" * 500  # 150 kB a batch: each run of the recorder fills more than one segment
    batch = [
        Outgoing(CORE_SUBJECT, b'{"n": %d, "pad": "%s"}' % (i, pad.encode())) for i in range(300)
    ]
    with NatsServer() as server:
        first = recorders.start(journal, server.url, subjects=SUBJECTS, env=RECORDER_ENV)
        first.wait_ready()
        publish(server.url, batch)
        first.wait_written(300)
        server.restart()
        wait_until(
            lambda: markers_of(read_records(journal), MarkerType.RECONNECTED),
            30,
            "the recorder to reconnect",
        )
        publish(server.url, batch)
        first.wait_written(600)
        first.kill()
        second = recorders.start(journal, server.url, subjects=SUBJECTS, env=RECORDER_ENV)
        second.wait_ready()
        publish(server.url, batch)
        second.wait_written(300)
        assert second.stop() == 0, second.stderr()
    segments = list_segments(journal)
    assert len(segments) >= 3
    segments[1].path.unlink()
    got = stats_json(capsys, journal)
    kinds = [gap["kind"] for gap in got["gaps"]]
    assert kinds.count("disconnected") == 1
    assert kinds.count("unclean-stop") == 1
    assert kinds.count("missing-segments") == 1
    missing = next(gap for gap in got["gaps"] if gap["kind"] == "missing-segments")
    assert missing["count"] == 1 and missing["detail"] == f"segment {segments[1].number}"
    for gap in got["gaps"]:
        assert gap["start_ns"] is not None and gap["length_ns"] is not None
        assert gap["length_ns"] >= 0


def test_drops_are_gaps_with_their_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A DROPPED marker is a gap from the last record before it, carrying the dropped count."""
    writer = JournalWriter(tmp_path / "j", WriterOptions())
    writer.open()
    writer.append_messages([Incoming(0, CORE_SUBJECT, "", None, b"{}", None)])
    writer.append_marker(MarkerType.DROPPED, {"count": 7})
    writer.close()
    got = stats_json(capsys, tmp_path / "j")
    assert [(gap["kind"], gap["count"]) for gap in got["gaps"]] == [("dropped", 7)]
    assert got["undecodable"] == 1


def test_since_and_until_count_only_the_records_stamped_inside(
    recorded: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    """--since/--until bound the counts to the messages stamped in that range."""
    stamps = [message.time_ns for message in iter_messages(recorded.directory)]
    since, until = stamps[len(stamps) // 4], stamps[len(stamps) // 2]
    got = stats_json(
        capsys, recorded.directory, "--since", format_time(since), "--until", format_time(until)
    )
    assert got["messages"] == sum(since <= stamp <= until for stamp in stamps)
    assert got["first_ns"] >= since and got["last_ns"] <= until
