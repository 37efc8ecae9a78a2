"""The snapshot's YAML emitter: whatever it writes, YAML 1.1 readers get the same data back.

The round-trip tests run against both emitters: `to_yaml` (the C one, which test_yaml_emit_c
requires to be built here) and the Python reference.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from recorder.compact.snapshot import to_yaml
from recorder.compact.state import compact
from recorder.compact.yaml_emit import YamlEmitter, double_quoted, inline_scalar
from recorder.demo.simulator import Simulator

# Strings YAML 1.1 would read as something else, or that stress quoting and block scalars.
TRICKY = [
    *("", " ", "-", "- a", "-a", "a: b", "a:b", "a:", "#", "#x", "x #y", "x#y", ": ", "? x", "?"),
    *("'", '"', "''", "a'b", 'a"b', "|", ">", "|-", "@a", "`a", "!a", "&a", "*a", "%a", "{", "[]"),
    *("y", "Y", "n", "N", "yes", "Yes", "YES", "no", "NO", "on", "On", "off", "OFF", "true"),
    *("False", "TRUE", "null", "Null", "NULL", "~", "<<", "=", "nan", "inf", "yEs", "nO"),
    *("0", "-0", "+1", "012", "0o17", "0x1F", "0b101", "1_000", "1e3", "1E+3", "1.", ".5", "1:20"),
    *("190:20:30.15", "-1:20", ".inf", "-.Inf", "+.INF", ".nan", ".NaN", "1.0e+16", "3e4f-abc"),
    *("2025-03-14", "2001-12-14t21:59:43.10-05:00", "2025-03-14 09:26:51", "10.0.0.1", "v1.2"),
    *("---", "...", "a\n---\nb", "a\n...\n", "\n", "a\n", "a\nb", "\na", " a\nb", "a \n", "a\n\n"),
    *("a\n  b\n", "a\n\tb", "a\n \n", "a\n ", "x\n\n\ny", "\ta", "a\t", "a\tb", "a\r\nb", "a\rb"),
    *(" lead", "trail ", "  ", "a  b", "\x85", "a\x85b", "\u2028", "\u2029", "\ufeff", "\ufeffa"),
    *("\x00", "\x07", "\x1b", "\x7f", "\x9f", "\xa0", "a\xa0", "\ufffe", "\uffff", "\ud800"),
    *("é", "日本語", "😀", "Ωmega", "/", "/var/run", "nginx:1.25", "a,b", "(x)", "a=b", "a%b"),
    *("key: value\nother: 1\n", "#!/bin/sh\necho hi\n", '{\n  "a": 1\n}', "x" * 300),
]
STRINGS = st.one_of(
    st.sampled_from(TRICKY), st.text(max_size=30), st.lists(st.sampled_from(TRICKY)).map("".join)
)
SCALARS = st.one_of(
    STRINGS, st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True)
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(STRINGS, children, max_size=4)
    ),
    max_leaves=30,
)


def python_yaml(document: Any, sort_keys: bool = False) -> bytes:
    """The reference: the Python emitter, however the product writes YAML."""
    return YamlEmitter().dump(document, sort_keys=sort_keys).encode()


Emit = Callable[..., bytes]
BOTH = pytest.mark.parametrize("emit", [to_yaml, python_yaml], ids=["c", "python"])


def same(left: Any, right: Any) -> bool:
    """Equal with types kept apart (True is not 1, 1.0 is not 1) and nan equal to nan."""
    if type(left) is not type(right):
        return False
    if type(left) is dict:
        return list(left) == list(right) and all(same(left[k], right[k]) for k in left)
    if type(left) is list:
        return len(left) == len(right) and all(map(same, left, right))
    if type(left) is float and math.isnan(left):
        return math.isnan(right)
    if type(left) is float:
        return left == right and math.copysign(1, left) == math.copysign(1, right)
    return bool(left == right)


def sorted_deep(value: Any) -> Any:
    """The document with the keys of every mapping in sorted order."""
    if type(value) is dict:
        return {key: sorted_deep(value[key]) for key in sorted(value)}
    if type(value) is list:
        return [sorted_deep(item) for item in value]
    return value


def reads_back(emit: Emit, document: Any, sort_keys: bool = False) -> None:
    text = emit(document, sort_keys=sort_keys).decode()
    loaded = yaml.safe_load(text)
    assert same(loaded, sorted_deep(document) if sort_keys else document), text


@BOTH
@settings(max_examples=600, deadline=None)
@given(document=DOCUMENTS)
def test_any_json_like_document_reads_back_as_itself(emit: Emit, document: Any) -> None:
    """Any document of the JSON data model, tricky strings included, loads back unchanged."""
    reads_back(emit, document)


@BOTH
@settings(max_examples=200, deadline=None)
@given(document=st.dictionaries(STRINGS, DOCUMENTS, max_size=6))
def test_sorted_documents_read_back_sorted(emit: Emit, document: Any) -> None:
    """With sort_keys every mapping comes back in sorted order, all values unchanged."""
    reads_back(emit, document, sort_keys=True)


@BOTH
def test_every_tricky_string_reads_back_as_key_value_and_item(emit: Emit) -> None:
    """Each tricky string survives as a key, a value, a list item and a whole document."""
    for text in TRICKY:
        reads_back(emit, {text: text, "in": {"list": [text, [text]], "nested": {text: [text]}}})
        reads_back(emit, [text, {text: text}])
        reads_back(emit, text)


@BOTH
def test_scalars_and_empty_containers_keep_their_types(emit: Emit) -> None:
    """Numbers stay numbers (1e16 included), strings that look like numbers stay strings."""
    document = {
        "int": 12,
        "big": 2**70,
        "float": 1e16,
        "small": 1e-7,
        "negzero": -0.0,
        "inf": -math.inf,
        "string": "12",
        "none": None,
        "bool": False,
        "map": {},
        "list": [],
        "lists": [[], {}, [[]]],
    }
    reads_back(emit, document)
    assert inline_scalar(1e16) == "1.0e+16"
    assert inline_scalar("12") == "'12'"


@BOTH
def test_deep_nesting_and_long_keys_and_values_read_back(emit: Emit) -> None:
    """200 levels of maps and lists, and keys and values far beyond PyYAML's 1024-character key limit."""
    deep: Any = "leaf"
    for level in range(200):
        deep = {f"k{level}": deep} if level % 2 else [deep, level]
    reads_back(emit, deep)
    long_key = "k" * 5000
    reads_back(emit, {long_key: {"x": [1]}, "short": [{long_key: long_key, "b": [long_key]}]})
    reads_back(emit, {"q" * 3000 + ": #": [["y" * 3000]]})


