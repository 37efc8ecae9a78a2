"""`recorder run`: the recording daemon."""

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from recorder.cli.app import app
from recorder.cli.config_commands import (
    ConfigFile,
    chosen_config_file,
    load_effective_config,
    urls_from_flag,
)
from recorder.cli.render import examples, notice
from recorder.log import get_logger

if TYPE_CHECKING:
    from recorder.config import Config
    from recorder.recording.daemon import SegmentShipper


@app.command(
    epilog=examples(
        "recorder run --nats-url nats://127.0.0.1:4222 --journal-dir /var/lib/recorder",
        "recorder run --config /etc/recorder/config.yaml",
        "recorder run --embedded-broker --journal-dir ./journal --http-listen 127.0.0.1:9464",
    )
)
def run(
    ctx: typer.Context,
    config: ConfigFile = None,
    nats_url: Annotated[
        list[str] | None, typer.Option("--nats-url", help="Broker URL, repeatable.")
    ] = None,
    subject: Annotated[
        list[str] | None, typer.Option("--subject", help="Subject or pattern, repeatable.")
    ] = None,
    journal_dir: Annotated[
        Path | None,
        typer.Option(
            help="Journal directory; created 0700, or tightened to 0700 (with a warning) "
            "when it exists with group or world access."
        ),
    ] = None,
    fsync: Annotated[str | None, typer.Option(help="always, interval or never.")] = None,
    mode: Annotated[str | None, typer.Option(help="core or jetstream.")] = None,
    http_listen: Annotated[
        str | None, typer.Option(help="HOST:PORT for /metrics, /healthz, /readyz; off to disable.")
    ] = None,
    embedded_broker: Annotated[
        bool | None,
        typer.Option(
            "--embedded-broker/--no-embedded-broker",
            help="Start a local nats-server on loopback and record from it.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Record MeshSync traffic from a NATS broker into the journal until stopped."""
    from recorder.demo.embedded import EmbeddedBroker
    from recorder.log import configure_logging
    from recorder.recording.daemon import run_daemon

    overrides: dict[str, object] = {
        "nats.urls": urls_from_flag(nats_url),
        "subjects": repeated(subject),
        "journal.dir": str(journal_dir) if journal_dir else None,
        "journal.fsync": fsync,
        "mode": mode,
        "http.listen": http_listen,
        "embedded_broker": embedded_broker,
        **(ctx.obj or {}),
    }
    cfg = load_effective_config(config, overrides)
    configure_logging(cfg.log.level, cfg.log.format)
    warn_exposed_secrets(cfg, chosen_config_file(config))
    with contextlib.ExitStack() as stack:
        if cfg.embedded_broker:
            broker = stack.enter_context(EmbeddedBroker(jetstream=cfg.mode == "jetstream"))
            overrides["nats.urls"] = [broker.url]
            overrides["jetstream.create_stream"] = True if cfg.mode == "jetstream" else None
            cfg = load_effective_config(config, overrides)
            message = f"embedded broker listening on {broker.url}"
            notice("embedded_broker_listening", message, url=broker.url)
        result = run_daemon(cfg, os.environ, _archiver(cfg))
    raise typer.Exit(result.exit_code)


def _archiver(cfg: "Config") -> "SegmentShipper | None":
    if not cfg.archive.url:
        return None
    from recorder.archive.setup import build_archiver  # obstore loads only when archiving

    a = cfg.archive
    return build_archiver(a.url, a.endpoint, a.name, cfg.journal.dir, a.concurrency)


def repeated(values: list[str] | None) -> list[str] | None:
    """Repeatable options: None when not given, so the file and environment still apply."""
    return list(values) if values else None


def warn_exposed_secrets(cfg: "Config", config_path: Path | None) -> None:
    """Warn at start about each secret-holding file the group or the world may read."""
    from recorder.exposure import exposed_secrets

    log = get_logger("config")
    for exposure in exposed_secrets(cfg, config_path):
        log.warning(
            "secret_file_readable_by_others",
            path=str(exposure.path),
            mode=oct(exposure.mode),
            holds=exposure.holds,
            hint="chmod 600 it",
        )
