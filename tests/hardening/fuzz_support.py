"""Shared fuzzing pieces: a case counter, quick/long test pairs, and input strategies."""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recorder.journal.record import SYNC, TAIL_MAGIC

# Cases run per fuzz target in this session (printed by conftest's terminal summary).
FUZZ_CASES: Counter[str] = Counter()

# No per-case deadline (the "recorder" profile's deadline=None applies): a case's time is not a
# correctness property, and on a loaded machine a 5 s bound failed cases that were only slow.
# A hang still fails the test through pytest-timeout.
LONG_TIMEOUT_S = 3_600  # the long variants run thousands of cases; the default timeout is 300 s
_SETTINGS = {
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "database": None,  # no .hypothesis directory in the tree; failures print their example
}


def fuzz_pair(
    strategy: st.SearchStrategy[Any], *, quick: int, long: int
) -> Callable[[Callable[[Any], None]], tuple[Callable[[], None], Callable[[], None]]]:
    """Turn `check(value)` into a quick test and a `slow`-marked test with `long` examples."""

    def decorate(check: Callable[[Any], None]) -> tuple[Callable[[], None], Callable[[], None]]:
        name = check.__name__.removeprefix("check_")

        def run(value: Any) -> None:
            FUZZ_CASES[name] += 1
            check(value)

        quick_test = settings(max_examples=quick, **_SETTINGS)(given(strategy)(run))
        long_test = settings(max_examples=long, **_SETTINGS)(given(strategy)(run))
        long_test = pytest.mark.timeout(LONG_TIMEOUT_S)(pytest.mark.slow(long_test))
        for test in (quick_test, long_test):
            test.__doc__ = check.__doc__
        return quick_test, long_test

    return decorate


# -- journal bytes ----------------------------------------------------------------------------

# msgpack values of every type the format could meet, including the tuples a record body is.
MSGPACK_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=12)
    | st.binary(max_size=12),
    lambda children: (
        st.lists(children, max_size=8) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)
# Record-shaped arrays whose fields may have the wrong types.
RECORD_SHAPED = st.tuples(
    st.integers(0, 2**64 - 1) | MSGPACK_VALUES,
    st.integers(-(2**63), 2**63 - 1) | MSGPACK_VALUES,
    st.text(max_size=10) | MSGPACK_VALUES,
    st.text(max_size=10) | MSGPACK_VALUES,
    st.none() | MSGPACK_VALUES,
    st.binary(max_size=20) | MSGPACK_VALUES,
    st.none() | MSGPACK_VALUES,
).map(list) | st.tuples(
    st.integers(0, 2**64 - 1) | MSGPACK_VALUES,
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from(["started", "stopped", "note", "dropped", "bogus"]) | MSGPACK_VALUES,
    st.dictionaries(st.text(max_size=6), MSGPACK_VALUES, max_size=3) | MSGPACK_VALUES,
).map(list)


def _packed(value: Any) -> bytes:
    return bytes(msgpack.packb(value, use_bin_type=True))


BODIES = (
    RECORD_SHAPED.map(_packed)
    | MSGPACK_VALUES.map(_packed)
    | st.binary(max_size=64)
    | st.binary(min_size=48, max_size=48)  # a footer body's size
)


def crc_valid_frame(kind: int, body: bytes) -> bytes:
    """A frame that passes its length and checksum checks whatever its kind and body hold."""
    crc = zlib.crc32(body, zlib.crc32(bytes([kind])))
    return SYNC + len(body).to_bytes(4, "little") + crc.to_bytes(4, "little") + bytes([kind]) + body


FRAMES = st.builds(
    crc_valid_frame, st.sampled_from([1, 2, 3]) | st.integers(0, 255), BODIES
) | st.builds(
    # A frame header whose declared length lies: huge, past the bound, or past the end.
    lambda length, kind, tail: (
        SYNC + length.to_bytes(4, "little") + b"\0\0\0\0" + bytes([kind]) + tail
    ),
    st.sampled_from([2**32 - 1, 64 * 1024 * 1024 + 1024 * 1024, 65 * 1024 * 1024 + 1])
    | st.integers(0, 2**32 - 1),
    st.sampled_from([1, 2, 3]),
    st.binary(max_size=16),
)
# Byte strings dense in the format's own markers, so the reader's resync logic gets exercised.
MARKERISH = st.lists(
    st.sampled_from([SYNC, TAIL_MAGIC, b"\x89MSJ\r\n\x1a\n", b"\x00" * 4, b"\xff" * 4])
    | st.binary(max_size=24),
    max_size=24,
).map(b"".join)
