"""Secrets on disk that other users may read: the config file and the credential files it names."""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path

from recorder.config import LEAVES, SCHEMA, Config
from recorder.config_load import read_layers
from recorder.units import mask_url

# Read permission for the group or for everyone: either lets another account take the secret.
_OTHERS_READ = stat.S_IRGRP | stat.S_IROTH


@dataclass(frozen=True, slots=True)
class Exposure:
    """A file holding the secret of setting `holds`, with a mode that lets others read it."""

    path: Path
    mode: int
    holds: str


def secrets_in_config_file(path: Path) -> list[str]:
    """The settings whose secret a YAML config file spells out (a password, a token, a URL's)."""
    values, _sources = read_layers(SCHEMA, path)
    held = [key for key in values if LEAVES[key].secret]
    urls = values.get("nats.urls")
    if isinstance(urls, list | tuple) and any(mask_url(str(url)) != str(url) for url in urls):
        held.append("nats.urls")
    return sorted(held)


def secret_files(cfg: Config) -> dict[str, Path]:
    """The credential files the configuration names, by setting."""
    nats = cfg.nats
    named = {
        "nats.password_file": nats.password_file,
        "nats.token_file": nats.token_file,
        "nats.nkey_seed_file": nats.nkey_seed_file,
        "nats.creds_file": nats.creds_file,
        "nats.tls.key_file": nats.tls.key_file,
    }
    return {key: path for key, path in named.items() if path is not None}


def exposed_secrets(cfg: Config, config_path: Path | None) -> list[Exposure]:
    """Every file holding a secret of `cfg` that the group or the world may read."""
    candidates: list[tuple[Path, str]] = []
    if config_path is not None:
        candidates += [(config_path, key) for key in secrets_in_config_file(config_path)]
    candidates += [(path, key) for key, path in secret_files(cfg).items()]
    found = []
    for path, key in candidates:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError:
            continue  # unreadable or gone: the loader reports that itself
        if mode & _OTHERS_READ:
            found.append(Exposure(path, mode, key))
    return found
