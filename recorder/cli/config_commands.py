"""`recorder config show` and `recorder config check`."""

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from recorder.cli.app import CliTyper, app
from recorder.cli.render import examples
from recorder.errors import UsageError
from recorder.units import mask_url

if TYPE_CHECKING:
    from recorder.config import Config

config_app = CliTyper(
    help="Show or check the effective configuration.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(config_app, name="config")

ConfigFile = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML config file (default: RECORDER_CONFIG)."),
]


def urls_from_flag(urls: list[str] | None) -> list[str] | None:
    """`--nats-url` values, refusing credentials: a command line is readable by every user (ps)."""
    for url in urls or ():
        if mask_url(url) != url:
            raise UsageError(
                f"--nats-url {mask_url(url)}: credentials on the command line are visible to "
                "every user of the host",
                hint="put the URL in RECORDER_NATS_URL or the config file (mode 0600), or give "
                "nats.user with nats.password_file",
            )
    return list(urls) if urls else None


def chosen_config_file(path: Path | None) -> Path | None:
    """The config file in effect: the flag's, else RECORDER_CONFIG's, else none."""
    env_path = os.environ.get("RECORDER_CONFIG")
    return path or (Path(env_path) if env_path else None)


def load_effective_config(
    path: Path | None, overrides: dict[str, object] | None = None
) -> "Config":
    """Defaults, then the file (flag or RECORDER_CONFIG), then RECORDER_* variables, then flags."""
    from recorder.config import load_config

    return load_config(chosen_config_file(path), os.environ, overrides or {})


@config_app.command(
    "show",
    epilog=examples(
        "recorder config show --config /etc/recorder/config.yaml",
        "RECORDER_NATS_URL=nats://broker:4222 recorder config show",
    ),
)
def show(config: ConfigFile = None) -> None:
    """Print the effective configuration, secrets masked."""
    from recorder.config import config_to_yaml

    typer.echo(config_to_yaml(load_effective_config(config), mask_secrets=True), nl=False)


@config_app.command(
    "check",
    epilog=examples(
        "recorder config check --config /etc/recorder/config.yaml",
        "RECORDER_CONFIG=config.yaml recorder config check && systemctl restart recorder",
    ),
)
def check(config: ConfigFile = None) -> None:
    """Validate the configuration and the files it names; exit 2 naming the bad field."""
    from recorder.config import check_files

    cfg = load_effective_config(config)
    check_files(cfg)
    typer.echo("configuration is valid")


def reference_table() -> str:
    """Every setting as a Markdown table: key, environment variables, default."""
    from recorder.config import ENV_VARS, LEAVES, config_to_dict, load_config

    defaults = _flatten(config_to_dict(load_config(None, {}, {}), mask_secrets=True))
    variables: dict[str, list[str]] = {}
    for name, key in ENV_VARS.items():
        variables.setdefault(key, []).append(name)
    rows = ["| key | environment | default |", "|---|---|---|"]
    for key in LEAVES:
        names = ", ".join(f"`{name}`" for name in sorted(variables.get(key, []), key=len))
        rows.append(f"| `{key}` | {names} | `{_shown(defaults.get(key))}` |")
    return "\n".join(rows) + "\n"


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def _shown(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


@config_app.command(
    "reference",
    epilog=examples(
        "recorder config reference",
        "recorder config reference > docs/settings.md",
    ),
)
def reference() -> None:
    """Print every setting with its environment variables and default, as a Markdown table."""
    typer.echo(reference_table(), nl=False)
