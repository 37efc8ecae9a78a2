"""The recorder's settings: frozen dataclasses loaded defaults -> YAML -> RECORDER_* env -> flags.

Nothing here reads argv or os.environ: the CLI passes the file path, the environment mapping and
its flag values to `load_config`, which names the dotted field and its source in every error.
The value parsers live in `recorder.units` and the layering in `recorder.config_load`; import
them from there.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import yaml

from recorder.config_load import (
    DURATION,
    LISTEN,
    SIZE,
    Check,
    Leaf,
    Schema,
    build,
    read_layers,
    resolve_secret,
    setting,
)
from recorder.errors import ConfigError
from recorder.subjects import is_valid_subject
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
# Joining Meshery's or MeshSync's own queue groups would take messages away from them.
RESERVED_QUEUE_GROUPS: Final = frozenset({"meshery", "meshsync-request-stream"})
_SUBJECT_RULES: Final = (
    'tokens separated by "." must be non-empty and without spaces, '
    'with "*" or ">" only as whole tokens and ">" only as the last one'
)
_CONCRETE_SUBJECT_RULES: Final = (
    'tokens separated by "." must be non-empty and without spaces or wildcards ("*", ">")'
)


def _quoted(value: str) -> str:
    """A value in double quotes with control characters escaped, so an error stays one line."""
    return json.dumps(value, ensure_ascii=False)


def check_subject(subject: str, *, wildcards: bool = True) -> str | None:
    """Return why `subject` is not a valid NATS subject (or filter), or None when it is."""
    if is_valid_subject(subject, wildcards=wildcards):
        return None
    if not subject:
        return "must not be empty"
    if wildcards:
        return f"{_quoted(subject)} is not a valid NATS subject: {_SUBJECT_RULES}"
    return f"{_quoted(subject)} is not a concrete NATS subject: {_CONCRETE_SUBJECT_RULES}"


# -- per-field checks: each returns why a converted value is bad, or None ------------------------


def _at_least(minimum: int, shown: str | None = None) -> Check:
    return lambda v: None if v >= minimum else f"must be at least {shown or minimum}"


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _non_empty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


def _check_urls(urls: tuple[str, ...]) -> str | None:
    if not urls:
        return "must list at least one server URL"
    for url in urls:
        try:  # urlsplit itself rejects a malformed [IPv6] host, .port a bad port
            parts = urlsplit(url if "://" in url else f"nats://{url}")
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            parts, port_ok = None, False
        if (
            parts is None
            or parts.scheme not in ("nats", "tls", "ws", "wss")
            or not parts.hostname
            or not port_ok
        ):
            return f"{_quoted(mask_url(url))} is not a server URL like nats://host:4222"
    return None


def _check_subjects(subjects: tuple[str, ...]) -> str | None:
    if not subjects:
        return "must list at least one subject"
    for subject in subjects:
        if reason := check_subject(subject):
            return reason
    duplicates = sorted({s for s in subjects if subjects.count(s) > 1})
    return f"{_quoted(duplicates[0])} is listed twice" if duplicates else None


def _check_reply_subject(subject: str) -> str | None:
    return check_subject(subject, wildcards=False)


def _check_name(name: str) -> str | None:
    # JetStream stream and consumer names become file names on the server.
    if not name or re.search(r"[\s.*>/\\]", name) or not name.isprintable():
        return f'{_quoted(name)} must be non-empty without spaces, ".", "*", ">", "/" or "\\"'
    return None


def _check_queue_group(group: str) -> str | None:
    if group in RESERVED_QUEUE_GROUPS:
        return (
            f"{_quoted(group)} belongs to Meshery/MeshSync; joining it would steal their messages"
        )
    if group and re.search(r"[\s*>]", group):
        return f"{_quoted(group)} must not contain spaces or wildcards"
    return None


def _split_listen(listen: str) -> tuple[str, int] | None:
    host, sep, port = listen.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if (
        not sep
        or not host
        or not (port.isascii() and port.isdigit())  # "²".isdigit(), but int("²") fails
        or int(port) > 65535
        or re.search(r"[\s\[\]]", host)
    ):
        return None
    return host, int(port)


def _check_listen(listen: str) -> str | None:
    if listen in ("", "off") or _split_listen(listen):
        return None
    return f'{_quoted(listen)} must be HOST:PORT (like 127.0.0.1:9464), or "off"'


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
    segment_max_bytes: int = setting(64 * MiB, kind=SIZE, check=_at_least(KiB, "1KiB"))
    segment_max_age: float = setting(3600.0, kind=DURATION, check=_positive)
    fsync: Literal["interval", "always", "never"] = "interval"
    fsync_interval: float = setting(1.0, kind=DURATION, check=_positive)
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

    urls: tuple[str, ...] = setting(("nats://127.0.0.1:4222",), check=_check_urls)
    name: str = setting("meshsync-recorder", check=_non_empty)
    user: str | None = None
    password: str | None = setting(None, secret=True)
    password_file: Path | None = None
    token: str | None = setting(None, secret=True)
    token_file: Path | None = None
    nkey_seed_file: Path | None = None
    creds_file: Path | None = None
    tls: TlsConfig = field(default_factory=TlsConfig)
    connect_timeout: float = setting(5.0, kind=DURATION, check=_positive)
    retry_on_start: bool = True
    reconnect_wait: float = setting(2.0, kind=DURATION, check=_positive)
    max_reconnect_wait: float = setting(30.0, kind=DURATION, check=_positive)


@dataclass(frozen=True)
class JetStreamConfig:
    """The durable pull consumer used in `mode: jetstream`."""

    stream: str = setting("MESHSYNC", check=_check_name)
    consumer: str = setting("meshsync-recorder", check=_check_name)
    batch: int = setting(256, check=_at_least(1))
    create_stream: bool = False
    ack_wait: float = setting(30.0, kind=DURATION, check=_positive)


@dataclass(frozen=True)
class HttpConfig:
    """The /metrics, /healthz and /readyz listener."""

    listen: str = setting("127.0.0.1:9464", kind=LISTEN, check=_check_listen)

    @property
    def address(self) -> tuple[str, int] | None:
        """Return (host, port) to bind, or None when the listener is disabled."""
        return None if self.listen in ("", "off") else _split_listen(self.listen)


@dataclass(frozen=True)
class LogConfig:
    """Log verbosity and rendering (`auto`: JSON lines unless stderr is a terminal)."""

    level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


def _check_archive_url(url: str) -> str | None:
    scheme, sep, rest = url.partition("://")
    if not url or (sep and scheme in ("s3", "gs", "az", "file") and rest.strip("/")):
        return None
    return f"{_quoted(mask_url(url))} must be s3://BUCKET/prefix, gs://, az:// or file:///dir"


def _check_endpoint(endpoint: str) -> str | None:
    if not endpoint or re.match(r"^https?://[^/\s]+/?$", endpoint):
        return None
    return f"{_quoted(mask_url(endpoint))} must be http(s)://HOST[:PORT]"


def _check_archive_name(name: str) -> str | None:
    # One path component of every key: no separators, nothing hidden.
    if not name or re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", name):
        return None
    return f'{_quoted(name)} must be letters, digits, ".", "_" or "-" (at most 128)'


@dataclass(frozen=True)
class ArchiveConfig:
    """Off-host archive of sealed segments; credentials come from the provider's own chain."""

    url: str = setting("", check=_check_archive_url)
    # An S3-compatible server; plain http:// allowed (a loopback server).
    endpoint: str = setting("", check=_check_endpoint)
    # The journal's name under the prefix; default: an id kept in the journal directory.
    name: str = setting("", check=_check_archive_name)
    concurrency: int = setting(2, check=_at_least(1))


