"""The recorder's settings: frozen dataclasses loaded defaults -> YAML -> RECORDER_* env -> flags.

Nothing here reads argv or os.environ: the CLI passes the file path, the environment mapping and
its flag values to `load_config`, which names the dotted field and its source in every error.
The value parsers live in `recorder.units`, the per-field checks in `recorder.config_checks` and
the layering in `recorder.config_load`; import them from there.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import yaml

from recorder.config_checks import (
    at_least,
    check_archive_name,
    check_archive_url,
    check_endpoint,
    check_listen,
    check_name,
    check_queue_group,
    check_reply_subject,
    check_subjects,
    check_urls,
    non_empty,
    positive,
    quoted,
    split_listen,
)
from recorder.config_load import (
    DURATION,
    LISTEN,
    SIZE,
    Leaf,
    Schema,
    build,
    read_layers,
    resolve_secret,
    setting,
)
from recorder.errors import ConfigError
from recorder.units import (
    MASK,
    KiB,
    MiB,
    format_duration,
    format_size,
    mask_url,
)

ENV_PREFIX: Final = "RECORDER_"
ENV_CONFIG_PATH: Final = "RECORDER_CONFIG"  # read by the CLI, not a setting
# -- the schema ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetentionConfig:
    """How much sealed journal to keep; 0 means unlimited."""

    max_bytes: int = setting(0, kind=SIZE)
    max_age: float = setting(0.0, kind=DURATION)
    max_segments: int = 0


@dataclass(frozen=True)
class JournalConfig:
    """Where and how records are written."""

    dir: Path = Path("journal")
    segment_max_bytes: int = setting(64 * MiB, kind=SIZE, check=at_least(KiB, "1KiB"))
    segment_max_age: float = setting(3600.0, kind=DURATION, check=positive)
    fsync: Literal["interval", "always", "never"] = "interval"
    fsync_interval: float = setting(1.0, kind=DURATION, check=positive)
    compression: Literal["none", "zstd"] = "none"
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    min_free_bytes: int = setting(256 * MiB, kind=SIZE)


@dataclass(frozen=True)
class TlsConfig:
    """Client TLS: the CA that signs the server, and our certificate when the server asks."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None


@dataclass(frozen=True)
class NatsConfig:
    """How to reach and authenticate to the broker."""

    urls: tuple[str, ...] = setting(("nats://127.0.0.1:4222",), check=check_urls)
    name: str = setting("meshsync-recorder", check=non_empty)
    user: str | None = None
    password: str | None = setting(None, secret=True)
    password_file: Path | None = None
    token: str | None = setting(None, secret=True)
    token_file: Path | None = None
    nkey_seed_file: Path | None = None
    creds_file: Path | None = None
    tls: TlsConfig = field(default_factory=TlsConfig)
    connect_timeout: float = setting(5.0, kind=DURATION, check=positive)
    retry_on_start: bool = True
    reconnect_wait: float = setting(2.0, kind=DURATION, check=positive)
    max_reconnect_wait: float = setting(30.0, kind=DURATION, check=positive)


@dataclass(frozen=True)
class JetStreamConfig:
    """The durable pull consumer used in `mode: jetstream`."""

    stream: str = setting("MESHSYNC", check=check_name)
    consumer: str = setting("meshsync-recorder", check=check_name)
    batch: int = setting(256, check=at_least(1))
    create_stream: bool = False
    ack_wait: float = setting(30.0, kind=DURATION, check=positive)


@dataclass(frozen=True)
class HttpConfig:
    """The /metrics, /healthz and /readyz listener."""

    listen: str = setting("127.0.0.1:9464", kind=LISTEN, check=check_listen)

    @property
    def address(self) -> tuple[str, int] | None:
        """Return (host, port) to bind, or None when the listener is disabled."""
        return None if self.listen in ("", "off") else split_listen(self.listen)


@dataclass(frozen=True)
class LogConfig:
    """Log verbosity and rendering (`auto`: JSON lines unless stderr is a terminal)."""

    level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


@dataclass(frozen=True)
class ArchiveConfig:
    """Off-host archive of sealed segments; credentials come from the provider's own chain."""

    url: str = setting("", check=check_archive_url)
    # An S3-compatible server; plain http:// allowed (a loopback server).
    endpoint: str = setting("", check=check_endpoint)
    # The journal's name under the prefix; default: an id kept in the journal directory.
    name: str = setting("", check=check_archive_name)
    concurrency: int = setting(2, check=at_least(1))


@dataclass(frozen=True)
class Config:
    """Everything `recorder run` needs, already validated."""

    journal: JournalConfig = field(default_factory=JournalConfig)
    nats: NatsConfig = field(default_factory=NatsConfig)
    subjects: tuple[str, ...] = setting(
        ("meshery.meshsync.request", "meshery.meshsync.core"), check=check_subjects
    )
    queue_group: str = setting("", check=check_queue_group)
    mode: Literal["core", "jetstream"] = "core"
    jetstream: JetStreamConfig = field(default_factory=JetStreamConfig)
    queue_max_messages: int = setting(100_000, check=at_least(1))
    # Payload bytes; with the interpreter and nats-py's buffers the daemon then stays under
    # 256 MiB (a container limit) in a flood of 1 MiB messages (tests/reliability).
    queue_max_bytes: int = setting(64 * MiB, kind=SIZE, check=at_least(MiB, "1MiB"))
    baseline: Literal["none", "informer-store", "resync"] = "none"
    baseline_reply_subject: str = setting("meshsync-recorder.store", check=check_reply_subject)
    http: HttpConfig = field(default_factory=HttpConfig)
    log: LogConfig = field(default_factory=LogConfig)
    embedded_broker: bool = False
    archive: ArchiveConfig = field(default_factory=ArchiveConfig)


