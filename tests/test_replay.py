"""Replay's pure parts: subject maps, pacing, selection, snapshots, and the publish loop on a stub."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from meshsync_samples import sample, sample_names
from nats.aio.client import Client
from nats.errors import UnexpectedEOF

from recorder.cli import main
from recorder.cli.replay_command import parse_speed
from recorder.compact.run import CompactRequest, run_compaction
from recorder.demo.simulator import Simulator
from recorder.errors import BrokerError, PublishError, UsageError
from recorder.journal.query import Query
from recorder.journal.record import Headers, Incoming, Message
from recorder.journal.writer import JournalWriter
from recorder.log import reset_logging
from recorder.meshsync import ADDED, CORE_SUBJECT, decode, events_of
from recorder.replay.publisher import Publisher, Sink
from recorder.replay.run import (
    Outgoing,
    Pacer,
    ReplayStats,
    Selection,
    journal_batches,
    replay,
    snapshot_messages,
)
from recorder.replay.snapshot_source import load_snapshot
from recorder.subjects import SubjectMap

T0 = 1_795_000_000 * 10**9  # 2026-11-18
MS = 1_000_000


@pytest.fixture(autouse=True)
def _restore_logging() -> object:
    """The in-process CLI points logging at capsys' stderr, which is gone after the test."""
    yield
    reset_logging()


# -- pacing ---------------------------------------------------------------------------------


def dues(pacer: Pacer, times_ns: list[int]) -> list[float]:
    return [pacer.due(time_ns) for time_ns in times_ns]


def test_speed_one_keeps_the_recorded_gaps() -> None:
    """At speed 1 each message is due at its recorded offset from the first one."""
    times = [T0, T0 + 100 * MS, T0 + 250 * MS, T0 + 2_000 * MS]
    assert dues(Pacer(1.0, None), times) == pytest.approx([0.0, 0.1, 0.25, 2.0])


def test_speed_ten_divides_the_gaps_by_ten() -> None:
    """At speed 10 every offset is a tenth of the recorded one."""
    times = [T0, T0 + 100 * MS, T0 + 250 * MS, T0 + 2_000 * MS]
    assert dues(Pacer(10.0, None), times) == pytest.approx([0.0, 0.01, 0.025, 0.2])


def test_speed_max_is_due_at_once() -> None:
    """Without a speed or a rate nothing waits, however far apart the recording was."""
    assert dues(Pacer(None, None), [T0, T0 + 10**12, T0 + 2 * 10**12]) == [0.0, 0.0, 0.0]


def test_rate_caps_flat_out_replay() -> None:
    """`--speed max --rate 50` spaces messages exactly 20 ms apart, counted from the start."""
    assert dues(Pacer(None, 50.0), [T0] * 5) == pytest.approx([0.0, 0.02, 0.04, 0.06, 0.08])


def test_rate_cap_holds_after_a_quiet_stretch() -> None:
    """A burst after a long recorded gap is still spread at the cap, not sent all at once."""
    times = [T0] + [T0 + 10**9] * 5 + [T0 + 3 * 10**9]
    assert dues(Pacer(1.0, 50.0), times) == pytest.approx([0.0, 1.0, 1.02, 1.04, 1.06, 1.08, 3.0])


def test_clock_stepping_back_never_gives_a_negative_deadline() -> None:
    """A recording whose receive clock stepped back is due at once, never in the past."""
    assert dues(Pacer(1.0, None), [T0, T0 - 5 * 10**9, T0 + MS]) == pytest.approx([0, 0, 0.001])


def test_deadlines_do_not_drift_over_a_long_replay() -> None:
    """Deadline k is computed from the start, so after 10^6 messages it is still exact."""
    pacer = Pacer(1.0, None)
    last = 0.0
    for k in range(1_000_000):
        last = pacer.due(T0 + k * MS)
    assert last == 999.999  # a sum of a million 0.001 s sleeps would not be exact


_gaps = st.lists(st.integers(min_value=0, max_value=5 * 10**9), min_size=1, max_size=200)