@dataclass(frozen=True)
class Config:
    """Everything `recorder run` needs, already validated."""

    journal: JournalConfig = field(default_factory=JournalConfig)
    nats: NatsConfig = field(default_factory=NatsConfig)
    subjects: tuple[str, ...] = setting(
        ("meshery.meshsync.request", "meshery.meshsync.core"), check=_check_subjects
    )
    queue_group: str = setting("", check=_check_queue_group)
    mode: Literal["core", "jetstream"] = "core"
    jetstream: JetStreamConfig = field(default_factory=JetStreamConfig)
    queue_max_messages: int = setting(100_000, check=_at_least(1))
    # Payload bytes; with the interpreter and nats-py's buffers the daemon then stays under
    # 256 MiB (a container limit) in a flood of 1 MiB messages (tests/reliability).
    queue_max_bytes: int = setting(64 * MiB, kind=SIZE, check=_at_least(MiB, "1MiB"))
    baseline: Literal["none", "informer-store", "resync"] = "none"
    baseline_reply_subject: str = setting("meshsync-recorder.store", check=_check_reply_subject)
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
            shown = str(value) if str(value).isprintable() else _quoted(str(value))
            try:
                with value.open("rb"):
                    pass
            except OSError as e:
                raise ConfigError(path, f"cannot read {shown}: {e.strerror}") from None
            except ValueError:  # a NUL byte, which no file name can hold
                raise ConfigError(path, f"cannot read {shown}: not a valid file name") from None
