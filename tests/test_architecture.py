"""The package layout's arrows: capabilities use the journal and the shared core, never each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "recorder"
CAPABILITIES = ("recording", "compact", "replay", "investigate", "archive")
# The applications tie capabilities together; nothing imports them but the CLI.
APPLICATIONS = ("cli", "demo")


def _layer(module: str) -> str:
    """`recorder.recording.bridge` -> `recording`; a module at the package root -> `core`."""
    if module == "recorder.__main__":  # `python -m recorder` is the CLI
        return "cli"
    parts = module.split(".")
    if len(parts) >= 2 and parts[1] in (*CAPABILITIES, *APPLICATIONS, "journal"):
        return parts[1]
    return "core"


def _allowed(source: str, target: str) -> bool:
    if source == target or target == "core":
        return True
    if source == "cli":
        return True
    if source == "demo":
        return target != "cli"
    if source in CAPABILITIES:
        return target == "journal"
    return False  # core and journal import nothing above them


def _module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return [name for name in found if name == "recorder" or name.startswith("recorder.")]


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p))
def test_imports_only_point_down(path: Path) -> None:
    """A module imports only its own package, the journal and the core, as its layer allows."""
    source = _layer(_module_name(path))
    wrong = [name for name in _imports(path) if not _allowed(source, _layer(name))]
    assert wrong == [], f"{_module_name(path)} ({source}) must not import {wrong}"


def test_every_capability_is_a_package() -> None:
    """Each capability and application has its own package directory."""
    for name in (*CAPABILITIES, *APPLICATIONS, "journal"):
        assert (PACKAGE / name / "__init__.py").is_file(), name


def test_the_layer_rule_itself() -> None:
    """Replay may not reach into recording, but the CLI and the demo may tie anything together."""
    assert not _allowed("replay", "recording")
    assert not _allowed("compact", "replay")
    assert not _allowed("core", "journal")
    assert _allowed("replay", "journal")
    assert _allowed("demo", "compact")
    assert not _allowed("demo", "cli")


def test_every_module_logs_through_the_subsystem_logger() -> None:
    """No module builds a structlog logger of its own, so every event carries its subsystem."""
    own = [
        _module_name(path)
        for path in MODULES
        if path.name != "log.py" and "structlog.get_logger(" in path.read_text(encoding="utf-8")
    ]
    assert own == []
