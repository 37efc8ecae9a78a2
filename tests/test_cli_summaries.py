"""A command's summary is said once, in one place, the same way for every command.

`-o json`: the document on stdout and nothing more. JSON log mode (asked for, or auto with
stderr not a terminal): one `<command>_summary` log record with the document's facts, and
stderr holds JSON lines only. Console logs: the lines for people on stderr.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_streams import human_lines, log_records, summary_event
from test_cli import make_journal

SCRIPT = str(Path(sys.executable).with_name("recorder"))
# The commands whose summary goes to stderr (stdout may be data); each with the record it becomes.
SUMMARIES = {
    "compact": ("compact_summary", ["--out", "{tmp}/s.yaml"]),
    "replay": ("replay_summary", ["--dry-run", "--nats-url", "nats://127.0.0.1:1"]),
}


def recorder(*args: str | Path, log_format: str | None) -> subprocess.CompletedProcess[str]:
    """The console script in its own process, stdout and stderr on pipes."""
    flags = [] if log_format is None else ["--log-format", log_format]
    return subprocess.run(
        [SCRIPT, *flags, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    make_journal(tmp_path / "journal")
    return tmp_path / "journal"


def command_line(command: str, journal: Path, tmp: Path) -> list[str]:
    _event, args = SUMMARIES[command]
    return [command, str(journal), *(arg.format(tmp=tmp) for arg in args)]


@pytest.mark.parametrize("log_format", ["json", None], ids=["json", "auto-on-a-pipe"])
@pytest.mark.parametrize("command", sorted(SUMMARIES))
def test_json_logs_carry_the_summary_as_one_record_and_nothing_else(
    journal: Path, tmp_path: Path, command: str, log_format: str | None
) -> None:
    """In JSON log mode stderr is JSON lines only, the summary among them exactly once."""
    result = recorder(*command_line(command, journal, tmp_path), log_format=log_format)
    assert result.returncode == 0, result.stderr
    assert human_lines(result.stderr) == []
    assert len(log_records(result.stderr)) == len(result.stderr.splitlines())
    event, _args = SUMMARIES[command]
    assert summary_event(result.stderr, event)


@pytest.mark.parametrize("command", sorted(SUMMARIES))
def test_dash_o_json_is_the_summary_and_no_record_repeats_it(
    journal: Path, tmp_path: Path, command: str
) -> None:
    """With `-o json` the document on stdout is the summary: the log has no summary record,
    and the document holds the same facts the record would have."""
    argv = command_line(command, journal, tmp_path)
    as_document = recorder(*argv, "-o", "json", log_format="json")
    assert as_document.returncode == 0, as_document.stderr
    event, _args = SUMMARIES[command]
    assert [r for r in log_records(as_document.stderr) if r["event"] == event] == []
    assert human_lines(as_document.stderr) == []
    as_record = recorder(*argv, log_format="json")
    assert json.loads(as_document.stdout) == summary_event(as_record.stderr, event)


@pytest.mark.parametrize("command", sorted(SUMMARIES))
def test_console_logs_get_the_summary_for_people(
    journal: Path, tmp_path: Path, command: str
) -> None:
    """With console logs, the summary is text on stderr and no JSON at all."""
    result = recorder(*command_line(command, journal, tmp_path), log_format="console")
    assert result.returncode == 0, result.stderr
    assert human_lines(result.stderr)
    assert log_records(result.stderr) == []


def test_report_says_what_it_wrote_once(journal: Path, tmp_path: Path) -> None:
    """`report` names the file it wrote: a record in JSON log mode, a line with console logs."""
    out = tmp_path / "r.html"
    as_json = recorder("report", journal, "--out", out, log_format="json")
    assert as_json.returncode == 0, as_json.stderr
    assert summary_event(as_json.stderr, "report_written") == {"out": str(out)}
    assert human_lines(as_json.stderr) == []
    as_text = recorder("report", journal, "--out", out, log_format="console")
    assert human_lines(as_text.stderr) == [f"wrote {out}"]


def test_a_gap_is_warned_about_once(tmp_path: Path) -> None:
    """A missing segment compacted with --allow-gaps: one `journal_gap` record, not one from the
    library and another from the CLI; with console logs, one `warning:` line."""
    journal = tmp_path / "journal"
    make_journal(journal, segments=3)
    (journal / "00000002.seg").unlink()
    args = ["compact", journal, "--out", tmp_path / "s.yaml", "--allow-gaps"]
    as_json = recorder(*args, log_format="json")
    assert as_json.returncode == 0, as_json.stderr
    gaps = [r for r in log_records(as_json.stderr) if r["event"] == "journal_gap"]
    assert len(gaps) == 1
    assert gaps[0]["inside"] is True
    assert summary_event(as_json.stderr, "compact_summary")["gaps"] == [
        {"gap": gaps[0]["gap"], "inside": True}
    ]
    as_text = recorder(*args, log_format="console")
    assert as_text.returncode == 0, as_text.stderr
    warnings = [line for line in human_lines(as_text.stderr) if line.startswith("warning:")]
    assert warnings == [f"warning: {journal}: {gaps[0]['gap']}"]
    assert "journal_gap" not in as_text.stderr
