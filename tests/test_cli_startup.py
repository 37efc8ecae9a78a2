"""Start-up: the CLI imports what a command needs inside that command, never everything up front.

Checked on the import graph in a fresh interpreter, not on a clock (bench/startup.py times it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli import make_journal

# What no command needs just to parse its arguments: the NATS client, rich, structlog, YAML,
# asyncio, obstore, and every capability package (the demo and its simulator included).
HEAVY = (
    "nats",
    "rich",
    "structlog",
    "yaml",
    "asyncio",
    "importlib.metadata",
    "recorder.config",
    "recorder.demo",
    "recorder.demo.simulator",
    "recorder.recording",
    "recorder.compact",
    "recorder.replay",
    "recorder.investigate",
    "recorder.archive",
    "obstore",
)
# Reading a journal needs the journal package, and nothing above it.
HEAVY_FOR_INSPECT = tuple(name for name in HEAVY if name != "importlib.metadata")

PROBE = """
import json, sys
{body}
print(json.dumps(sorted(sys.modules)))
"""
RUN_MAIN = """
from recorder.cli import main
try:
    main({argv!r})
except SystemExit as exc:
    assert exc.code in (None, 0), exc.code
"""


def loaded_after(body: str) -> set[str]:
    """The modules a fresh interpreter holds after running `body`."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(body=body)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_importing_the_cli_loads_no_command_dependencies() -> None:
    """`import recorder.cli` loads none of nats-py, rich, structlog, YAML, the demo or simulator."""
    loaded = loaded_after("import recorder.cli")
    assert "recorder.cli" in loaded
    assert sorted(loaded & set(HEAVY)) == []


@pytest.mark.parametrize("argv", [["--help"], ["version"], ["compact", "--help"]])
def test_help_and_version_load_no_command_dependencies(argv: list[str]) -> None:
    """Printing help or the version (help drawn without rich) loads nothing heavy either."""
    loaded = loaded_after(RUN_MAIN.format(argv=argv))
    assert sorted(loaded & set(HEAVY)) == []


def test_inspect_loads_the_journal_and_nothing_above_it(tmp_path: Path) -> None:
    """`recorder inspect DIR` reads segments without loading logging, NATS or other capabilities."""
    make_journal(tmp_path / "journal")
    loaded = loaded_after(RUN_MAIN.format(argv=["inspect", str(tmp_path / "journal")]))
    assert "recorder.journal.maintenance" in loaded
    assert sorted(loaded & set(HEAVY_FOR_INSPECT)) == []