@settings(max_examples=200, deadline=None)
@given(
    gaps=_gaps,
    speed=st.one_of(st.none(), st.floats(min_value=0.01, max_value=1000)),
    rate=st.one_of(st.none(), st.floats(min_value=0.5, max_value=100_000)),
)
def test_deadline_is_the_later_of_schedule_and_rate_cap(
    gaps: list[int], speed: float | None, rate: float | None
) -> None:
    """Each message is due at its scaled recorded offset, or 1/rate after the previous one if later."""
    times = list(itertools.accumulate(gaps, initial=T0))
    got = dues(Pacer(speed, rate), times)
    previous = None
    for time_ns, due in zip(times, got, strict=True):
        scheduled = 0.0 if speed is None else (time_ns - T0) / 1e9 / speed
        expected = scheduled
        if rate is not None and previous is not None:
            expected = max(scheduled, previous + 1 / rate)
        assert due == pytest.approx(expected, rel=1e-9, abs=1e-9)
        previous = due


# -- selection ------------------------------------------------------------------------------


def sample_message(name: str, seq: int = 1, subject: str = CORE_SUBJECT) -> Message:
    return Message(seq, T0, subject, "", None, sample(name))


@pytest.mark.parametrize(
    ("kinds", "namespaces", "admitted"),
    [
        (
            ("Pod",),
            (),
            {
                "core-added-pod",
                "core-deleted-pod",
                "docs-format-added-pod",
                "store-dump-batch",
            },
        ),
        (("pod",), ("default",), None),  # kind is case-insensitive: the same set as above
        (("ConfigMap",), (), {"core-modified-configmap"}),
        ((), ("shop",), {"core-modified-configmap"}),
        (("Service", "ConfigMap"), (), {"core-added-service", "core-modified-configmap"}),
        # Both filters must hold for one object: the dump's Pod is in default, its Namespace is not.
        (("Namespace",), ("default",), set()),
        (("Namespace",), (), {"store-dump-batch"}),
    ],
)
def test_kind_and_namespace_select_meshsync_objects(
    kinds: tuple[str, ...], namespaces: tuple[str, ...], admitted: set[str] | None
) -> None:
    """Kind and namespace filters admit a message when one of its objects matches both."""
    if admitted is None:
        admitted = {
            "core-added-pod",
            "core-deleted-pod",
            "docs-format-added-pod",
            "store-dump-batch",
        }
    selection = Selection(kinds=kinds, namespaces=namespaces)
    got = {name for name in sample_names() if selection.admits_payload(sample_message(name))}
    assert got == admitted


def test_no_kind_or_namespace_admits_everything_even_binary() -> None:
    """Without MeshSync filters every payload is admitted, including ones that are not JSON."""
    selection = Selection()
    assert all(selection.admits_payload(sample_message(name)) for name in sample_names())
    assert selection.admits_payload(Message(1, T0, "x", "", None, b"\xff\x00"))


def test_kind_filter_skips_undecodable_payloads() -> None:
    """With a kind filter, a payload that is not MeshSync is skipped, not an error."""
    assert not Selection(kinds=("Pod",)).admits_payload(Message(1, T0, "x", "", None, b"\xff\x00"))


def test_kind_filter_on_simulated_traffic_matches_the_envelopes() -> None:
    """On realistic churn, `--kind Pod --namespace N` admits exactly the Pod envelopes in N."""
    messages = list(Simulator(3).messages(1500))
    namespace = "team-001"
    selection = Selection(kinds=("Pod",), namespaces=(namespace,))
    expected = []
    for message in messages:
        doc = orjson.loads(message.payload)
        objects = doc["Object"] if isinstance(doc.get("Object"), list) else [doc.get("Object")]
        if any(
            isinstance(obj, dict)
            and obj.get("kind") == "Pod"
            and obj.get("metadata", {}).get("namespace") == namespace
            for obj in objects
        ):
            expected.append(message.seq)
    assert expected, "the simulation should contain Pods in that namespace"
    assert [m.seq for m in messages if selection.admits_payload(m)] == expected


# -- journal selection ----------------------------------------------------------------------


