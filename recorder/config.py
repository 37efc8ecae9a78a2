"""The recorder's settings: frozen dataclasses loaded defaults -> YAML -> RECORDER_* env -> flags.

Nothing here reads argv or os.environ: the CLI passes the file path, the environment mapping and
its flag values to `load_config`, which names the dotted field and its source in every error.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import math
import re
import types
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, Literal, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

import yaml

from recorder.errors import ConfigError

KiB: Final = 1024
MiB: Final = 1024 * KiB
GiB: Final = 1024 * MiB
ENV_PREFIX: Final = "RECORDER_"
ENV_CONFIG_PATH: Final = "RECORDER_CONFIG"  # read by the CLI, not a setting
MASK: Final = "***"
# Joining Meshery's or MeshSync's own queue groups would take messages away from them.
RESERVED_QUEUE_GROUPS: Final = frozenset({"meshery", "meshsync-request-stream"})

_SIZE_UNITS: Final = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4}
_SIZE_UNITS_BIN: Final = {"kib": KiB, "mib": MiB, "gib": GiB, "tib": 1024 * GiB}
_SIZE_RE: Final = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)")
_DURATION_UNITS: Final = {
    "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9,
}  # fmt: skip
_DURATION_PART: Final = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)")
_USERINFO: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)([^@/\s:]*)(:[^@/\s]*)?@")
SIZE_HINT: Final = "must be a size like 64MiB, 512KiB or 1GB"
DURATION_HINT: Final = "must be a duration like 1s, 500ms, 15m, 1h or 7d"


class _BadValueError(ValueError):
    """A raw value that cannot be converted; the caller adds the field, the value and the source."""


# -- values: sizes, durations, subjects, URLs (pure) ---------------------------------------------


def parse_size(value: object) -> int:
    """Return a byte count from an int or a string like `64MiB`, `512KiB`, `1GB` or `4096`."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    m = _SIZE_RE.fullmatch(value.strip().lower()) if isinstance(value, str) else None
    units = {**_SIZE_UNITS, **_SIZE_UNITS_BIN}
    if m is None or m[2] not in units:
        raise _BadValueError(SIZE_HINT)
    size = Decimal(m[1]) * units[m[2]]  # Decimal: 1.1MB must be exactly 1100000
    if size != size.to_integral_value():
        raise _BadValueError("must be a whole number of bytes")
    return int(size)


