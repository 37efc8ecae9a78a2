"""`recorder config show` and `recorder config check`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from recorder.cli.app import app
from recorder.config import Config, check_files, config_to_yaml, load_config

config_app = typer.Typer(help="Show or check the effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")

ConfigFile = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML config file (default: RECORDER_CONFIG)."),
]


def load_effective_config(path: Path | None, overrides: dict[str, object] | None = None) -> Config:
    """Defaults, then the file (flag or RECORDER_CONFIG), then RECORDER_* variables, then flags."""
    env_path = os.environ.get("RECORDER_CONFIG")
    chosen = path or (Path(env_path) if env_path else None)
    return load_config(chosen, os.environ, overrides or {})


@config_app.command("show")
def show(config: ConfigFile = None) -> None:
    """Print the effective configuration, secrets masked."""
    typer.echo(config_to_yaml(load_effective_config(config), mask_secrets=True), nl=False)


@config_app.command("check")
def check(config: ConfigFile = None) -> None:
    """Validate the configuration and the files it names; exit 2 naming the bad field."""
    cfg = load_effective_config(config)
    check_files(cfg)
    typer.echo("configuration is valid")
