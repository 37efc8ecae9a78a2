"""Logging: events carry their subsystem, render as JSON lines off a terminal, and hide secrets."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from recorder.errors import ConfigError
from recorder.log import (
    SafeStream,
    configure_logging,
    get_logger,
    log_write_errors,
    mask_secrets,
    reset_logging,
)


class _Terminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Leave structlog and the root logger as they were for the next test."""
    try:
        yield
    finally:
        reset_logging()


def _json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_events_carry_their_subsystem_and_facts() -> None:
    """get_logger binds the subsystem, and events keep their static name and key-values."""
    log = get_logger("journal")
    with capture_logs() as events:
        log.info("segment_rotated", segment=7, bytes=1024)
    assert events == [
        {"event": "segment_rotated", "subsystem": "journal", "segment": 7, "bytes": 1024,
         "log_level": "info"}
    ]  # fmt: skip


def test_json_lines_when_the_stream_is_not_a_terminal() -> None:
    """With format auto and a non-terminal stream, each event is one JSON object on one line."""
    stream = io.StringIO()
    configure_logging("info", "auto", stream)
    log = get_logger("bridge")
    log.info("connected", url="nats://127.0.0.1:4222")
    log.warning("note", text="two\nlines")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("write_failed")
    lines = _json_lines(stream)
    assert [line["event"] for line in lines] == ["connected", "note", "write_failed"]
    assert [line["level"] for line in lines] == ["info", "warning", "error"]
    assert lines[1]["text"] == "two\nlines"
    assert lines[2]["exception"][0]["exc_value"] == "boom"
    stamp = datetime.fromisoformat(lines[0]["timestamp"])
    assert stamp.utcoffset() == timedelta(0)
    assert all(line["subsystem"] == "bridge" for line in lines)


def test_loggers_made_before_configuration_follow_it() -> None:
    """A module-level logger created before configure_logging obeys the configured level."""
    log = get_logger("daemon")
    stream = io.StringIO()
    configure_logging("warning", "json", stream)
    log.info("hidden")
    log.warning("shown")
    assert [line["event"] for line in _json_lines(stream)] == ["shown"]


def test_json_format_is_forced_on_a_terminal() -> None:
    """format json writes JSON even when the stream is a terminal."""
    stream = _Terminal()
    configure_logging("info", "json", stream)
    get_logger("cli").info("started")
    assert _json_lines(stream)[0]["event"] == "started"


@pytest.mark.parametrize(("kind", "fmt"), [(_Terminal, "auto"), (io.StringIO, "console")])
def test_console_format_on_a_terminal_or_when_asked(kind: type[io.StringIO], fmt: str) -> None:
    """A terminal with format auto, or format console, gets readable single-line text."""
    stream = kind()
    configure_logging("info", fmt, stream)
    get_logger("cli").info("started", segment=3)
    text = stream.getvalue()
    assert "started" in text
    assert "segment" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_plain_console_output_has_no_colour_codes() -> None:
    """Console output to a non-terminal carries no ANSI escape sequences."""
    stream = io.StringIO()
    configure_logging("info", "console", stream)
    get_logger("cli").info("started")
    assert "\x1b[" not in stream.getvalue()


def test_secret_looking_keys_are_masked() -> None:
    """Passwords, tokens, seeds, creds and URL passwords become ***; file paths stay readable."""
    event = {"event": "connecting", "password": "hunter2", "auth_token": "t", "nkey_seed": "S",
             "creds": "c", "creds_file": "/etc/x.creds", "user": "u", "token": None,
             "url": "nats://u:hunter2@host:4222", "options": {"password": "p", "name": "n"}}  # fmt: skip
    assert mask_secrets(None, "info", event) == {
        "event": "connecting", "password": "***", "auth_token": "***", "nkey_seed": "***",
        "creds": "***", "creds_file": "/etc/x.creds", "user": "u", "token": None,
        "url": "nats://u:***@host:4222", "options": {"password": "***", "name": "n"},
    }  # fmt: skip


def test_counts_under_secret_looking_names_are_kept() -> None:
    """A count of objects of kind Secret is a number, not a secret: summaries keep it."""
    event = {"event": "compact_summary", "per_kind": {"Secret": 4, "Pod": 2}, "token": 7}
    assert mask_secrets(None, "info", event) == event


def test_rendered_logs_never_contain_secrets() -> None:
    """Secrets passed as values or held in a traceback's locals never reach the output."""
    stream = io.StringIO()
    configure_logging("debug", "json", stream)
    log = get_logger("bridge")

    def connect(password: str) -> None:
        raise ConnectionError("refused")

    try:
        connect("hunter2")
    except ConnectionError:
        log.exception("connect_failed", password="hunter2")
    assert "hunter2" not in stream.getvalue()
    assert _json_lines(stream)[0]["password"] == "***"


def test_stdlib_records_are_rendered_the_same_way() -> None:
    """Records from stdlib logging (nats-py, asyncio) come out as JSON lines too."""
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    logging.getLogger("nats.aio.client").error("lost %s", "connection")
    (line,) = _json_lines(stream)
    assert (line["event"], line["logger"], line["level"]) == (
        "lost connection",
        "nats.aio.client",
        "error",
    )


@pytest.mark.parametrize(("level", "fmt", "field"), [("loud", "auto", "log.level"),
                                                     ("info", "xml", "log.format")])  # fmt: skip
def test_unknown_level_or_format_is_a_config_error(level: str, fmt: str, field: str) -> None:
    """configure_logging rejects an unknown level or format naming the setting."""
    with pytest.raises(ConfigError) as caught:
        configure_logging(level, fmt, io.StringIO())
    assert caught.value.field == field


def _lost_after(stream: Any, lines: int) -> int:
    """Lost-line count after logging `lines` events to `stream` (std and structlog both)."""
    configure_logging("info", "json", stream=stream)
    before = log_write_errors()
    for number in range(lines):
        get_logger("test").info("ping", number=number)
    logging.getLogger("nats").warning("stdlib ping")
    return log_write_errors() - before


def test_a_pipe_whose_reader_left_loses_lines_without_raising() -> None:
    """Writing to a pipe with no reader (EPIPE) neither raises nor stops the caller: each line is counted as lost."""
    reader, writer = os.pipe()
    os.close(reader)
    stream = os.fdopen(writer, "w")
    try:
        assert _lost_after(stream, 3) == 4
    finally:
        with contextlib.suppress(OSError):  # the unwritten lines are still in its buffer
            stream.close()


def test_a_full_device_loses_lines_and_is_tried_again() -> None:
    """ENOSPC (/dev/full) may pass, so every later line is tried and counted, not given up."""
    stream = open("/dev/full", "w")  # noqa: SIM115 - a device, closed below
    try:
        assert _lost_after(stream, 5) == 6
    finally:
        with contextlib.suppress(OSError):
            stream.close()


def test_a_closed_or_missing_stream_loses_lines_without_raising() -> None:
    """A closed file object (ValueError) or none at all (stderr closed at start) is counted too."""
    closed = io.StringIO()
    closed.close()
    assert _lost_after(closed, 2) == 3
    assert SafeStream(None).write("x\n") == 0