@BOTH
def test_multi_line_text_is_a_literal_block(emit: Emit) -> None:
    """Configuration files inside a ConfigMap stay readable: a literal block, not escapes."""
    text = emit({"data": {"app.yaml": "server:\n  port: 80\n"}}).decode()
    assert text == "data:\n  app.yaml: |\n    server:\n      port: 80\n"


def test_double_quoted_escapes_what_yaml_reads_as_breaks_or_refuses() -> None:
    """Line breaks YAML 1.1 knows beyond \\n, controls and byte-order marks become escapes."""
    assert double_quoted("a\x85\u2028\u2029\ufeff\x7f\x01\n") == (
        '"a\\u0085\\u2028\\u2029\\ufeff\\u007f\\u0001\\n"'
    )
    assert double_quoted("\ud800") == '"\\ud800"'


@BOTH
def test_simulated_snapshot_documents_read_back_as_the_state(emit: Emit) -> None:
    """Real snapshot documents (manifests, and MeshSync's sorted form) load back unchanged."""
    state, _ = compact(Simulator(5, clusters=2, namespaces=2).messages(2000))
    objects = state.objects()
    assert len(objects) > 20
    for obj in objects:
        reads_back(emit, obj.manifest())
        reads_back(emit, obj.as_meshsync(), sort_keys=True)


def test_other_types_are_refused() -> None:
    """Only the JSON data model is written: anything else is a bug of the caller."""
    with pytest.raises(TypeError):
        YamlEmitter().dump({"when": object()})


def _kubectl_corpus() -> list[Any]:
    """Tricky strings as keys, values and items, plus seeded random documents and real manifests."""
    rng = random.Random(14)
    printable = [text for text in TRICKY if "\ud800" not in text]
    specs: list[Any] = [{text: text} for text in printable]
    specs.append({"items": printable, "nested": [[text] for text in printable]})
    for _ in range(200):
        words = rng.sample(printable, 6)
        specs.append({words[0]: {words[1]: [words[2], {words[3]: words[4]}], "n": words[5]}})
    specs.append({"numbers": [0, -1, 2**62, 1.5, 1e16, 1e-7, True, False, None, {}, []]})
    state, _ = compact(Simulator(7, clusters=1, namespaces=1).messages(600))
    specs += [obj.manifest() for obj in state.objects()]
    return specs


def json_stream(text: str) -> list[Any]:
    """The JSON values printed one after another (kubectl prints one per object)."""
    decoder, values, position = json.JSONDecoder(), [], 0
    while position < len(text.rstrip()):
        value, end = decoder.raw_decode(text, position)
        values.append(value)
        position = end + (len(text[end:]) - len(text[end:].lstrip()))
    return values


@BOTH
@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_reads_the_same_data(emit: Emit, tmp_path: Path) -> None:
    """kubectl (go-yaml, YAML 1.1) reads every document back to the data that was written."""
    specs = _kubectl_corpus()
    documents = [
        {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": f"t{n}"}, "spec": s}
        for n, s in enumerate(specs)
    ]
    path = tmp_path / "snapshot.yaml"
    path.write_bytes(b"".join(b"---\n" + emit(document) for document in documents))
    result = subprocess.run(
        ["kubectl", "annotate", "--local", "-f", str(path), "checked=yes", "-o", "json"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    items = json_stream(result.stdout.decode())
    assert len(items) == len(specs)
    for item, spec in zip(items, specs, strict=True):
        # kubectl writes JSON numbers: 1e16 comes back as an integer, equal in value.
        assert item["spec"] == spec, item["metadata"]["name"]
