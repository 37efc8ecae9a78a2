"""Help and output conventions: -h and --version, DIR, examples, `-o json`, sizes, completion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_cli import make_journal, run_cli

from recorder import __version__
from recorder.journal.maintenance import inspect_journal
from recorder.log import reset_logging
from recorder.units import human_size

# Every command, as the words that name it.
COMMANDS = [
    ["compact"],
    ["completion"],
    ["demo"],
    ["dump"],
    ["health"],
    ["inspect"],
    ["repair"],
    ["replay"],
    ["restore"],
    ["run"],
    ["verify"],
    ["version"],
    ["config", "show"],
    ["config", "check"],
    ["config", "reference"],
]


@pytest.fixture(autouse=True)
def _restore_logging() -> object:
    """The CLI points logging at capsys' stderr, which is gone after the test."""
    yield
    reset_logging()


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    """Run a command with `-o json`; its stdout must be exactly one JSON document."""
    code, out, err = run_cli(capsys, *args, "-o", "json")
    assert code in (0, 1), err
    return code, json.loads(out)


def test_dash_h_and_dash_dash_version_are_there(capsys: pytest.CaptureFixture[str]) -> None:
    """`-h` is `--help`, and `--version` prints what `version` prints."""
    _, long_help, _ = run_cli(capsys, "--help")
    _, short_help, _ = run_cli(capsys, "-h")
    assert short_help == long_help
    assert "-h, --help" in long_help
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0
    assert out == f"meshsync-recorder {__version__}\n" == run_cli(capsys, "version")[1]


@pytest.mark.parametrize("words", COMMANDS, ids=" ".join)
def test_every_command_help_ends_with_examples(
    capsys: pytest.CaptureFixture[str], words: list[str]
) -> None:
    """Each command's help shows its argument as a word (DIR) and ends with 2-3 examples."""
    code, out, _ = run_cli(capsys, *words, "-h")
    assert code == 0
    usage = out.splitlines()[0]
    assert "{" not in usage, usage
    if words[0] in ("compact", "dump", "inspect", "repair", "verify"):
        assert usage.endswith(" DIR"), usage
    tail = out.rstrip("\n").split("Examples:\n")[-1].splitlines()
    assert "Examples:" in out
    assert 2 <= len(tail) <= 3, out
    assert all("recorder " in line for line in tail), tail


def test_top_level_help_stands_in_for_a_man_page(capsys: pytest.CaptureFixture[str]) -> None:
    """`recorder -h` lists commands by task, the environment, the exit codes and examples."""
    _, out, _ = run_cli(capsys, "-h")
    for part in ("Commands by task:", "Environment:", "RECORDER_CONFIG", "Exit codes:"):
        assert part in out
    assert "--install-completion" in out


def test_inspect_json_is_one_document_with_totals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`inspect -o json` gives every segment and totals that add up."""
    make_journal(tmp_path / "j", segments=3)
    code, document = cli_json(capsys, "inspect", str(tmp_path / "j"))
    assert code == 0
    segments, totals = document["segments"], document["totals"]
    assert [s["name"] for s in segments] == [info.name for info in inspect_journal(tmp_path / "j")]
    assert totals["segments"] == 3
    assert totals["records"] == sum(s["records"] for s in segments)
    assert totals["bytes"] == sum(s["bytes"] for s in segments)
    assert totals["first_seq"] == 1
    assert totals["last_seq"] == segments[-1]["last_seq"]


def test_verify_json_reports_problems_and_exits_like_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`verify -o json` says clean or lists problems and gaps, exiting 0 or 1 as in text mode."""
    make_journal(tmp_path / "j", segments=3)
    code, clean = cli_json(capsys, "verify", str(tmp_path / "j"))
    assert (code, clean["clean"], clean["problems"], clean["gaps"]) == (0, True, [], [])
    (tmp_path / "j" / "00000002.seg").unlink()
    code, broken = cli_json(capsys, "verify", str(tmp_path / "j"))
    assert (code, broken["clean"]) == (1, False)
    assert broken["gaps"] == [{"first": 2, "last": 2}]
    assert broken["problems"][0]["reason"] == "segments 2..2 are missing"


