"""Layered loading over a tree of frozen dataclasses: YAML file, then environment, then overrides.

Nothing here knows the recorder's settings: a schema is any dataclass whose fields may carry
`setting()` metadata, and `recorder.config` supplies its own and validates what this builds.
Every error names the dotted field (or the unknown name) and the source it came from.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import types
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar, get_args, get_origin, get_type_hints

import yaml

from recorder.errors import ConfigError
from recorder.units import BadValueError, mask_url, parse_duration, parse_size

T = TypeVar("T")
Check = Callable[[Any], "str | None"]
SIZE, DURATION, LISTEN = "size", "duration", "listen"
COMMAND_LINE = "command line"


def setting(
    default: Any, *, kind: str = "", check: Check | None = None, secret: bool = False
) -> Any:
    """Declare a field with how to parse it (`kind`), its `check`, and whether it holds a secret."""
    return field(default=default, metadata={"kind": kind, "check": check, "secret": secret})


@dataclass(frozen=True)
class Leaf:
    """One setting: its type hint and the `setting()` metadata of its field."""

    hint: Any
    kind: str
    check: Check | None
    secret: bool


def _walk(cls: type, prefix: str, leaves: dict[str, Leaf], sections: dict[str, type]) -> None:
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        path = prefix + f.name
        if dataclasses.is_dataclass(hints[f.name]):
            sections[path] = hints[f.name]
            _walk(hints[f.name], path + ".", leaves, sections)
        else:
            meta = f.metadata
            leaves[path] = Leaf(
                hints[f.name], meta.get("kind", ""), meta.get("check"), meta.get("secret", False)
            )


@dataclass(frozen=True)
class Schema(Generic[T]):
    """The dotted settings of a root dataclass, and the environment variables that set them."""

    root: type[T]
    leaves: dict[str, Leaf]
    sections: dict[str, type]
    env_prefix: str
    env_vars: dict[str, str]
    env_ignored: frozenset[str]
    # Settings that no longer exist, by dotted path and by environment variable: why, and
    # what replaces them. Refused with that reason rather than as an unknown name.
    removed: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        root: type[T],
        env_prefix: str,
        env_aliases: Mapping[str, str] | None = None,
        env_ignored: Iterable[str] = (),
        removed: Mapping[str, str] | None = None,
    ) -> Schema[T]:
        """Walk `root`; each setting gets `env_prefix` + its path upper-cased with `_` for `.`."""
        leaves: dict[str, Leaf] = {}
        sections: dict[str, type] = {}
        _walk(root, "", leaves, sections)
        env_vars = {_env_name(env_prefix, p): p for p in leaves}
        env_vars |= env_aliases or {}
        gone = dict(removed or {})
        gone |= {_env_name(env_prefix, p): why for p, why in gone.items()}
        return cls(root, leaves, sections, env_prefix, env_vars, frozenset(env_ignored), gone)


def _env_name(prefix: str, path: str) -> str:
    return prefix + path.upper().replace(".", "_")


# -- converting raw values -----------------------------------------------------------------------


def convert(value: object, leaf: Leaf, hint: Any, lenient: bool) -> Any:
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
        return convert(value, leaf, inner, lenient)
    if get_origin(hint) is Literal:
        choices = get_args(hint)
        if isinstance(value, str) and value.strip().lower() in choices:
            return value.strip().lower()
        raise BadValueError("must be one of " + ", ".join(choices))
    if get_origin(hint) is tuple:
        if lenient and isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise BadValueError("must be a list of strings")
    if hint is bool:
        words = {"true": True, "yes": True, "on": True, "1": True}
        words |= {"false": False, "no": False, "off": False, "0": False}
        if isinstance(value, bool):
            return value
        if lenient and isinstance(value, str) and value.strip().lower() in words:
            return words[value.strip().lower()]
        raise BadValueError("must be true or false")
    if hint is int:
        # int()'s own grammar: underscores only between digits ("1_000", not "1__0" or "1_").
        if lenient and isinstance(value, str) and re.fullmatch(r"\s*\d+(?:_\d+)*\s*", value):
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        raise BadValueError("must be a whole number, not negative")
    if hint is str and isinstance(value, str):
        return value
    if hint is Path and isinstance(value, str) and value:
        return Path(value)
    raise BadValueError("must be a path" if hint is Path else "must be a string")


_SHOWN_MAX = 200


def _show(value: object, secret: bool) -> str:
    if secret:
        return f"a value of type {type(value).__name__}"  # never echo a secret
    if isinstance(value, str):
        return json.dumps(mask_url(value), ensure_ascii=False)
    # Encoded lazily and only so far: YAML aliases can make a tiny file a huge (or cyclic) value.
    # Chunks hold whole strings, so masking before cutting never leaves half a password.
    text = ""
    try:
        for chunk in json.JSONEncoder(default=str).iterencode(value):
            text += chunk
            if len(text) > _SHOWN_MAX:
                return mask_url(text)[:_SHOWN_MAX] + "..."
    except (TypeError, ValueError):  # keys JSON cannot have (dates), or a cycle
        return f"a value of type {type(value).__name__}"
    return mask_url(text)


def _unknown(
    name: str, known: list[str], what: str, source: str | None, removed: Mapping[str, str]
) -> ConfigError:
    if name in removed:
        return ConfigError(name, f"was removed: {removed[name]}", source)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f' (did you mean "{close[0]}"?)' if close else ""
    shown = name if name.isprintable() and name else json.dumps(name)  # one visible line
    return ConfigError(shown, f"unknown {what}{hint}", source)


# -- reading the sources -------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice instead of silently keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # the base class reports an unhashable key with its line
            if key in seen:
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
    except yaml.YAMLError as e:  # a ReaderError (a control character) spans two lines
        raise ConfigError(str(path), f"invalid YAML: {' '.join(str(e).split())}") from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise ConfigError(str(path), "invalid YAML: nested too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), "must be a mapping of settings at the top level")
    return data


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


def _flatten(
    schema: Schema[Any], data: Mapping[Any, Any], prefix: str, source: str, out: dict[str, object]
) -> None:
    for key, value in data.items():
        path = f"{prefix}{key}"
        if path in schema.sections:
            if value is not None and not isinstance(value, Mapping):
                raise ConfigError(path, "must be a mapping of settings", source)
            _flatten(schema, value or {}, path + ".", source, out)
        elif path in schema.leaves:
            out[path] = value
        else:
            known = [*schema.leaves, *schema.sections]
            raise _unknown(path, known, "setting", source, schema.removed)


def _from_env(schema: Schema[Any], env: Mapping[str, str]) -> dict[str, tuple[object, str]]:
    found: dict[str, tuple[object, str]] = {}
    for name in sorted(env):
        if not name.startswith(schema.env_prefix) or name in schema.env_ignored:
            continue
        path = schema.env_vars.get(name)
        if path is None:
            known = [*schema.env_vars, *sorted(schema.env_ignored)]
            raise _unknown(name, known, "environment variable", None, schema.removed)
        if path in found:
            other = found[path][1].removeprefix("environment variable ")
            raise ConfigError(path, f"set by both {other} and {name}; keep one", "environment")
        found[path] = (env[name], f"environment variable {name}")
    return found


def read_layers(
    schema: Schema[Any],
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> tuple[dict[str, object], dict[str, str]]:
    """Return the converted value of each setting given, and its source; later sources win.

    Overrides whose value is None are treated as not given, so the CLI can pass every flag.
    """
    layers: list[tuple[str, object, str, bool]] = []
    if path is not None:
        flat: dict[str, object] = {}
        _flatten(schema, read_config_file(path), "", str(path), flat)
        layers += [(key, value, str(path), False) for key, value in flat.items()]
    for key, (value, source) in _from_env(schema, env or {}).items():
        layers.append((key, value, source, True))
    for key, value in (overrides or {}).items():
        if key not in schema.leaves:
            raise _unknown(key, list(schema.leaves), "setting", COMMAND_LINE, schema.removed)
        if value is not None:
            layers.append((key, value, COMMAND_LINE, True))
    values: dict[str, object] = {}
    sources: dict[str, str] = {}
    for key, raw, source, lenient in layers:
        leaf = schema.leaves[key]
        try:
            values[key] = convert(raw, leaf, leaf.hint, lenient)
        except BadValueError as e:
            raise ConfigError(key, f"{e}, got {_show(raw, leaf.secret)}", source) from None
        sources[key] = source
    return values, sources


def build(schema: Schema[T], values: Mapping[str, object]) -> T:
    """Construct the root dataclass from dotted values; settings not given keep their defaults."""
    root: T = _build(schema, schema.root, "", values)
    return root


def _build(schema: Schema[Any], cls: type[Any], prefix: str, values: Mapping[str, object]) -> Any:
    kwargs: dict[str, object] = {}
    for f in dataclasses.fields(cls):
        path = prefix + f.name
        if path in schema.sections:
            kwargs[f.name] = _build(schema, schema.sections[path], path + ".", values)
        elif path in values:
            kwargs[f.name] = values[path]
    return cls(**kwargs)
