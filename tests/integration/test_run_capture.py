"""`recorder run` journals what it receives: bytes, subjects, headers, order, and its own health."""

from __future__ import annotations

import base64
import json
import random
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from broker import Broker, NatsServer
from polling import wait_until
from run_helpers import (
    NotifySocket,
    Outgoing,
    Recorders,
    assert_seqs_increase,
    markers_of,
    messages_of,
    numbered,
    publish,
    read_records,
    run_cli,
    subject_label,
)

from recorder.journal.record import MarkerType
from recorder.meshsync import CORE_SUBJECT

MiB = 1024 * 1024


def mixed_traffic() -> list[Outgoing]:
    """Payloads from 0 bytes to 1 MiB, binary, invalid UTF-8 and our own sync marker, on three subjects."""
    rng = random.Random(7)
    special = [
        b"",
        b"\x00",
        b"\xff\xfe\x80 not utf-8",
        b"\xff\xfeMR looks like a record frame",
        b'{"ObjectType":"meshsync-data","EventType":"ADDED"}',
        "ünïcödé ✓".encode(),
        rng.randbytes(65536),
        rng.randbytes(MiB),  # the broker's default max_payload, exactly
    ]
    subjects = [CORE_SUBJECT, "cluster.east.events", "cluster.west.events"]
    out = []
    for i in range(240):
        subject = subjects[i % 3]
        payload = special[i % len(special)] if i % 5 == 0 else rng.randbytes(rng.randrange(1, 4096))
        if len(payload) == MiB:
            headers = None  # max_payload counts the headers too
        elif i % 2:
            headers = {"X-Index": str(i), "Nats-Msg-Id": f"id-{i}", "X-Empty": ""}
        else:
            headers = None
        out.append(Outgoing(subject, payload, headers))
    return out


def test_every_message_is_journaled_byte_for_byte_in_order(
    nats_server: Broker, recorders: Recorders, tmp_path: Path
) -> None:
    """Every message on the subscribed subjects (one a wildcard) becomes one identical record, in order, and nothing else does."""
    journal = tmp_path / "journal"
    recorder = recorders.start(
        journal, nats_server.url, subjects=[CORE_SUBJECT, "cluster.*.events"]
    )
    recorder.wait_ready()
    traffic = mixed_traffic()
    noise = [Outgoing("cluster.east.other", b"not subscribed"), Outgoing("meshery.x", b"no")]
    publish(nats_server.url, [*traffic[:120], *noise, *traffic[120:]])
    recorder.wait_written(len(traffic))
    assert recorder.stop() == 0

    messages = messages_of(read_records(journal))
    assert len(messages) == len(traffic)
    assert_seqs_increase(messages)
    # Order holds per subject (nats-py hands each subscription its own task, so not across them).
    for subject in {sent.subject for sent in traffic}:
        got = [m for m in messages if m.subject == subject]
        sent_here = [m for m in traffic if m.subject == subject]
        assert [m.payload for m in got] == [m.payload for m in sent_here], subject
        assert [dict(m.headers or ()) for m in got] == [m.headers or {} for m in sent_here]
        assert {(m.reply, m.stream_seq) for m in got} == {("", None)}
    assert {len(m.payload) for m in messages} >= {0, 1, MiB}


def test_dump_prints_each_record_with_payload_text_or_base64(
    nats_server: Broker, recorders: Recorders, tmp_path: Path
) -> None:
    """`recorder dump` prints one JSON line per message: UTF-8 payloads as text, others as base64, headers as lists."""
    journal = tmp_path / "journal"
    # One wildcard subscription: nats-py delivers it in the broker's order across its subjects.
    recorder = recorders.start(journal, nats_server.url, subjects=["app.>"])
    recorder.wait_ready()
    traffic = [
        Outgoing("app.core", b'{"kind":"Pod"}', {"X-Trace": "abc"}),
        Outgoing("app.bin.x", b"\xff\x00\xfe"),
        Outgoing("app.core", b""),
        Outgoing("app.text", "héllo".encode(), {"A": "1", "B": "two words"}),
    ]
    publish(nats_server.url, traffic)
    recorder.wait_written(len(traffic))
    assert recorder.stop() == 0

    result = run_cli("dump", str(journal))
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-2000:])
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == len(traffic)
    for line, sent in zip(lines, traffic, strict=True):
        assert line["subject"] == sent.subject
        if "payload" in line:
            assert line["payload"].encode() == sent.payload
        else:
            assert base64.b64decode(line["payload_b64"]) == sent.payload
        assert line["headers"] == {k: [v] for k, v in (sent.headers or {}).items()}
    assert "payload_b64" in lines[1]
    assert lines[2]["payload"] == ""
    assert [line["seq"] for line in lines] == sorted(line["seq"] for line in lines)

    only_core = run_cli("dump", str(journal), "--subject", "app.core")
    assert [json.loads(line)["payload"] for line in only_core.stdout.splitlines()] == [
        '{"kind":"Pod"}',
        "",
    ]
    with_markers = run_cli("dump", str(journal), "--markers")
    kinds = [json.loads(line).get("marker") for line in with_markers.stdout.splitlines()]
    assert kinds == ["started", None, None, None, None, "stopped"]


