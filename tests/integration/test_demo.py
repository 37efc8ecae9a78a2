"""`recorder demo` runs the whole product for real, reports matching numbers, and leaves no process."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import pytest
from polling import wait_until
from run_helpers import http_get, parse_metrics, written_total

from recorder.cli.demo_command import report
from recorder.demo.run import DemoStats
from recorder.journal.reader import JournalReader
from recorder.journal.record import Message

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BOUND_S = 60.0


def clean_env() -> dict[str, str]:
    """This environment without settings that would leak into the demo's recorder."""
    return {key: value for key, value in os.environ.items() if not key.startswith("RECORDER_")}


def run_demo(argv: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a demo to its end; one that is still running after BOUND_S fails the test."""
    return subprocess.run(
        argv, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=BOUND_S
    )


def journaled(listen: str) -> int:
    """Messages the demo's recorder (HTTP on `listen`) has journaled so far; 0 if it is silent."""
    response = http_get(int(listen.rsplit(":", 1)[1]), "/metrics")
    return written_total(parse_metrics(response[1])) if response and response[0] == 200 else 0


def _default_sigint() -> None:
    """Pytest may run with SIGINT ignored (as a background job does): give the demo a Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def field(text: str, pattern: str) -> re.Match[str]:
    match = re.search(pattern, text, re.MULTILINE)
    assert match is not None, f"{pattern!r} not in the report:\n{text}"
    return match


def kind_table(text: str) -> dict[str, tuple[int, int]]:
    """The report's `kind  snapshot  simulator` rows."""
    return {
        match[1]: (int(match[2]), int(match[3]))
        for match in re.finditer(r"^  ([A-Z]\w+)\s+(\d+)\s+(\d+)$", text, re.MULTILINE)
    }


def process_gone(pid: int, *needles: str) -> bool:
    """No process `pid`, or (pid reused) one that is not ours: none of `needles` in its cmdline."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return True
    return not any(needle in cmdline for needle in needles)


def processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that contain `text` (the demo's directory, say)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


def assert_successful_report(
    result: subprocess.CompletedProcess[str], directory: Path, cwd: Path
) -> None:
    """Exit 0, published == recorded == the journal's messages, snapshot == truth, no children."""
    out = result.stdout
    assert result.returncode == 0, f"exit {result.returncode}\n{out}\n{result.stderr}"
    assert out.startswith("recorder demo: every check passed")
    published = int(field(out, r"^published\s+(\d+) messages")[1])
    recorded_line = field(out, r"^recorded\s+(\d+) messages in (\d+) segments")
    assert int(recorded_line[1]) == published > 0
    assert int(recorded_line[2]) >= 2  # small segments: the demo shows rotation
    re_lists = field(out, r"re-lists: (.*)$")[1]
    assert "informer-store" in re_lists and "resync-discovery" in re_lists
    kinds = kind_table(out)
    assert {"Namespace", "Deployment", "ReplicaSet", "Pod", "Service", "ConfigMap"} <= set(kinds)
    assert all(snapshot == truth > 0 for snapshot, truth in kinds.values()), kinds
    assert field(out, r"^snapshot\s+(\d+) objects, (\d+) differing")[2] == "0"
    replayed = field(out, r"^replayed\s+(\d+) messages.*received (\d+)$")
    assert int(replayed[1]) == int(replayed[2]) == min(100, published)
    assert "FAIL" not in out

    journal = directory / "journal"
    assert (cwd / field(out, r"^  journal\s+(\S+)$")[1]).resolve() == journal.resolve()
    assert (directory / "snapshot.yaml").stat().st_size > 0
    assert (directory / "recorder.log").is_file()
    messages = sum(isinstance(record, Message) for _, record in JournalReader(journal))
    assert messages == published

    broker_pid = int(field(out, r"^nats-server .* pid (\d+)")[1])
    recorder_pid = int(field(out, r"^recorder run .* pid (\d+)")[1])
    port = field(out, r"nats://127\.0\.0\.1:(\d+)")[1]
    assert process_gone(broker_pid, "nats-server")
    assert process_gone(recorder_pid, "recorder")
    assert processes_mentioning(str(journal)) == []
    assert [p for p in processes_mentioning(f"-p {port}") if "nats-server" in p] == []


def test_recorder_demo_records_compacts_replays_and_reports_matching_numbers(
    tmp_path: Path,
) -> None:
    """The console script's demo ends within the bound with every count matching."""
    directory = tmp_path / "demo"
    result = run_demo([str(BIN / "recorder"), "demo", "--dir", str(directory)], tmp_path)
    assert_successful_report(result, directory, tmp_path)
    # Structured events on stderr, one per step.
    events = [json.loads(line)["event"] for line in result.stderr.splitlines()]
    assert events[0] == "demo_traffic_generated" and events[-1] == "demo_finished"
    assert {"demo_recorder_ready", "demo_recorder_stopped", "demo_replayed"} <= set(events)


def test_python_m_recorder_demo_with_options_and_no_keep(tmp_path: Path) -> None:
    """`python -m recorder demo` honours --events, --seconds and --no-keep (files removed)."""
    directory = tmp_path / "demo"
    argv = [sys.executable, "-m", "recorder", "demo", "--dir", str(directory)]
    argv += ["--events", "600", "--seconds", "2", "--no-keep"]
    result = run_demo(argv, tmp_path)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert field(result.stdout, r"^published\s+(\d+) messages")[1] == "600"
    assert field(result.stdout, r"^recorded\s+(\d+) messages")[1] == "600"
    assert "removed the demo's files" in result.stdout
    assert not directory.exists()
    recorder_pid = int(field(result.stdout, r"^recorder run .* pid (\d+)")[1])
    assert process_gone(recorder_pid, "recorder")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_demo_stops_its_processes_and_leaves_a_sealed_journal(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """Ctrl-C or SIGTERM mid-publish: exit 130, broker and recorder gone, journal verifies."""
    directory = tmp_path / "demo"
    argv = [str(BIN / "recorder"), "--log-format", "json", "demo", "--dir", str(directory)]
    proc = subprocess.Popen(
        argv,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )
    pids: dict[str, int] = {}
    listen = ""
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            event = json.loads(line)
            if event["event"] == "demo_broker_started":
                pids["broker"] = event["pid"]
            elif event["event"] == "demo_recorder_started":
                listen = event["http"]
            elif event["event"] == "demo_recorder_ready":
                pids["recorder"] = event["pid"]
                # In the middle of publishing: the recorder has journaled its first messages.
                wait_until(partial(journaled, listen), BOUND_S, "the first message journaled")
                proc.send_signal(sig)
                break
        assert proc.wait(timeout=30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert process_gone(pids["broker"], "nats-server")
    assert process_gone(pids["recorder"], "recorder")
    verify = subprocess.run(
        [str(BIN / "recorder"), "verify", str(directory / "journal")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_a_directory_with_files_in_it_is_refused_before_anything_starts(tmp_path: Path) -> None:
    """The demo's counts only hold for a journal of its own: a non-empty --dir is a usage error."""
    (tmp_path / "something").write_text("x")
    result = run_demo([str(BIN / "recorder"), "demo", "--dir", str(tmp_path)], tmp_path)
    assert result.returncode == 2
    assert "--dir" in result.stderr and "not an empty directory" in result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["something"]


def test_a_failed_check_makes_the_report_say_so() -> None:
    """One recorded message short is a failed check: `ok` is false and the report shows FAIL."""
    stats = DemoStats(Path("d"), Path("d/journal"), Path("d/snapshot.yaml"), Path("d/log"))
    stats.published, stats.recorded, stats.recorded_identical = 10, 9, False
    stats.recorder_exit, stats.replay_sent, stats.replay_received = 0, 9, 9
    stats.snapshot_per_kind = stats.truth_per_kind = {"Pod": 3}
    assert not stats.ok
    assert [check.name for check in stats.checks if not check.ok] == ["recorded == published"]
    text = "\n".join(report(stats))
    assert text.startswith("recorder demo: SOME CHECKS FAILED")
    assert "FAIL  recorded == published: 9 of 10, payloads differ" in text


def readme_demo_line() -> str:
    """The first line of a fenced `sh` block in README.md that runs `recorder demo`."""
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    blocks = re.findall(r"^```(?:sh|bash|shell)[ \t]*\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    line = next((line for line in lines if "recorder demo" in line), None)
    if line is None:
        pytest.skip("README.md has no fenced sh block with a `recorder demo` command yet")
    return line.removeprefix("$ ")


def test_readme_demo_command_runs_as_written(tmp_path: Path) -> None:
    """The README's demo line installs an extra that exists and its demo command succeeds."""
    parts = [part.strip() for part in readme_demo_line().split("&&")]
    *setup, command = parts
    extras = {"embedded"}
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    installs = [part for part in setup if "pip install" in part]
    assert installs, f"the README line installs nothing: {parts}"
    groups = [group for part in installs for group in re.findall(r"\[([\w,-]+)\]", part)]
    named = {extra.strip() for group in groups for extra in group.split(",")}
    assert extras <= named, f"the README install does not name the extras {extras}: {installs}"
    assert named <= set(declared["optional-dependencies"]), "the README names an unknown extra"
    argv = shlex.split(command)
    assert argv[0] == ".venv/bin/recorder" and argv[1] == "demo", command
    # Run from a fresh directory (the default ./recorder-demo-* lands there) with our venv's
    # console script standing in for the one the README's install would create.
    argv[0] = str(BIN / "recorder")
    result = run_demo(argv, tmp_path)
    created = list(tmp_path.glob("recorder-demo-*"))
    assert len(created) == 1, f"{created}\n{result.stdout}\n{result.stderr}"
    assert_successful_report(result, created[0], tmp_path)
