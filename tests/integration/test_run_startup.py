"""`recorder run` start-up: authentication, clear one-line errors, the lock, and queue groups."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from broker import Broker, NatsServer
from polling import wait_until
from run_helpers import (
    RecorderProcess,
    Recorders,
    free_port,
    markers_of,
    messages_of,
    numbered,
    publish,
    read_records,
)

from recorder.journal.record import MarkerType
from recorder.meshsync import CORE_SUBJECT


def error_lines(recorder: RecorderProcess) -> list[str]:
    """The lines the CLI printed for the operator (the JSON log lines are left out)."""
    return [line for line in recorder.stderr().splitlines() if not line.startswith("{")]


def failed_quickly(recorder: RecorderProcess, within: float = 10.0) -> tuple[int, float]:
    started = time.monotonic()
    code = recorder.wait_exit(within)
    return code, time.monotonic() - started


def test_token_auth_connects_and_records(
    nats_server_factory: Callable[..., NatsServer], recorders: Recorders, tmp_path: Path
) -> None:
    """With the server's token in RECORDER_NATS_TOKEN the recorder connects, records, and never logs the token."""
    server = nats_server_factory(token="t0ken-s3cret")
    recorder = recorders.start(
        tmp_path / "journal", server.url, env={"RECORDER_NATS_TOKEN": "t0ken-s3cret"}
    )
    recorder.wait_ready()
    publish(server.url, numbered(CORE_SUBJECT, 3), token="t0ken-s3cret")
    recorder.wait_written(3)
    assert recorder.stop() == 0
    assert "t0ken-s3cret" not in recorder.stderr()


def test_user_password_auth_from_a_file_connects_and_records(
    nats_server_factory: Callable[..., NatsServer], recorders: Recorders, tmp_path: Path
) -> None:
    """User and password (read from RECORDER_NATS_PASSWORD_FILE) log in, and the password never reaches the log."""
    server = nats_server_factory(user="recorder", password="pa55-word")
    secret = tmp_path / "password"
    secret.write_text("pa55-word\n")
    recorder = recorders.start(
        tmp_path / "journal",
        server.url,
        env={"RECORDER_NATS_USER": "recorder", "RECORDER_NATS_PASSWORD_FILE": str(secret)},
    )
    recorder.wait_ready()
    publish(server.url, numbered(CORE_SUBJECT, 3), user="recorder", password="pa55-word")
    recorder.wait_written(3)
    assert recorder.stop() == 0
    assert "pa55-word" not in recorder.stderr()


def test_bad_password_fails_fast_with_one_clear_line(
    nats_server_factory: Callable[..., NatsServer], recorders: Recorders, tmp_path: Path
) -> None:
    """A wrong password ends the recorder quickly, non-zero, with one `Error:` line naming the refusal and no traceback, even with retry on start."""
    server = nats_server_factory(user="recorder", password="right")
    recorder = recorders.start(
        tmp_path / "journal",
        server.url,
        env={"RECORDER_NATS_USER": "recorder", "RECORDER_NATS_PASSWORD": "wrong-pass"},
    )
    code, took = failed_quickly(recorder)
    assert code != 0
    assert took < 5
    lines = error_lines(recorder)
    assert len(lines) == 1, lines
    assert lines[0].startswith("Error: cannot connect to nats://127.0.0.1:")
    assert "authorization violation" in lines[0].lower()
    assert "Traceback" not in recorder.stderr()
    assert "wrong-pass" not in recorder.stderr()


def test_unreachable_broker_without_retry_fails_with_a_clear_error(
    recorders: Recorders, tmp_path: Path
) -> None:
    """With nats.retry_on_start false and nothing listening, the recorder exits non-zero at once naming the URL."""
    url = f"nats://127.0.0.1:{free_port()}"
    recorder = recorders.start(
        tmp_path / "journal", url, env={"RECORDER_NATS_RETRY_ON_START": "false"}
    )
    code, took = failed_quickly(recorder)
    assert code == 1
    assert took < 5
    (line,) = error_lines(recorder)
    assert line.startswith(f"Error: cannot connect to {url}")