def write_journal(directory: Path, items: list[tuple[int, str, bytes]]) -> bytes:
    """A closed journal of (time_ns, subject, payload) messages; returns its instance id."""
    writer = JournalWriter(directory)
    writer.open()
    writer.append_messages(
        [
            Incoming(t, subject, "", (("k", "v"),) if i % 2 else None, p, None)
            for i, (t, subject, p) in enumerate(items)
        ]
    )
    writer.close()
    return writer.instance_id


def journal_messages(directory: Path, selection: Selection, **options: Any) -> list[Message]:
    return list(itertools.chain.from_iterable(journal_batches(directory, selection, **options)))


def test_journal_messages_filters_maps_and_counts_skips(tmp_path: Path) -> None:
    """Query bounds and kind filters select messages; survivors are mapped and keep their headers."""
    pod = sample("core-added-pod")
    service = sample("core-added-service")
    items = [(T0 + i * 10**9, CORE_SUBJECT, pod if i % 2 else service) for i in range(10)]
    write_journal(tmp_path, items)
    first_seq = journal_messages(tmp_path, Selection())[0].seq
    stats = ReplayStats()
    selection = Selection(Query(since_ns=T0 + 2 * 10**9, to_seq=first_seq + 8), kinds=("Pod",))
    got = list(
        journal_messages(
            tmp_path,
            selection,
            maps=(SubjectMap.parse("meshery.meshsync.*=replay.*"),),
            stats=stats,
        )
    )
    assert [item.seq - first_seq for item in got] == [3, 5, 7]
    assert {item.subject for item in got} == {"replay.core"}
    assert all(item.payload == pod and item.headers == (("k", "v"),) for item in got)
    assert stats.skipped == 4  # the services at 2, 4, 6, 8 (the reader drops the rest unseen)


def test_msg_id_is_instance_and_seq_and_stable(tmp_path: Path) -> None:
    """`--msg-id` adds Nats-Msg-Id `<instance hex>-<seq>` and keeps the recorded headers."""
    instance = write_journal(tmp_path, [(T0 + i, "a.b", b"x") for i in range(4)])
    first = journal_messages(tmp_path, Selection(), msg_id=True)
    second = journal_messages(tmp_path, Selection(), msg_id=True)
    assert first == second
    for item in first:
        assert item.headers is not None
        assert item.headers[-1] == ("Nats-Msg-Id", f"{instance.hex()}-{item.seq}")
    assert first[0].headers == (("Nats-Msg-Id", f"{instance.hex()}-{first[0].seq}"),)
    assert first[1].headers == (("k", "v"), ("Nats-Msg-Id", f"{instance.hex()}-{first[1].seq}"))
    assert [item.headers for item in journal_messages(tmp_path, Selection())][:2] == [
        None,
        (("k", "v"),),
    ]


# -- snapshots ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compacted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The YAML and JSON snapshots `compact` makes of a simulated cluster."""
    base = tmp_path_factory.mktemp("snap")
    journal = base / "journal"
    writer = JournalWriter(journal)
    writer.open()
    writer.append_messages(
        [
            Incoming(m.time_ns, m.subject, "", None, m.payload, None)
            for m in Simulator(5).events(400)
        ]
    )
    writer.close()
    paths = base / "snapshot.yaml", base / "snapshot.json"
    for path, fmt in zip(paths, ("yaml", "json"), strict=True):
        run_compaction(CompactRequest(journal, format=fmt, out=path))
    return paths


def test_load_snapshot_reads_yaml_and_json_list_alike(compacted: tuple[Path, Path]) -> None:
    """The YAML manifests and the JSON List of one compaction give the same objects."""
    from_yaml, from_json = (load_snapshot(path) for path in compacted)
    assert len(from_yaml) > 20
    assert from_yaml == from_json
    assert all("kind" in doc and "metadata" in doc for doc in from_yaml)