SCHEMA: Final = Schema.of(
    Config,
    ENV_PREFIX,
    env_aliases={
        "RECORDER_NATS_URL": "nats.urls",
        "RECORDER_SUBJECT": "subjects",
        "RECORDER_FSYNC": "journal.fsync",
    },
    env_ignored=[ENV_CONFIG_PATH],
    removed={
        # Direct delivery bypasses nats-py's per-subscription queue, so they never applied.
        "nats.pending_msgs_limit": "the recorder's intake is the only buffer; use queue_max_messages",
        "nats.pending_bytes_limit": "the recorder's intake is the only buffer; use queue_max_bytes",
    },
)
LEAVES: Final[dict[str, Leaf]] = SCHEMA.leaves
SECTIONS: Final[dict[str, type]] = SCHEMA.sections
ENV_VARS: Final[dict[str, str]] = SCHEMA.env_vars

# -- loading and validating ----------------------------------------------------------------------


def load_config(
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Config:
    """Build a validated Config from defaults, then `path`, then `env`, then dotted `overrides`.

    Overrides whose value is None are treated as not given, so the CLI can pass every flag.
    """
    values, sources = read_layers(SCHEMA, path, env, overrides)
    return validate(build(SCHEMA, values), sources)


def get_value(cfg: Config, path: str) -> Any:
    """Return the setting at a dotted path, e.g. `journal.retention.max_age`."""
    return functools.reduce(getattr, path.split("."), cfg)


def validate(cfg: Config, sources: Mapping[str, str] | None = None) -> Config:
    """Check every value and the combinations between them; return `cfg` unchanged when valid."""
    where = sources or {}
    for path, leaf in LEAVES.items():
        if leaf.check and (reason := leaf.check(get_value(cfg, path))):
            raise ConfigError(path, reason, where.get(path))

    def fail(path: str, reason: str) -> ConfigError:
        return ConfigError(path, reason, where.get(path))

    n = cfg.nats
    for secret in ("password", "token"):
        if getattr(n, secret) is not None and getattr(n, f"{secret}_file") is not None:
            raise fail(f"nats.{secret}_file", f"set nats.{secret} or nats.{secret}_file, not both")
    has_password = n.password is not None or n.password_file is not None
    if has_password and n.user is None:
        raise fail("nats.password", "needs nats.user")
    if n.user is not None and not has_password:
        raise fail("nats.user", "needs nats.password or nats.password_file")
    methods = {
        "nats.user": n.user is not None,
        "nats.token": n.token is not None or n.token_file is not None,
        "nats.nkey_seed_file": n.nkey_seed_file is not None,
        "nats.creds_file": n.creds_file is not None,
    }
    chosen = [name for name, used in methods.items() if used]
    if len(chosen) > 1:
        raise fail(chosen[1], f"cannot be combined with {chosen[0]}; choose one way to log in")
    if (n.tls.cert_file is None) != (n.tls.key_file is None):
        raise fail("nats.tls.cert_file", "needs nats.tls.key_file too (and the other way round)")
    if n.max_reconnect_wait < n.reconnect_wait:
        raise fail("nats.max_reconnect_wait", "must not be less than nats.reconnect_wait")
    if cfg.mode == "jetstream" and cfg.queue_max_messages < cfg.jetstream.batch:
        raise fail(
            "jetstream.batch", f"must not exceed queue_max_messages ({cfg.queue_max_messages})"
        )
    return cfg


# -- showing and secrets -------------------------------------------------------------------------


def config_to_dict(cfg: Any, mask_secrets: bool = True, prefix: str = "") -> dict[str, Any]:
    """Render a Config (or a section) as plain YAML-able values, secrets as `***` when masked."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        path, value = prefix + f.name, getattr(cfg, f.name)
        leaf = LEAVES.get(path)
        if leaf is None:
            out[f.name] = config_to_dict(value, mask_secrets, path + ".")
        elif value is None:
            out[f.name] = None
        elif leaf.secret and mask_secrets:
            out[f.name] = MASK
        elif leaf.kind == SIZE:
            out[f.name] = format_size(value)
        elif leaf.kind == DURATION:
            out[f.name] = format_duration(value)
        elif isinstance(value, tuple):
            out[f.name] = [mask_url(v) if mask_secrets else v for v in value]
        elif isinstance(value, str):
            out[f.name] = mask_url(value) if mask_secrets else value
        else:
            out[f.name] = str(value) if isinstance(value, Path) else value
    return out


def config_to_yaml(cfg: Config, mask_secrets: bool = True) -> str:
    """Render a Config as YAML that `load_config` reads back (when secrets are not masked)."""
    return yaml.safe_dump(config_to_dict(cfg, mask_secrets), sort_keys=False, allow_unicode=True)


def nats_password(nats: NatsConfig) -> str | None:
    """Return the NATS password from nats.password or nats.password_file."""
    return resolve_secret(nats.password, nats.password_file, "nats.password")


def nats_token(nats: NatsConfig) -> str | None:
    """Return the NATS token from nats.token or nats.token_file."""
    return resolve_secret(nats.token, nats.token_file, "nats.token")


def check_files(cfg: Config) -> None:
    """Check that every file the config names can be read, for `recorder config check`."""
    for path in LEAVES:
        value = get_value(cfg, path)
        if isinstance(value, Path) and path.endswith("_file"):
            shown = str(value) if str(value).isprintable() else quoted(str(value))
            try:
                with value.open("rb"):
                    pass
            except OSError as e:
                raise ConfigError(path, f"cannot read {shown}: {e.strerror}") from None
            except ValueError:  # a NUL byte, which no file name can hold
                raise ConfigError(path, f"cannot read {shown}: not a valid file name") from None
