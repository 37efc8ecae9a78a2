"""Reading a command's stderr: the lines for people, and the summary a JSON log mode carries."""

from __future__ import annotations

import json
import re
from typing import Any

# A console log line starts with its ISO timestamp and the level in brackets.
_CONSOLE_LOG = re.compile(r"^\d{4}-\d\d-\d\dT\S+ \[")
_LOG_KEYS = ("event", "level", "timestamp", "subsystem")


def human_lines(stderr: str) -> list[str]:
    """stderr without log lines, JSON or console: summaries, warnings, `Error:` and `Hint:`."""
    return [
        line
        for line in stderr.splitlines()
        if line and not line.startswith("{") and not _CONSOLE_LOG.match(line)
    ]


def log_records(stderr: str) -> list[dict[str, Any]]:
    """Every JSON log line of stderr, parsed."""
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def summary_event(stderr: str, event: str) -> dict[str, Any]:
    """The facts of the one `event` record a command's summary became in JSON log mode."""
    found = [record for record in log_records(stderr) if record.get("event") == event]
    assert len(found) == 1, stderr
    return {key: value for key, value in found[0].items() if key not in _LOG_KEYS}