def test_snapshot_messages_are_added_envelopes_of_every_object(
    compacted: tuple[Path, Path],
) -> None:
    """A snapshot of K objects gives K ADDED envelopes on the core subject, in file order."""
    manifests = load_snapshot(compacted[0])
    items = list(snapshot_messages(compacted[0], selection=Selection(), prefix="seed"))
    assert [item.seq for item in items] == list(range(1, len(manifests) + 1))
    assert {item.subject for item in items} == {f"seed.{CORE_SUBJECT}"}
    for manifest, item in zip(manifests, items, strict=True):
        (event,) = events_of(decode(item.payload))
        assert event.type == ADDED
        assert event.kind == manifest["kind"]
        assert event.name == manifest["metadata"]["name"]
        assert event.namespace == manifest["metadata"].get("namespace", "")


def test_snapshot_messages_honour_kind_namespace_and_seq_bounds(
    compacted: tuple[Path, Path],
) -> None:
    """Kind/namespace filters and --from-seq/--to-seq (the object's position) select objects."""
    manifests = load_snapshot(compacted[0])
    pods = Selection(kinds=("pod",))
    got = [item.seq for item in snapshot_messages(compacted[0], selection=pods)]
    assert got == [i for i, m in enumerate(manifests, start=1) if m["kind"] == "Pod"]
    window = Selection(Query(from_seq=3, to_seq=7))
    assert [item.seq for item in snapshot_messages(compacted[0], selection=window)] == [
        3,
        4,
        5,
        6,
        7,
    ]