def _hpub(port: int, subject: str, header_block: bytes, payload: bytes) -> None:
    """Publish with a raw HPUB, which nats-py cannot produce for a repeated header name."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.recv(4096)  # INFO
        command = (
            f"HPUB {subject} {len(header_block)} {len(header_block) + len(payload)}\r\n".encode()
        )
        sock.sendall(
            b'CONNECT {"verbose":false,"headers":true}\r\n'
            + command
            + header_block
            + payload
            + b"\r\nPING\r\n"
        )
        wait_until(lambda: b"PONG" in sock.recv(4096), 5, "PONG")


def test_repeated_header_values_are_all_kept(
    nats_server: Broker, recorders: Recorders, tmp_path: Path
) -> None:
    """A header sent with two values is journaled with both values, in order."""
    journal = tmp_path / "journal"
    recorder = recorders.start(journal, nats_server.url, subjects=[CORE_SUBJECT])
    recorder.wait_ready()
    port = urlsplit(nats_server.url).port
    assert port is not None
    _hpub(port, CORE_SUBJECT, b"NATS/1.0\r\nX-Multi: one\r\nX-Multi: two\r\n\r\n", b"p")
    recorder.wait_written(1)
    assert recorder.stop() == 0
    (message,) = messages_of(read_records(journal))
    assert message.payload == b"p"
    assert message.headers == (("X-Multi", "one"), ("X-Multi", "two"))


def test_metrics_health_and_readiness_report_what_happened(
    nats_server: Broker, recorders: Recorders, tmp_path: Path
) -> None:
    """/metrics counts exactly the messages and bytes published per subject, /healthz and /readyz say ok and ready."""
    journal = tmp_path / "journal"
    recorder = recorders.start(journal, nats_server.url, subjects=[CORE_SUBJECT, "cluster.*"])
    recorder.wait_ready()
    traffic = [
        *numbered(CORE_SUBJECT, 30, prefix="core-"),
        *[Outgoing("cluster.a", b"x" * 100)] * 7,
        *[Outgoing("cluster.b", b"")] * 5,
    ]
    publish(nats_server.url, traffic)
    recorder.wait_written(len(traffic))

    assert recorder.get("/healthz") == (200, "ok\n")
    assert recorder.get("/readyz") == (200, "ready\n")
    assert recorder.get("/nope") == (404, "not found\n")
    samples = recorder.metrics()
    core_bytes = sum(len(m.payload) for m in traffic if m.subject == CORE_SUBJECT)
    expected = {
        subject_label("messages_written_total", CORE_SUBJECT): 30,
        subject_label("messages_written_total", "cluster.a"): 7,
        subject_label("messages_written_total", "cluster.b"): 5,
        subject_label("messages_received_total", CORE_SUBJECT): 30,
        subject_label("bytes_written_total", CORE_SUBJECT): core_bytes,
        subject_label("bytes_written_total", "cluster.a"): 700,
        subject_label("bytes_written_total", "cluster.b"): 0,
        'meshsync_recorder_messages_dropped_total{reason="queue_full"}': 0,
        'meshsync_recorder_messages_dropped_total{reason="write_error"}': 0,
        'meshsync_recorder_messages_dropped_total{reason="slow_consumer"}': 0,
        "meshsync_recorder_write_errors_total": 0,
        "meshsync_recorder_reconnects_total": 0,
        "meshsync_recorder_gaps_total": 0,
        "meshsync_recorder_connected": 1,
        "meshsync_recorder_ready": 1,
        "meshsync_recorder_journal_segments": 1,
        "meshsync_recorder_active_segment": 1,
        'meshsync_recorder_markers_total{type="started"}': 1,
        'meshsync_recorder_markers_total{type="stopped"}': 0,
    }
    assert {key: samples.get(key) for key in expected} == expected
    segment_bytes = sum(p.stat().st_size for p in journal.glob("*.seg"))
    assert samples["meshsync_recorder_journal_bytes"] == segment_bytes
    assert 0 <= samples["meshsync_recorder_last_message_age_seconds"] < 30
    assert samples["meshsync_recorder_free_disk_bytes"] > 0
    assert (
        samples['meshsync_recorder_fsync_seconds_bucket{le="+Inf"}']
        == samples["meshsync_recorder_fsync_seconds_count"]
    )
    assert recorder.stop() == 0


def test_systemd_hears_ready_watchdog_status_and_stopping(
    nats_server: Broker, recorders: Recorders, tmp_path: Path, notify_socket: NotifySocket
) -> None:
    """READY=1 once the journal is open, STATUS= says subscribed and counts, WATCHDOG=1 every half WATCHDOG_USEC, STOPPING=1 on SIGTERM."""
    journal = tmp_path / "journal"
    recorder = recorders.start(
        journal,
        nats_server.url,
        subjects=[CORE_SUBJECT],
        env={"NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": "1000000"},
    )
    ready = notify_socket.wait_for("READY", "1")
    assert ready["STATUS"].endswith("; written=0 dropped=0 queue=0")
    # Subscribed by the time STATUS says so: a message published now is recorded.
    notify_socket.wait_for("STATUS", "subscribed; written=0 dropped=0 queue=0")
    publish(nats_server.url, numbered(CORE_SUBJECT, 12))
    recorder.wait_written(12)
    notify_socket.wait_for("STATUS", "subscribed; written=12 dropped=0 queue=0", timeout=5)
    wait_until(
        lambda: sum("WATCHDOG" in m for m in notify_socket.poll()) >= 3, 5, "three WATCHDOG=1"
    )
    assert {m["WATCHDOG"] for m in notify_socket.messages if "WATCHDOG" in m} == {"1"}
    assert recorder.stop() == 0
    notify_socket.wait_for("STOPPING", "1", timeout=2)
    assert sum("READY" in m for m in notify_socket.messages) == 1


def test_systemd_start_completes_while_the_broker_is_down(
    nats_server_factory: Callable[..., NatsServer],
    recorders: Recorders,
    tmp_path: Path,
    notify_socket: NotifySocket,
) -> None:
    """READY=1 and watchdog pings come without a broker; STATUS and /readyz report it until it is back."""
    server = nats_server_factory()
    server.stop()  # its port is kept: the broker comes back there later
    recorder = recorders.start(
        tmp_path / "journal",
        server.url,
        subjects=[CORE_SUBJECT],
        env={"NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": "1000000"},
    )
    ready = notify_socket.wait_for("READY", "1")
    waiting = f"waiting for the broker at {server.url}; written=0 dropped=0 queue=0"
    assert ready["STATUS"] == waiting
    wait_until(lambda: sum("WATCHDOG" in m for m in notify_socket.poll()) >= 2, 5, "two WATCHDOG=1")
    status, body = recorder.get("/readyz") or (0, "")
    assert status == 503 and "not connected to the broker" in body

    server.start()
    notify_socket.wait_for("STATUS", "subscribed; written=0 dropped=0 queue=0", timeout=15)
    recorder.wait_ready()
    publish(server.url, numbered(CORE_SUBJECT, 3))
    recorder.wait_written(3)
    assert recorder.stop() == 0
    assert sum("READY" in m for m in notify_socket.messages) == 1


def test_sigterm_exits_zero_with_a_clean_stop_and_sealed_segments(
    nats_server: Broker, recorders: Recorders, tmp_path: Path
) -> None:
    """SIGTERM: exit 0 after writing everything received, a clean STOPPED marker last, every segment sealed, verify clean."""
    journal = tmp_path / "journal"
    recorder = recorders.start(journal, nats_server.url, subjects=[CORE_SUBJECT])
    recorder.wait_ready()
    publish(nats_server.url, numbered(CORE_SUBJECT, 500))
    recorder.wait_written(500)
    assert recorder.stop(timeout=10) == 0

    records = read_records(journal)
    assert markers_of(records[:1], MarkerType.STARTED)
    stopped = markers_of(records[-1:], MarkerType.STOPPED)
    assert stopped and stopped[0].fields["clean"] is True
    assert stopped[0].fields["dropped_total"] == 0
    assert [m.payload for m in messages_of(records)] == [str(i).encode() for i in range(500)]
    verify = run_cli("verify", str(journal))
    assert verify.returncode == 0, verify.stdout
    assert b"clean" in verify.stdout
    inspect = run_cli("inspect", "--json", str(journal))
    states = [json.loads(line)["state"] for line in inspect.stdout.splitlines()]
    assert states == ["sealed"]
    assert "recorder_stopped" in recorder.event_names()


def test_sighup_seals_the_segment_and_starts_a_new_one(
    nats_server: Broker, recorders: Recorders, tmp_path: Path
) -> None:
    """SIGHUP while running seals the active segment and writes what follows into a new one."""
    journal = tmp_path / "journal"
    recorder = recorders.start(journal, nats_server.url, subjects=[CORE_SUBJECT])
    recorder.wait_ready()
    publish(nats_server.url, numbered(CORE_SUBJECT, 10, prefix="before-"))
    recorder.wait_written(10)

    def states() -> list[str]:
        result = run_cli("inspect", "--json", str(journal))
        return [json.loads(line)["state"] for line in result.stdout.splitlines()]

    assert states() == ["active"]
    recorder.send(signal.SIGHUP)
    assert wait_until(lambda: states() == ["sealed", "active"], 5, "a second segment")
    publish(nats_server.url, numbered(CORE_SUBJECT, 10, prefix="after-"))
    recorder.wait_written(20)
    assert recorder.alive()
    assert recorder.metrics()["meshsync_recorder_active_segment"] == 2
    assert recorder.stop() == 0

    segments = sorted(journal.glob("*.seg"))
    assert [p.name for p in segments] == ["00000001.seg", "00000002.seg"]
    records = read_records(journal)
    payloads = [m.payload.decode() for m in messages_of(records)]
    assert payloads == [f"before-{i}" for i in range(10)] + [f"after-{i}" for i in range(10)]
    assert run_cli("verify", str(journal)).returncode == 0