def test_compact_json_summary_on_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`compact -o json` prints its summary as JSON on stdout and writes the snapshot file."""
    make_journal(tmp_path / "j")
    code, document = cli_json(capsys, "compact", str(tmp_path / "j"), "--out", str(tmp_path / "s"))
    assert code == 0
    assert document["read"]["messages"] == 6
    assert document["outputs"] == [str(tmp_path / "s")]
    assert document["objects"]["written"] == 0  # make_journal's payloads are not MeshSync objects
    assert (tmp_path / "s").is_file()


def test_compact_json_and_stdout_snapshot_cannot_share_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`-o json` with `--out -` is refused before reading: both would be on stdout."""
    make_journal(tmp_path / "j")
    code, out, err = run_cli(capsys, "compact", str(tmp_path / "j"), "--out", "-", "-o", "json")
    assert (code, out) == (2, "")
    assert err.startswith("Error: --output json and --out - would both write to stdout")


def test_replay_dry_run_json_counts_per_subject(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`replay --dry-run -o json` gives the count, bytes and mapped subjects, and connects nowhere."""
    make_journal(tmp_path / "j")
    code, document = cli_json(
        capsys, "replay", str(tmp_path / "j"), "--dry-run", "--subject-prefix", "copy"
    )
    assert code == 0
    assert document["dry_run"] is True
    assert document["messages"] == 6
    assert document["subjects"] == {
        "copy.meshery.meshsync.core": 2,
        "copy.meshery.meshsync.request": 2,
        "copy.other.binary": 2,
    }
    assert document["bytes"] == 2 * (7 + 2 + 3)


def test_an_unknown_output_format_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`-o yaml` exits 2 naming --output."""
    make_journal(tmp_path / "j")
    code, _, err = run_cli(capsys, "inspect", str(tmp_path / "j"), "-o", "yaml")
    assert code == 2
    assert err == "Error: --output: must be text or json, got 'yaml'\n"


@pytest.mark.parametrize(
    ("size", "shown"),
    [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"), (1024**2, "1.0 MiB")],
)
def test_sizes_are_shown_one_way(size: int, shown: str) -> None:
    """Byte counts for people are binary units with one decimal: `1.0 MiB`."""
    assert human_size(size) == shown


def test_inspect_and_replay_print_sizes_the_same_way(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The inspect table and the replay summary both use human_size."""
    make_journal(tmp_path / "j", segments=1)
    size = sum(info.bytes for info in inspect_journal(tmp_path / "j"))
    _, out, _ = run_cli(capsys, "inspect", str(tmp_path / "j"))
    assert f"  {human_size(size)}  " in out.splitlines()[-1]
    _, _, err = run_cli(capsys, "replay", str(tmp_path / "j"), "--dry-run", log_format="console")
    assert err.startswith(f"would send 3 messages ({human_size(7 + 2 + 3)})")


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_for_each_shell(capsys: pytest.CaptureFixture[str], shell: str) -> None:
    """`recorder completion SHELL` prints a script that calls back into `recorder`."""
    code, out, _ = run_cli(capsys, "completion", shell)
    assert code == 0
    assert "_RECORDER_COMPLETE=complete_" + shell in out


def test_bash_completion_completes_a_command_name(tmp_path: Path) -> None:
    """Sourced into a real bash, the script completes `recorder ins` to `inspect`."""
    bin_dir = str(Path(sys.executable).parent)
    script = (
        'eval "$(recorder completion bash)"; COMP_WORDS=(recorder ins); COMP_CWORD=1; '
        '_recorder_completion recorder; echo "${COMPREPLY[@]}"'
    )
    result = subprocess.run(
        ["bash", "--norc", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"},
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["inspect"]
