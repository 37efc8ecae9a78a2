"""Start-up: the CLI imports what a command needs inside that command, never everything up front.

Checked on the import graph in a fresh interpreter, not on a clock (bench/startup.py times it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from test_cli import make_journal
from typer.core import TyperGroup

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
# Reading a journal needs the journal package, and nothing above it: no other command's
# module, no zstd for uncompressed segments, no JSON, no hashlib (temporary names).
HEAVY_FOR_INSPECT = (
    *(name for name in HEAVY if name != "importlib.metadata"),
    "recorder.cli.compact_command",
    "recorder.cli.replay_command",
    "recorder.cli.run_command",
    "recorder.cli.demo_command",
    "recorder.cli.diff_command",
    "recorder.cli.config_commands",
    "zstandard",
    "orjson",
    "secrets",
    "tempfile",
)

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


def test_version_loads_no_command_module() -> None:
    """`recorder version` builds its own command only: no other command's module is imported."""
    loaded = loaded_after(RUN_MAIN.format(argv=["version"]))
    commands = {name for name in loaded if name.startswith("recorder.cli.") and "_command" in name}
    assert sorted(commands) == []


def test_the_command_table_names_every_command_and_its_module() -> None:
    """COMMAND_MODULES, which loads a command's module on demand, matches what the modules
    register once all are imported: a new command missing from it would be unreachable."""
    from recorder.cli.app import COMMAND_MODULES, app, load_commands

    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    load_commands(group)
    assert sorted(group.commands) == sorted(COMMAND_MODULES)
    for info in app.registered_commands:
        assert info.callback is not None
        name = info.name or typer.main.get_command_name(info.callback.__name__)
        assert info.callback.__module__ == f"recorder.cli.{COMMAND_MODULES[name]}", name