def parse_duration(value: object) -> float:
    """Return seconds from a number or a string like `1s`, `500ms`, `15m`, `1h`, `7d` or `1h30m`."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if math.isfinite(value) and value >= 0:
            return float(value)
        raise _BadValueError("must be a finite number of seconds, not negative")
    if not isinstance(value, str):
        raise _BadValueError(DURATION_HINT)
    text = value.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    if not re.fullmatch(f"(?:{_DURATION_PART.pattern})+", text):
        raise _BadValueError(DURATION_HINT)
    return sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))


def format_size(size: int) -> int | str:
    """Render a byte count in the largest unit that divides it exactly (0 stays 0)."""
    units = [("TiB", 1024 * GiB), ("GiB", GiB), ("MiB", MiB), ("KiB", KiB)]
    for unit, mult in [*units, ("GB", 1000**3), ("MB", 1000**2), ("KB", 1000)]:
        if size and size % mult == 0:
            return f"{size // mult}{unit}"
    return size


def format_duration(seconds: float) -> int | str:
    """Render seconds in the largest unit that divides them exactly, e.g. `1h` or `500ms`."""
    if seconds == 0:
        return 0
    for unit in ("d", "h", "m", "s", "ms", "us", "ns"):
        count = seconds / _DURATION_UNITS[unit]
        if abs(count - round(count)) < 1e-6 and round(count) >= 1:
            return f"{round(count)}{unit}"
    return f"{seconds}s"


def check_subject(subject: str, *, wildcards: bool = True) -> str | None:
    """Return why `subject` is not a valid NATS subject (or filter), or None when it is."""
    if not subject:
        return "must not be empty"
    if any(ch.isspace() for ch in subject):
        return f'"{subject}" must not contain spaces'
    parts = subject.split(".")
    for i, part in enumerate(parts):
        if not part:
            return f'"{subject}" must not have empty tokens'
        if part in ("*", ">") and not wildcards:
            return f'"{subject}" must not contain wildcards'
        if part == ">" and i != len(parts) - 1:
            return f'"{subject}" may use ">" only as the last token'
        if part not in ("*", ">") and ("*" in part or ">" in part):
            return f'"{subject}" may use wildcards only as whole tokens'
    return None


def mask_url(text: str) -> str:
    """Replace the password (or a bare token) in any `scheme://user:pass@host` inside `text`."""

    def repl(m: re.Match[str]) -> str:
        return f"{m[1]}{m[2]}:{MASK}@" if m[3] is not None else f"{m[1]}{MASK}@"

    return _USERINFO.sub(repl, text)


# -- per-field checks: each returns why a converted value is bad, or None ------------------------

Check = Callable[[Any], "str | None"]


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
        parts = urlsplit(url if "://" in url else f"nats://{url}")
        try:
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            port_ok = False
        if parts.scheme not in ("nats", "tls", "ws", "wss") or not parts.hostname or not port_ok:
            return f'"{mask_url(url)}" is not a server URL like nats://host:4222'
    return None


def _check_subjects(subjects: tuple[str, ...]) -> str | None:
    if not subjects:
        return "must list at least one subject"
    for subject in subjects:
        if reason := check_subject(subject):
            return reason
    duplicates = sorted({s for s in subjects if subjects.count(s) > 1})
    return f'"{duplicates[0]}" is listed twice' if duplicates else None


def _check_reply_subject(subject: str) -> str | None:
    return check_subject(subject, wildcards=False)


def _check_name(name: str) -> str | None:
    # JetStream stream and consumer names become file names on the server.
    if not name or re.search(r"[\s.*>/\\]", name) or not name.isprintable():
        return f'"{name}" must be non-empty without spaces, ".", "*", ">", "/" or "\\"'
    return None


def _check_queue_group(group: str) -> str | None:
    if group in RESERVED_QUEUE_GROUPS:
        return f'"{group}" belongs to Meshery/MeshSync; joining it would steal their messages'
    if group and re.search(r"[\s*>]", group):
        return f'"{group}" must not contain spaces or wildcards'
    return None


def _split_listen(listen: str) -> tuple[str, int] | None:
    host, sep, port = listen.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if (
        not sep
        or not host
        or not port.isdigit()
        or int(port) > 65535
        or re.search(r"[\s\[\]]", host)
    ):
        return None
    return host, int(port)


def _check_listen(listen: str) -> str | None:
    if listen in ("", "off") or _split_listen(listen):
        return None
    return f'"{listen}" must be HOST:PORT (like 127.0.0.1:9464), or "off"'


def _f(default: Any, *, kind: str = "", check: Check | None = None, secret: bool = False) -> Any:
    return field(default=default, metadata={"kind": kind, "check": check, "secret": secret})


SIZE, DURATION, LISTEN = "size", "duration", "listen"

# -- the schema ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetentionConfig:
    """How much sealed journal to keep; 0 means unlimited."""

    max_bytes: int = _f(0, kind=SIZE)
    max_age: float = _f(0.0, kind=DURATION)
    max_segments: int = 0


@dataclass(frozen=True)
class JournalConfig:
    """Where and how records are written."""

    dir: Path = Path("journal")
    segment_max_bytes: int = _f(64 * MiB, kind=SIZE, check=_at_least(KiB, "1KiB"))
    segment_max_age: float = _f(3600.0, kind=DURATION, check=_positive)
    fsync: Literal["interval", "always", "never"] = "interval"
    fsync_interval: float = _f(1.0, kind=DURATION, check=_positive)
    compression: Literal["none", "zstd"] = "none"
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    min_free_bytes: int = _f(256 * MiB, kind=SIZE)


@dataclass(frozen=True)
class TlsConfig:
    """Client TLS: the CA that signs the server, and our certificate when the server asks."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None


@dataclass(frozen=True)
class NatsConfig:
    """How to reach and authenticate to the broker."""

    urls: tuple[str, ...] = _f(("nats://127.0.0.1:4222",), check=_check_urls)
    name: str = _f("meshsync-recorder", check=_non_empty)
    user: str | None = None
    password: str | None = _f(None, secret=True)
    password_file: Path | None = None
    token: str | None = _f(None, secret=True)
    token_file: Path | None = None
    nkey_seed_file: Path | None = None
    creds_file: Path | None = None
    tls: TlsConfig = field(default_factory=TlsConfig)
    connect_timeout: float = _f(5.0, kind=DURATION, check=_positive)
    retry_on_start: bool = True
    reconnect_wait: float = _f(2.0, kind=DURATION, check=_positive)
    max_reconnect_wait: float = _f(30.0, kind=DURATION, check=_positive)
    pending_msgs_limit: int = _f(1_000_000, check=_at_least(1))
    pending_bytes_limit: int = _f(GiB, kind=SIZE, check=_at_least(1))


