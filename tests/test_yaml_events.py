"""The fast YAML path writes exactly what yaml.dump writes, and what it writes reads back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from recorder.compact.snapshot import _EVENTS, _SnapshotDumper, to_yaml
from recorder.compact.state import compact
from recorder.demo.simulator import Simulator

# Strings that stress the emitter: YAML indicators, type look-alikes, breaks, odd spaces, unicode.
_TRICKY = st.sampled_from(
    [
        *("", " ", "-", "- a", "a: b", "a:b", "#x", "x #y", "'", '"', "|", ">", "?", "@a", "`a"),
        *("yes", "No", "on", "null", "~", "1e3", "0o17", "0x1F", "1_000", ".5", "-.inf", "12:30"),
        *("2025-03-14", "2025-03-14T09:26:51Z", "=", "<<", "a\n", "a\nb", "\na", " a\nb", "a \n"),
        *("a\n\n", "\t", "a\tb", "\x85", "\u2028", "\ufeff", "é", "日本", "\x00", "\x7f", "a  "),
    ]
)
_STRINGS = st.one_of(_TRICKY, st.text(max_size=30), st.lists(_TRICKY).map("".join))
_SCALARS = st.one_of(
    _STRINGS,
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
)
_DOCUMENTS = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(_STRINGS, children, max_size=4)
    ),
    max_leaves=30,
)


def pyyaml(document: Any, sort_keys: bool) -> str:
    text: str = yaml.dump(
        document,
        Dumper=_SnapshotDumper,
        sort_keys=sort_keys,
        default_flow_style=False,
        allow_unicode=True,
        width=1 << 30,
    )
    return text


@settings(max_examples=400, deadline=None)
@given(document=st.dictionaries(_STRINGS, _DOCUMENTS, max_size=6), sort_keys=st.booleans())
def test_fast_path_writes_the_bytes_yaml_dump_writes(document: Any, sort_keys: bool) -> None:
    """For any JSON-like document the event path gives yaml.dump's text, and it loads back."""
    fast = _EVENTS.dump(document, sort_keys=sort_keys)
    assert fast == pyyaml(document, sort_keys)
    assert to_yaml(document, sort_keys=sort_keys) == fast.encode()
    loaded = yaml.safe_load(fast)
    assert yaml.dump(loaded, Dumper=_SnapshotDumper, sort_keys=sort_keys) == yaml.dump(
        document, Dumper=_SnapshotDumper, sort_keys=sort_keys
    )  # equal up to nan != nan


def test_simulated_manifests_and_meshsync_objects_are_byte_identical() -> None:
    """Real snapshot documents (manifests, and MeshSync's sorted form) come out identical."""
    state, _ = compact(Simulator(5, clusters=2, namespaces=2).messages(2000))
    for obj in state.objects():
        assert _EVENTS.dump(obj.manifest()) == pyyaml(obj.manifest(), False)
        assert _EVENTS.dump(obj.as_meshsync(), sort_keys=True) == pyyaml(obj.as_meshsync(), True)


def test_what_the_fast_path_cannot_reproduce_falls_back_to_yaml_dump() -> None:
    """Other types and containers that occur twice (anchors) are left to yaml.dump."""
    shared = {"a": 1}
    for document in ({"x": shared, "y": shared}, {"t": datetime(2025, 3, 14, tzinfo=UTC)}):
        assert _EVENTS.dump(document) is None
        assert to_yaml(document) == pyyaml(document, False).encode()
    assert b"&id001" in to_yaml({"x": shared, "y": shared})