def test_unreachable_broker_with_retry_keeps_trying_until_stopped(
    recorders: Recorders, tmp_path: Path
) -> None:
    """With retry on start (the default) an absent broker is retried and logged, the recorder is not ready, and SIGTERM ends it cleanly with exit 0."""
    url = f"nats://127.0.0.1:{free_port()}"
    recorder = recorders.start(tmp_path / "journal", url)
    recorder.wait_event("broker_unreachable")
    response = recorder.get("/readyz")
    assert response is not None and response[0] == 503
    assert "not connected to the broker" in response[1]
    assert recorder.alive()
    # Stopping before the broker came is a clean stop, not a failure.
    assert recorder.stop() == 0
    assert error_lines(recorder) == []
    (stopped,) = markers_of(read_records(recorder.journal_dir), MarkerType.STOPPED)
    assert stopped.fields["clean"] is True


def test_journal_dir_that_cannot_be_created_fails_with_a_clear_error(
    nats_server: Broker, recorders: Recorders, tmp_path: Path
) -> None:
    """A journal directory that cannot be created (a file is in the way) gives one `Error:` line naming it and exit 1."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    journal = blocker / "journal"
    recorder = recorders.start(journal, nats_server.url)
    code, _took = failed_quickly(recorder)
    assert code == 1
    (line,) = error_lines(recorder)
    assert line.startswith(f"Error: {journal}: ")
    assert "Not a directory" in line


def test_second_recorder_on_the_same_journal_names_the_lock_holder(
    nats_server: Broker, recorders: Recorders, tmp_path: Path
) -> None:
    """A second recorder on a journal directory in use exits non-zero naming the first one's pid, which keeps running."""
    journal = tmp_path / "journal"
    first = recorders.start(journal, nats_server.url)
    first.wait_ready()
    second = recorders.start(journal, nats_server.url)
    code, _took = failed_quickly(second)
    assert code == 1
    lines = error_lines(second)
    assert lines[0] == f"Error: journal {journal} is locked by process {first.pid}"
    assert lines[1].startswith("Hint: ")
    assert first.alive()
    assert first.get("/readyz") == (200, "ready\n")
    assert first.stop() == 0


def test_meshery_queue_group_is_refused_at_start(
    nats_server: Broker, recorders: Recorders, tmp_path: Path
) -> None:
    """RECORDER_QUEUE_GROUP=meshery is refused with exit 2 naming queue_group: it would steal Meshery's messages."""
    recorder = recorders.start(
        tmp_path / "journal", nats_server.url, env={"RECORDER_QUEUE_GROUP": "meshery"}
    )
    code, _took = failed_quickly(recorder)
    assert code == 2
    (line,) = error_lines(recorder)
    assert line.startswith("Error: queue_group: ")
    assert "RECORDER_QUEUE_GROUP" in line
    assert not (tmp_path / "journal").exists()


def test_recorders_sharing_their_own_queue_group_split_the_messages(
    nats_server: Broker, recorders: Recorders, tmp_path: Path
) -> None:
    """Two recorders in the same own queue group each record part of a subject's messages and together all of them, once."""
    env = {"RECORDER_QUEUE_GROUP": "meshsync-recorders"}
    pair = [recorders.start(tmp_path / f"journal-{i}", nats_server.url, env=env) for i in (1, 2)]
    for recorder in pair:
        recorder.wait_ready()
    sent = numbered(CORE_SUBJECT, 400)
    publish(nats_server.url, sent)
    wait_until(lambda: sum(r.written() for r in pair) >= len(sent), 10, "400 messages between two")
    for recorder in pair:
        assert recorder.stop() == 0
    shares = [messages_of(read_records(recorder.journal_dir)) for recorder in pair]
    assert all(share for share in shares), [len(share) for share in shares]
    counts = Counter(m.payload for share in shares for m in share)
    assert set(counts) == {m.payload for m in sent}
    assert set(counts.values()) == {1}