@dataclass(frozen=True)
class JetStreamConfig:
    """The durable pull consumer used in `mode: jetstream`."""

    stream: str = _f("MESHSYNC", check=_check_name)
    consumer: str = _f("meshsync-recorder", check=_check_name)
    batch: int = _f(256, check=_at_least(1))
    create_stream: bool = False
    ack_wait: float = _f(30.0, kind=DURATION, check=_positive)


@dataclass(frozen=True)
class HttpConfig:
    """The /metrics, /healthz and /readyz listener."""

    listen: str = _f("127.0.0.1:9464", kind=LISTEN, check=_check_listen)

    @property
    def address(self) -> tuple[str, int] | None:
        """Return (host, port) to bind, or None when the listener is disabled."""
        return None if self.listen in ("", "off") else _split_listen(self.listen)


@dataclass(frozen=True)
class LogConfig:
    """Log verbosity and rendering (`auto`: JSON lines unless stderr is a terminal)."""

    level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


@dataclass(frozen=True)
class Config:
    """Everything `recorder run` needs, already validated."""

    journal: JournalConfig = field(default_factory=JournalConfig)
    nats: NatsConfig = field(default_factory=NatsConfig)
    subjects: tuple[str, ...] = _f(
        ("meshery.meshsync.request", "meshery.meshsync.core"), check=_check_subjects
    )
    queue_group: str = _f("", check=_check_queue_group)
    mode: Literal["core", "jetstream"] = "core"
    jetstream: JetStreamConfig = field(default_factory=JetStreamConfig)
    queue_max_messages: int = _f(100_000, check=_at_least(1))
    baseline: Literal["none", "informer-store", "resync"] = "none"
    baseline_reply_subject: str = _f("meshsync-recorder.store", check=_check_reply_subject)
    http: HttpConfig = field(default_factory=HttpConfig)
    log: LogConfig = field(default_factory=LogConfig)
    embedded_broker: bool = False


@dataclass(frozen=True)
class _Leaf:
    hint: Any
    kind: str
    check: Check | None
    secret: bool


def _walk(cls: type, prefix: str, leaves: dict[str, _Leaf], sections: dict[str, type]) -> None:
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        path = prefix + f.name
        if dataclasses.is_dataclass(hints[f.name]):
            sections[path] = hints[f.name]
            _walk(hints[f.name], path + ".", leaves, sections)
        else:
            meta = f.metadata
            leaves[path] = _Leaf(
                hints[f.name], meta.get("kind", ""), meta.get("check"), meta.get("secret", False)
            )


LEAVES: Final[dict[str, _Leaf]] = {}
SECTIONS: Final[dict[str, type]] = {}
_walk(Config, "", LEAVES, SECTIONS)
ENV_VARS: Final = {ENV_PREFIX + p.upper().replace(".", "_"): p for p in LEAVES} | {
    "RECORDER_NATS_URL": "nats.urls",
    "RECORDER_SUBJECT": "subjects",
    "RECORDER_FSYNC": "journal.fsync",
}

# -- converting raw values -----------------------------------------------------------------------


def _convert(value: object, leaf: _Leaf, hint: Any, lenient: bool) -> Any:
    """Convert one raw value; `lenient` parses strings too, as env vars and flags are text."""
    if leaf.kind == SIZE:
        return parse_size(value)
    if leaf.kind == DURATION:
        return parse_duration(value)
    if leaf.kind == LISTEN and value is False:
        return "off"  # YAML 1.1 reads a bare `off` as false
    if isinstance(hint, types.UnionType):  # X | None
        if value is None or (lenient and value == ""):
            return None
        inner = next(a for a in get_args(hint) if a is not type(None))
        return _convert(value, leaf, inner, lenient)
    if get_origin(hint) is Literal:
        choices = get_args(hint)
        if isinstance(value, str) and value.strip().lower() in choices:
            return value.strip().lower()
        raise _BadValueError("must be one of " + ", ".join(choices))
    if get_origin(hint) is tuple:
        if lenient and isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise _BadValueError("must be a list of strings")
    if hint is bool:
        words = {"true": True, "yes": True, "on": True, "1": True}
        words |= {"false": False, "no": False, "off": False, "0": False}
        if isinstance(value, bool):
            return value
        if lenient and isinstance(value, str) and value.strip().lower() in words:
            return words[value.strip().lower()]
        raise _BadValueError("must be true or false")
    if hint is int:
        if lenient and isinstance(value, str) and re.fullmatch(r"\s*\d[\d_]*\s*", value):
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        raise _BadValueError("must be a whole number, not negative")
    if hint is str and isinstance(value, str):
        return value
    if hint is Path and isinstance(value, str) and value:
        return Path(value)
    raise _BadValueError("must be a path" if hint is Path else "must be a string")


