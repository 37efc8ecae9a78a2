"""Block-style YAML 1.1 for the JSON data model (dict, list, str, int, float, bool, None).

PyYAML, even with libyaml's C emitter, spends most of a snapshot's time representing and
serializing in Python: YAML snapshots were written ten times slower than JSON ones. A manifest
needs none of YAML's generality (no tags, anchors, flow styles or line folding), so this module
writes the few shapes it does need straight into a list of strings.

Correctness rests on one choice per string: a plain scalar only when the string starts with an
ASCII letter or `/`, holds only characters that mean nothing to YAML in a block context, and is
not one of YAML 1.1's booleans or nulls (`yes`, `n`, `off`, `null`, ...): nothing that starts with
a digit, a sign or a dot can then be read as a number, timestamp or sexagesimal value. Anything
else is single-quoted when printable and on one line, a literal block (`|`) when it is multi-line
text that a block keeps exactly, and otherwise double-quoted with JSON's escapes, which YAML's
double-quoted style shares, plus escapes for what YAML 1.1 reads as a line break or refuses.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any, Final

import orjson

_PLAIN: Final = re.compile(r"[A-Za-z/][A-Za-z0-9 ._/@%+=,:()-]*")
# Spelled any way, these read back as booleans or null in YAML 1.1 (go-yaml v2 adds y and n).
_WORDS: Final = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})
# Beyond C0 controls, which JSON escapes: what YAML 1.1 reads as a line break (\x85, \u2028,
# \u2029), refuses in a stream (DEL, C1 controls, surrogates, \ufffe, \uffff) or may take for a
# byte-order mark. A literal block may hold tabs and newlines, and no other control character.
_EXTRA: Final = "\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff"
_ONE_LINE: Final = re.compile(f"[^\x00-\x1f{_EXTRA}]*")
_TEXT: Final = re.compile(f"[^\x00-\x08\x0b-\x1f{_EXTRA}]*")
_ESCAPE: Final = re.compile(f"[{_EXTRA}]")
# PyYAML forgets a simple key's position after 1024 characters; longer keys use `? key`.
_MAX_SIMPLE_KEY: Final = 1000
_CACHED_MAX_LEN: Final = 256  # long strings are nearly all distinct: not worth keeping
_CACHE_SIZE: Final = 50_000


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\u{code:04x}"


def double_quoted(text: str) -> str:
    """`text` as a YAML double-quoted scalar: JSON's escapes, and \\uXXXX for YAML's extras."""
    try:
        quoted = orjson.dumps(text).decode()
    except orjson.JSONEncodeError:  # a lone surrogate, which only an escape can carry
        quoted = '"' + "".join(_json_char(char) for char in text) + '"'
    return _ESCAPE.sub(_escape_char, quoted)


def _json_char(char: str) -> str:
    if "\ud800" <= char <= "\udfff":
        return f"\\u{ord(char):04x}"
    return orjson.dumps(char).decode()[1:-1]


def inline_scalar(value: Any) -> str:
    """A scalar on one line: plain when it reads back as itself, else quoted."""
    kind = type(value)
    if kind is str:
        return _scalar_text(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        return _float(value)
    raise TypeError(f"not a JSON value: {kind.__name__}")


def _scalar_text(text: str) -> str:
    if _PLAIN.fullmatch(text) and _plain_ok(text):
        return text
    if _ONE_LINE.fullmatch(text):
        return "'" + text.replace("'", "''") + "'"
    return double_quoted(text)


def _plain_ok(text: str) -> bool:
    """The second half of the plain test: no `: ` and no trailing `:` or space, not a keyword."""
    return (
        ": " not in text and text[-1] not in ": " and (len(text) > 5 or text.lower() not in _WORDS)
    )


def _float(value: float) -> str:
    if value != value:
        return ".nan"
    if value in (float("inf"), float("-inf")):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value)
    # YAML 1.1 floats need a dot: 1e+16 would read back as a string.
    if "." not in text:
        text = text.replace("e", ".0e")
    return text


def _literal(text: str, indent: str) -> str | None:
    """A literal block for multi-line text a block keeps exactly, or None."""
    if text[0] in " \t\n" or not _TEXT.fullmatch(text):
        return None
    if text[-1] != "\n":
        header, body = " |-\n", text
    elif text.endswith("\n\n"):
        header, body = " |+\n", text[:-1]
    else:
        header, body = " |\n", text[:-1]
    return header + "\n".join([indent + line if line else "" for line in body.split("\n")])


class YamlEmitter:
    """Writes documents; keeps the rendering of keys and short strings across documents.

    Every line is written as a newline, the indentation and the content, so that one cached string
    per key and indentation covers a whole line's start; a map or list that is a list item then
    has its first line joined to the item's `-`.
    """

    def __init__(self) -> None:
        self._keys: dict[str, dict[Any, str]] = {}  # indentation -> key -> "\n<indent>key:"
        self._values: dict[str, str] = {}  # string -> " rendered", for inline strings

    def dump(self, document: Any, *, sort_keys: bool = False) -> str:
        """One document (without `---`), as block-style YAML ending in a newline."""
        parts: list[str] = []
        kind = type(document)
        if kind is dict and document:
            self._map(document, "", parts, sort_keys)
        elif kind is list and document:
            self._list(document, "", parts, sort_keys)
        else:
            return _inline(document) + "\n"
        return "".join(parts)[1:] + "\n"

    def _key(self, key: Any, indent: str) -> str:
        if type(key) in (dict, list):
            raise TypeError("a mapping key must be a scalar")
        text = inline_scalar(key)
        if len(text) > _MAX_SIMPLE_KEY:
            rendered = "\n" + indent + "? " + text + "\n" + indent + ":"
        else:
            rendered = "\n" + indent + text + ":"
        if type(key) is str and len(key) <= _CACHED_MAX_LEN:
            cache = self._keys.setdefault(indent, {})
            _remember(cache, key, rendered)
        return rendered

    def _string(self, text: str, indent: str) -> str:
        """` value` after a key or a `-`; multi-line text as a literal block at `indent`."""
        if "\n" in text and (block := _literal(text, indent)) is not None:
            return block
        rendered = " " + inline_scalar(text)
        if len(text) <= _CACHED_MAX_LEN:
            _remember(self._values, text, rendered)
        return rendered

    def _map(self, mapping: dict[Any, Any], indent: str, parts: list[str], sort: bool) -> None:
        items: Any = mapping.items()
        if sort:
            # Keys of mixed types keep their order, as yaml.dump does.
            with contextlib.suppress(TypeError):
                items = sorted(items)
        keys = self._keys.get(indent) or {}
        values = self._values
        out = parts.append
        inner = indent + "  "
        for key, value in items:
            out(keys.get(key) or self._key(key, indent))
            kind = type(value)
            if kind is str:
                out(values.get(value) or self._string(value, inner))
            elif kind is dict and value:
                self._map(value, inner, parts, sort)
            elif kind is list and value:
                # A sequence under a key is not indented, as yaml.dump writes it.
                self._list(value, indent, parts, sort)
            else:
                out(_spaced(value))

    def _list(self, items: list[Any], indent: str, parts: list[str], sort: bool) -> None:
        values = self._values
        out = parts.append
        dash = "\n" + indent + "-"
        inner = indent + "  "
        cut = len(inner) + 1
        for value in items:
            out(dash)
            kind = type(value)
            if kind is str:
                out(values.get(value) or self._string(value, inner))
            elif (kind is dict or kind is list) and value:
                first = len(parts)
                if kind is dict:
                    self._map(value, inner, parts, sort)
                else:
                    self._list(value, inner, parts, sort)
                parts[first] = " " + parts[first][cut:]  # onto the item's line
            else:
                out(_spaced(value))


def _spaced(value: Any) -> str:
    """A scalar other than a string, or an empty container, after a key or a dash."""
    if value is None:
        return " null"
    if type(value) is int:
        return " " + str(value)
    if type(value) is bool:
        return " true" if value else " false"
    return " " + _inline(value)


def _inline(value: Any) -> str:
    if type(value) is dict and not value:
        return "{}"
    if type(value) is list and not value:
        return "[]"
    return inline_scalar(value)


def _remember(cache: dict[Any, str], key: Any, rendered: str) -> None:
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[key] = rendered
