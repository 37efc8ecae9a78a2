"""The C YAML emitter writes byte for byte what the Python reference writes, and is built here."""

from __future__ import annotations

import math
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_yaml_emit import TRICKY, python_yaml

from recorder.compact import snapshot
from recorder.compact.snapshot import c_emitter, to_yaml

KEYWORDS = ["y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf", "~"]
# Each keyword in every mix of upper and lower case (YES, yEs, oFF, ...).
ANY_CASE = st.sampled_from(KEYWORDS).flatmap(
    lambda word: st.tuples(*[st.sampled_from([c.lower(), c.upper()]) for c in word]).map("".join)
)
# Around the 1000-character limit of a simple key, counted in characters, quotes included.
LONG = [
    "a" * 1000,
    "a" * 1001,
    "1" * 998,
    "1" * 999,
    "é" * 1000,
    "é" * 1001,
    "'" * 499,
    "x\n" * 600,
]
SHAPES = [
    *("1e16", "1.0e+16", "1e-7", "0o17", "017", "0x1f", "0b11", "1:30:00", "-1_000", "+.5", "1."),
    *("2025-03-14T09:26:51Z", "2025-3-4", "~", "<<", "- x", "? x", ": x", "x: y", "x #y", "x # y"),
    *(
        "a\r\n",
        "a\r",
        "a\n\r",
        "\ta\n",
        "a\n\t",
        "a\x00b",
        "a\x1fb",
        "\x85a\n",
        "a\n\u2028",
        "😀\n",
    ),
    *("a\ufeff\n", "\ufffe", "tab\there", "a\x7f\n", "a\n\n\n", "\n\n", "a\nb\n\n", "x\n  y"),
]
TEXT = st.one_of(
    st.sampled_from(TRICKY + SHAPES),
    ANY_CASE,
    st.text(max_size=20),
    st.text(st.characters(codec="utf-8", exclude_categories=()), max_size=10),
    st.text(st.sampled_from(" \t\n\r\x85\u2028\ufeff'\":#-?|>!&*%@`{}[],.0123456789eEaé😀")),
    st.lists(st.sampled_from(TRICKY + SHAPES + ["\n", " ", "'", "'\n"]), max_size=4).map("".join),
)
NUMBERS = st.one_of(
    st.integers(),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**50, -(10**300)]),
    st.floats(),
    st.sampled_from([-0.0, 1e16, 1e-7, 5e-324, 1e22, 1.5e300, math.inf, -math.inf, math.nan]),
)
SCALARS = st.one_of(TEXT, NUMBERS, st.none(), st.booleans())
KEYS = st.one_of(TEXT, TEXT, st.sampled_from(LONG), NUMBERS, st.none(), st.booleans())
DOCUMENTS = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=4)
    ),
    max_leaves=40,
)


def has_surrogate(value: Any) -> bool:
    """A lone surrogate anywhere in a key or value: what only the Python emitter writes."""
    if type(value) is str:
        return any("\ud800" <= char <= "\udfff" for char in value)
    if type(value) is dict:
        return any(has_surrogate(key) or has_surrogate(item) for key, item in value.items())
    if type(value) is list:
        return any(map(has_surrogate, value))
    return False


def c_dump(document: Any, sort_keys: bool = False) -> bytes | None:
    dump = c_emitter()
    assert dump is not None, "the C emitter is not built"
    return dump(document, sort_keys)


def assert_same_bytes(document: Any, sort_keys: bool = False) -> None:
    written = c_dump(document, sort_keys)
    if written is None:
        assert has_surrogate(document), "only a lone surrogate makes the C emitter pass"
    else:
        assert written == python_yaml(document, sort_keys=sort_keys)


def test_the_c_emitter_is_built_and_used_here() -> None:
    """This environment built the extension, so a broken build cannot pass as the fallback."""
    from recorder.compact import _yamlemit

    assert _yamlemit.__file__ is not None and _yamlemit.__file__.endswith(".so")
    assert snapshot.YAML_EMITTER == "C"
    assert c_emitter() is _yamlemit.dump