def _show(value: object, secret: bool) -> str:
    if secret:
        return f"a value of type {type(value).__name__}"  # never echo a secret
    if isinstance(value, str):
        return json.dumps(mask_url(value), ensure_ascii=False)
    return json.dumps(value, default=str)


def _unknown(name: str, known: list[str], what: str, source: str | None) -> ConfigError:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f' (did you mean "{close[0]}"?)' if close else ""
    return ConfigError(name, f"unknown {what}{hint}", source)


# -- loading -------------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice instead of silently keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a YAML config file into a mapping, naming the file and line of any syntax error."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)  # noqa: S506
    except OSError as e:
        raise ConfigError(str(path), f"cannot read config file: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), "config file is not UTF-8 text") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(str(path), f"invalid YAML{where}: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise ConfigError(str(path), f"invalid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), "must be a mapping of settings at the top level")
    return data


def _flatten(data: Mapping[Any, Any], prefix: str, source: str, out: dict[str, object]) -> None:
    for key, value in data.items():
        path = f"{prefix}{key}"
        if path in SECTIONS:
            if value is not None and not isinstance(value, Mapping):
                raise ConfigError(path, "must be a mapping of settings", source)
            _flatten(value or {}, path + ".", source, out)
        elif path in LEAVES:
            out[path] = value
        else:
            raise _unknown(path, [*LEAVES, *SECTIONS], "setting", source)


def _from_env(env: Mapping[str, str]) -> dict[str, tuple[object, str]]:
    found: dict[str, tuple[object, str]] = {}
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or name == ENV_CONFIG_PATH:
            continue
        path = ENV_VARS.get(name)
        if path is None:
            raise _unknown(name, [*ENV_VARS, ENV_CONFIG_PATH], "environment variable", None)
        if path in found:
            other = found[path][1].removeprefix("environment variable ")
            raise ConfigError(path, f"set by both {other} and {name}; keep one", "environment")
        found[path] = (env[name], f"environment variable {name}")
    return found


def load_config(
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Config:
    """Build a validated Config from defaults, then `path`, then `env`, then dotted `overrides`.

    Overrides whose value is None are treated as not given, so the CLI can pass every flag.
    """
    layers: list[tuple[str, object, str, bool]] = []
    if path is not None:
        flat: dict[str, object] = {}
        _flatten(read_config_file(path), "", str(path), flat)
        layers += [(key, value, str(path), False) for key, value in flat.items()]
    for key, (value, source) in _from_env(env or {}).items():
        layers.append((key, value, source, True))
    for key, value in (overrides or {}).items():
        if key not in LEAVES:
            raise _unknown(key, list(LEAVES), "setting", "command line")
        if value is not None:
            layers.append((key, value, "command line", True))
    values: dict[str, object] = {}
    sources: dict[str, str] = {}
    for key, raw, source, lenient in layers:
        leaf = LEAVES[key]
        try:
            values[key] = _convert(raw, leaf, leaf.hint, lenient)
        except _BadValueError as e:
            raise ConfigError(key, f"{e}, got {_show(raw, leaf.secret)}", source) from None
        sources[key] = source
    return validate(_build(Config, "", values), sources)


def _build(cls: type[Any], prefix: str, values: Mapping[str, object]) -> Any:
    kwargs: dict[str, object] = {}
    for f in dataclasses.fields(cls):
        path = prefix + f.name
        if path in SECTIONS:
            kwargs[f.name] = _build(SECTIONS[path], path + ".", values)
        elif path in values:
            kwargs[f.name] = values[path]
    return cls(**kwargs)


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


def read_secret_file(path: Path, field_name: str) -> str:
    """Return the secret stored in `path`, without the trailing newline editors add."""
    try:
        secret = path.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
        raise ConfigError(field_name, f"cannot read {path}: {reason}") from None
    if not secret:
        raise ConfigError(field_name, f"{path} is empty")
    return secret


def resolve_secret(value: str | None, file: Path | None, field_name: str) -> str | None:
    """Return the secret from its `*_file` when set, else the inline value (or None)."""
    return read_secret_file(file, f"{field_name}_file") if file is not None else value


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
            try:
                with value.open("rb"):
                    pass
            except OSError as e:
                raise ConfigError(path, f"cannot read {value}: {e.strerror}") from None
