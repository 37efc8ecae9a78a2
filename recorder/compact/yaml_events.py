"""`yaml.dump` of plain data, byte for byte, about three times faster.

With PyYAML's C dumper only the emitter is C: representing (objects -> nodes) and serializing
(nodes -> events, resolving tags) run in Python and take most of a YAML snapshot's time. For the
plain data a manifest is (dict, list, str, int, float, bool, None) this builds the same event
stream directly: scalar nodes still come from the dumper's own representers (so custom styles
apply) and their implicit flags from its resolver, exactly as `Serializer.serialize_node` computes
them, and the events go to the same emitter. Every formatting decision (quoting, block scalars,
indentation) therefore stays PyYAML's. Anything else, or a container that occurs twice (PyYAML
would write an anchor), makes `dump` return None so that the caller falls back to `yaml.dump`.
"""

from __future__ import annotations

import io
from typing import Any, Final

import yaml
from yaml.events import (
    DocumentEndEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)
from yaml.nodes import ScalarNode
from yaml.representer import SafeRepresenter

_MAP: Final = "tag:yaml.org,2002:map"
_SEQ: Final = "tag:yaml.org,2002:seq"
_CACHED_MAX_LEN: Final = 256  # long strings are nearly all distinct: not worth keeping
_CACHE_SIZE: Final = 50_000


class _UnsupportedError(Exception):
    """The document holds something this fast path does not reproduce."""


class EventDumper:
    """Dumps documents as `yaml.dump(doc, Dumper=dumper, default_flow_style=False, ...)` would."""

    def __init__(
        self, dumper: Any, *, width: int | None = None, allow_unicode: bool | None = None
    ) -> None:
        self._dumper = dumper
        self._width = width
        self._allow_unicode = allow_unicode
        self._helper = dumper(io.StringIO())  # its representers and resolver, never its stream
        representers = dumper.yaml_representers
        self._scalar_types = {t for t in (str, int, float, bool, type(None)) if t in representers}
        # Containers are walked here; that is only right while the dumper represents them as
        # SafeRepresenter does and no path resolvers can change their tags.
        self._enabled = (
            representers.get(dict) is SafeRepresenter.represent_dict
            and representers.get(list) is SafeRepresenter.represent_list
            and not dumper.yaml_path_resolvers
        )
        self._scalars: dict[tuple[type, Any], ScalarEvent] = {}
        self._map_start = MappingStartEvent(None, _MAP, True, flow_style=False)
        self._seq_start = SequenceStartEvent(None, _SEQ, True, flow_style=False)
        self._map_end = MappingEndEvent()
        self._seq_end = SequenceEndEvent()

    def dump(self, document: Any, *, sort_keys: bool = False) -> str | None:
        """The YAML text, or None when only `yaml.dump` can write this document."""
        if not self._enabled:
            return None
        events: list[Event] = [
            StreamStartEvent(),
            DocumentStartEvent(explicit=None, version=None, tags=None),
        ]
        try:
            self._walk(document, events.append, set(), sort_keys)
        except _UnsupportedError:
            return None
        events += [DocumentEndEvent(explicit=None), StreamEndEvent()]
        text: str = yaml.emit(
            events, Dumper=self._dumper, width=self._width, allow_unicode=self._allow_unicode
        )
        return text

    def _walk(self, value: Any, out: Any, containers: set[int], sort_keys: bool) -> None:
        kind = type(value)
        if kind is dict:
            if id(value) in containers:
                raise _UnsupportedError
            containers.add(id(value))
            out(self._map_start)
            items = value.items()
            if sort_keys:
                try:
                    items = sorted(items)
                except TypeError:  # as SafeRepresenter: unsortable keys keep their order
                    items = list(items)
            walk = self._walk
            for key, item in items:
                walk(key, out, containers, sort_keys)
                walk(item, out, containers, sort_keys)
            out(self._map_end)
        elif kind is list:
            if id(value) in containers:
                raise _UnsupportedError
            containers.add(id(value))
            out(self._seq_start)
            for item in value:
                self._walk(item, out, containers, sort_keys)
            out(self._seq_end)
        else:
            out(self._scalar(kind, value))

    def _scalar(self, kind: type, value: Any) -> ScalarEvent:
        key = (kind, value)
        event = self._scalars.get(key)
        if event is not None:
            return event
        if kind not in self._scalar_types:
            raise _UnsupportedError
        helper = self._helper
        node = self._dumper.yaml_representers[kind](helper, value)
        if not isinstance(node, ScalarNode):
            raise _UnsupportedError
        implicit = (
            node.tag == helper.resolve(ScalarNode, node.value, (True, False)),
            node.tag == helper.resolve(ScalarNode, node.value, (False, True)),
        )
        event = ScalarEvent(None, node.tag, implicit, node.value, style=node.style)
        # Not floats: 0.0 and -0.0 are equal keys but different YAML.
        if kind is not float and (kind is not str or len(value) <= _CACHED_MAX_LEN):
            if len(self._scalars) >= _CACHE_SIZE:
                self._scalars.clear()
            self._scalars[key] = event
        return event