@settings(max_examples=1500, deadline=None)
@given(document=DOCUMENTS, sort_keys=st.booleans())
def test_same_bytes_as_the_python_emitter(document: Any, sort_keys: bool) -> None:
    """Any document of the JSON data model, with or without sorted keys, gives identical bytes."""
    assert_same_bytes(document, sort_keys)


@pytest.mark.slow
@settings(max_examples=30_000, deadline=None)
@given(document=DOCUMENTS, sort_keys=st.booleans())
def test_same_bytes_as_the_python_emitter_long_run(document: Any, sort_keys: bool) -> None:
    """The property above over twenty times as many documents (--run-slow)."""
    assert_same_bytes(document, sort_keys)


def test_same_bytes_for_every_tricky_string_in_every_position() -> None:
    """Each tricky string as a key, a value, a list item, nested, and as the whole document."""
    for text in [*TRICKY, *SHAPES, *LONG]:
        assert_same_bytes({text: text, "in": {"list": [text, [text, {text: [text]}]]}})
        assert_same_bytes([text, [[text]], {text: {text: text}}, {}, []], sort_keys=True)
        assert_same_bytes(text)


def test_same_bytes_for_deep_nesting_and_mixed_keys() -> None:
    """300 levels of maps and lists; keys of types that cannot be sorted keep their order."""
    deep: Any = "leaf"
    for level in range(300):
        deep = {f"k{level}": deep, "n": level} if level % 2 else [deep, [level], {}]
    assert_same_bytes(deep)
    assert_same_bytes(deep, sort_keys=True)
    mixed = {"b": 1, 2: [None], None: {"z": 1, "a": 2}, 1.5: True, False: -0.0}
    assert_same_bytes(mixed, sort_keys=True)
    assert_same_bytes({2: 1, 1.5: 2, True: 3, -7: 4}, sort_keys=True)


def test_same_bytes_for_a_document_larger_than_the_kept_buffer() -> None:
    """A 3 MB document, and a small one after it, are written whole and right."""
    big = {f"key{n}": ["value " * 20, n, {"x": "y\n" * 5}] for n in range(10_000)}
    assert_same_bytes(big)
    assert_same_bytes({"small": [1, 2]})


@pytest.mark.parametrize(
    "document",
    [{1, 2}, b"bytes", object(), (1, 2), {"a": {1}}, {"a": [b"x"]}, {(1, 2): 1}, [1, object()]],
    ids=["set", "bytes", "object", "tuple", "set-value", "bytes-item", "tuple-key", "object-item"],
)
@pytest.mark.parametrize("emit", [to_yaml, python_yaml], ids=["c", "python"])
def test_values_outside_the_json_data_model_are_a_type_error(emit: Any, document: Any) -> None:
    """Both emitters refuse what JSON cannot hold with a TypeError, whatever its position."""
    with pytest.raises(TypeError):
        emit(document)


@pytest.mark.parametrize("emit", [to_yaml, python_yaml], ids=["c", "python"])
def test_a_document_that_contains_itself_is_a_recursion_error(emit: Any) -> None:
    """A cycle ends in RecursionError (which the snapshot writer logs and skips), not a crash."""
    cycle: list[Any] = [1]
    cycle.append(cycle)
    looped: dict[str, Any] = {"a": 1}
    looped["self"] = looped
    for document in (cycle, looped):
        with pytest.raises(RecursionError):
            emit(document)


def test_a_lone_surrogate_is_written_by_the_python_emitter() -> None:
    """The C emitter declines a str with no UTF-8 form; to_yaml then writes it escaped."""
    document = {"a": ["ok", "bad\ud800"], "b\udfff": 1}
    assert c_dump(document) is None
    assert to_yaml(document) == python_yaml(document)
    assert b'"bad\\ud800"' in to_yaml(document)


def test_without_the_extension_to_yaml_uses_the_python_emitter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An install without a C compiler imports no extension and writes the same YAML in Python."""
    document = {"kind": "Pod", "data": {"a.yaml": "x: 1\n"}, "list": [{"y": "n"}, 1e16]}
    expected = to_yaml(document)
    monkeypatch.setitem(sys.modules, "recorder.compact._yamlemit", None)  # import fails
    assert c_emitter() is None
    monkeypatch.setattr(snapshot, "_C_DUMP", c_emitter())
    assert to_yaml(document) == expected