def test_load_snapshot_accepts_plain_yaml_and_empty_lists(tmp_path: Path) -> None:
    """Hand-written manifests and a List with no (or null) items load as written."""
    plain = tmp_path / "plain.yaml"
    plain.write_text(
        "# a comment\n---\nkind: Namespace\nmetadata: {name: a}\n---\n---\nkind: Pod\nmetadata: {}\n"
    )
    assert [doc["kind"] for doc in load_snapshot(plain)] == ["Namespace", "Pod"]
    for text in ('{"kind": "List", "items": []}', '{"kind": "List", "items": null}', ""):
        empty = tmp_path / "empty.json"
        empty.write_text(text)
        assert load_snapshot(empty) == []


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"kind: Pod\nmetadata: {}\n---\nkind: [\n", "document 2 is not YAML or JSON at line 5"),
        (
            b'{"kind": "List", "items": [{"kind": "Pod"}, 3]}',
            "document 2 is not a Kubernetes object",
        ),
        (b"just a string\n", "document 1 is not a Kubernetes object"),
        (b"- a\n- b\n", "document 1 is not a Kubernetes object"),
        (b"kind: Pod\nmetadata: {}\n---\nname: x\n", "document 2 is not a Kubernetes object"),
        (b"kind: Pod\nmetadata: a string\n", "document 1 is not a Kubernetes object"),
        (b"\xff\xfe\x00binary", "is not UTF-8 text"),
    ],
)
def test_bad_snapshot_is_a_one_line_usage_error_naming_file_and_document(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    """An unusable snapshot is one UsageError line naming the file and, when known, the document."""
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(UsageError) as info:
        load_snapshot(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    assert expected in message


@pytest.mark.parametrize("make", ["missing", "directory"])
def test_unreadable_snapshot_is_a_usage_error(tmp_path: Path, make: str) -> None:
    """A missing path or a directory is a UsageError naming the path."""
    path = tmp_path / "snap.yaml"
    if make == "directory":
        path.mkdir()
    with pytest.raises(UsageError, match=f"cannot read snapshot {path}"):
        load_snapshot(path)


# -- the publish loop, on a stub client ----------------------------------------------------


class StubPublisher:
    """A Sink recording when each message is handed over; can be slow or lose the connection."""

    def __init__(self, publish_s: float = 0.0, fail_at: int | None = None) -> None:
        self.publish_s = publish_s
        self.fail_at = fail_at
        self.sent: list[tuple[float, str, bytes, Headers | None]] = []
        self.sends = 0
        self.flushes = 0
        self.handed_over = 0
        self.most_unconfirmed = 0
        self.unsent_bytes = 0
        self.unconfirmed_messages = 0
        self.unconfirmed_bytes = 0

    def add(self, messages: Sequence[Message]) -> None:
        for message in messages:
            if self.publish_s:
                time.sleep(self.publish_s)  # a slow broker, blocking as a full socket would
            self.sent.append((time.monotonic(), message.subject, message.payload, message.headers))
            self.unsent_bytes += len(message.payload)

    async def send(self) -> None:
        if self.fail_at is not None and len(self.sent) > self.fail_at:
            raise PublishError("lost the connection to the broker")
        self.sends += 1
        self.unconfirmed_messages += len(self.sent) - self.handed_over
        self.unconfirmed_bytes += self.unsent_bytes
        self.most_unconfirmed = max(self.most_unconfirmed, self.unconfirmed_bytes)
        self.handed_over = len(self.sent)
        self.unsent_bytes = 0

    async def confirm(self, timeout: float) -> None:
        await self.send()
        self.flushes += 1
        self.unconfirmed_messages = self.unconfirmed_bytes = 0


def outgoing(count: int, gap_ns: int, size: int = 8) -> list[Outgoing]:
    return [
        Outgoing(i + 1, T0 + i * gap_ns, "s", "", None, i.to_bytes(4, "big") * (size // 4))
        for i in range(count)
    ]


def run_replay(
    items: list[Outgoing],
    client: Sink,
    pacer: Pacer,
    errors: list[BaseException] | None = None,
    stop_after: float | None = None,
) -> ReplayStats:
    async def go() -> ReplayStats:
        stop = asyncio.Event()
        if stop_after is not None:
            asyncio.get_running_loop().call_later(stop_after, stop.set)
        stats = ReplayStats()
        return await replay([items], client, errors or [], pacer, stop, stats)

    return asyncio.run(go())


def test_slow_publishes_do_not_push_later_deadlines_back() -> None:
    """When each publish takes 8 ms, 20 messages 10 ms apart still finish on the recorded schedule."""
    client = StubPublisher(publish_s=0.008)
    stats = run_replay(outgoing(20, 10 * MS), client, Pacer(1.0, None))
    assert stats.sent == 20
    span = client.sent[-1][0] - client.sent[0][0]
    # Summing (sleep 10 ms + publish 8 ms) would take 0.342 s; against the clock it is 0.19 s.
    assert 0.18 <= span < 0.3


def test_flat_out_flushes_every_1024_and_at_the_end() -> None:
    """`--speed max` sends every 128 messages and waits for the broker every 1024 and at the end."""
    client = StubPublisher()
    stats = run_replay(outgoing(3000, MS), client, Pacer(None, None))
    assert stats.sent == 3000 and stats.last_seq == 3000
    assert client.flushes == 3
    assert client.sends >= -(-3000 // 128)  # every run of 128 handed over as it was added


def test_flat_out_bounds_what_is_buffered_by_bytes_too() -> None:
    """Big messages are confirmed once 4 MiB is open: never more than that plus one run waits."""
    client = StubPublisher()
    batches = [outgoing(200, MS, size=64 * 1024)[i : i + 16] for i in range(0, 200, 16)]
    stats = asyncio.run(
        replay(batches, client, [], Pacer(None, None), asyncio.Event(), ReplayStats())
    )
    assert stats.sent == 200
    assert client.flushes == 200 * 64 // (4 * 1024) + 1  # each 4 MiB, and at the end
    assert client.most_unconfirmed <= 4 * 1024 * 1024 + 16 * 64 * 1024


def test_stop_interrupts_a_wait_and_reports_the_last_seq_sent() -> None:
    """Setting stop during a paced wait ends the replay at once, after the message in flight."""
    client = StubPublisher()
    started = time.monotonic()
    stats = run_replay(outgoing(10, 100 * MS), client, Pacer(1.0, None), stop_after=0.25)
    assert time.monotonic() - started < 0.5
    assert stats.interrupted
    # Due at 0, 0.1, 0.2 s; a scheduling hiccup may let the stop land before the third.
    assert stats.last_seq == stats.sent and stats.sent in (2, 3)


def test_payload_over_max_payload_names_the_seq() -> None:
    """A payload the broker would refuse is a BrokerError naming its seq and both sizes."""
    items = outgoing(5, 0)
    items[3] = Outgoing(4, T0, "s", "", None, b"x" * 2048)
    publisher = Publisher(Client())
    publisher._nc._max_payload = 1024  # what a broker's INFO would have said
    with pytest.raises(BrokerError, match=r"seq 4: payload of 2048 bytes .* max_payload \(1024\)"):
        run_replay(items, publisher, Pacer(None, None))


def test_lost_connection_is_a_broker_error_naming_the_seq() -> None:
    """A connection that closes mid-replay is a BrokerError naming the seq, not a traceback."""
    with pytest.raises(BrokerError, match=r"lost the connection to the broker \(after seq 3\)"):
        run_replay(outgoing(5, 10 * MS), StubPublisher(fail_at=2), Pacer(10.0, None))


def test_lost_connection_before_the_final_flush_names_the_last_seq() -> None:
    """Flat out, the first send may be the final one; its error still says how far it got."""
    with pytest.raises(BrokerError, match=r"lost the connection to the broker \(after seq 5\)"):
        run_replay(outgoing(5, 0), Publisher(Client()), Pacer(None, None))


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (Exception('nats: permissions violation for publish to "x"'), "rejected a publish"),
        (UnexpectedEOF(), "lost the connection"),
    ],
)
def test_async_error_stops_a_paced_replay_at_the_next_message(
    error: Exception, message: str
) -> None:
    """An error reported by the client's callback stops the replay before the next publish."""
    errors: list[BaseException] = [error]
    client = StubPublisher()
    with pytest.raises(BrokerError, match=message):
        run_replay(outgoing(3, 10**9), client, Pacer(1.0, None), errors=errors)
    assert client.sent == []


# -- command line ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"), [("max", None), ("1", 1.0), ("10", 10.0), ("0.5", 0.5)]
)
def test_parse_speed(text: str, expected: float | None) -> None:
    """`max` is flat out; any positive number is a factor on the recorded pace."""
    assert parse_speed(text) == expected


@pytest.mark.parametrize("text", ["0", "-1", "fast", ""])
def test_bad_speed_is_a_usage_error(text: str) -> None:
    """Zero, negative or non-numeric speeds are refused, naming --speed."""
    with pytest.raises(UsageError, match="--speed"):
        parse_speed(text)


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["--log-format", "console", *args])  # the summary for people, not as a record
    captured = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 0), captured.out, captured.err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), "give a journal directory or --snapshot FILE"),
        (("{journal}", "--snapshot", "{snapshot}"), "give a journal directory or --snapshot FILE"),
        (("{journal}", "--speed", "0"), "--speed"),
        (("{journal}", "--subject-map", "a.*"), "--subject-map"),
        (("{journal}", "--since", "yesterday"), "--since"),
        (("{journal}", "--subject", "a..b"), "--subject"),
        (("{missing}",), "not a journal directory"),
        (("--snapshot", "{bad}"), "document 1 is not a Kubernetes object"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: tuple[str, ...], expected: str
) -> None:
    """Bad command lines exit 2 with one `Error:` line and never connect."""
    journal = tmp_path / "journal"
    write_journal(journal, [(T0, "a.b", b"x")])
    bad = tmp_path / "bad.yaml"
    bad.write_text("just text\n")
    names = {"journal": journal, "snapshot": bad, "missing": tmp_path / "nope", "bad": bad}
    argv = [arg.format(**names) for arg in args]
    code, out, err = run_cli(capsys, "replay", *argv, "--nats-url", "nats://127.0.0.1:1")
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and expected in lines[0], err


def test_dry_run_in_process_prints_count_subjects_and_span(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`--dry-run` summarises what would be sent, per mapped subject, and exits 0 without a broker."""
    write_journal(
        tmp_path,
        [(T0 + i * 10**9, CORE_SUBJECT if i % 3 else "other.x", b"abcd") for i in range(6)],
    )
    code, _, err = run_cli(
        capsys,
        "replay",
        str(tmp_path),
        "--dry-run",
        "--subject-prefix",
        "p",
        "--nats-url",
        "nats://127.0.0.1:1",
    )
    assert code == 0, err
    assert "would send 6 messages (24 B)" in err
    assert "2026-11-18T" in err  # the recorded span
    assert "  p.meshery.meshsync.core: 4" in err
    assert "  p.other.x: 2" in err
