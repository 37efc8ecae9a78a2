"""Reconnect backoff with plain values: quick first retry, doubling to a cap, full jitter."""

from __future__ import annotations

import random
from urllib.parse import urlparse

from hypothesis import given
from hypothesis import strategies as st
from nats.aio.client import Server

from recorder.recording.bridge import ReconnectPolicy, backoff_delay


@given(
    attempt=st.integers(0, 64),
    base=st.floats(0.01, 10.0),
    cap=st.floats(0.01, 60.0),
    seed=st.integers(0, 2**32),
)
def test_each_delay_is_jittered_below_its_doubling_ceiling(
    attempt: int, base: float, cap: float, seed: int
) -> None:
    """The first retry is about 0.1 s whatever the settings; retry n waits between half and all
    of min(cap, base * 2^(n-1))."""
    delay = backoff_delay(attempt, base, cap, random.Random(seed))
    if attempt == 0:
        assert 0.05 <= delay <= 0.15
    else:
        ceiling = min(cap, base * 2 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling


def test_delays_double_until_the_cap() -> None:
    """With the jitter at its top the delays are exactly 1, 2, 4, 8 then the cap of 10."""

    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    assert [backoff_delay(n, 1.0, 10.0, Top()) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_jitter_spreads_clients_that_failed_together() -> None:
    """Two clients retrying the same attempt rarely pick the same delay."""
    rng = random.Random(7)
    delays = {backoff_delay(5, 0.5, 30.0, rng) for _ in range(100)}
    assert len(delays) == 100
    assert min(delays) < 5.0 < max(delays)  # the range [4, 8] is used, not one point of it


def servers(*names: str) -> list[Server]:
    return [Server(urlparse(f"nats://{name}:4222")) for name in names]


def test_reconnect_policy_goes_round_robin_and_backs_off() -> None:
    """Each call picks the next server in turn and a longer delay; reset starts over quickly."""
    pool = servers("a", "b", "c")
    policy = ReconnectPolicy(base=0.5, cap=4.0, rng=random.Random(1))
    picks = [policy(pool, {}) for _ in range(7)]
    assert [server.uri.hostname for server, _delay in picks if server] == list("abcabca")
    delays = [delay for _server, delay in picks]
    assert delays[0] <= 0.15
    assert all(0.5 * min(4.0, 0.5 * 2 ** (n - 1)) <= d for n, d in enumerate(delays) if n)
    assert delays[-1] >= 2.0  # capped at 4 s, jittered down by at most half
    policy.reset()
    server, delay = policy(pool, {})
    assert server is pool[0] and delay <= 0.15


def test_reconnect_policy_without_servers_says_none() -> None:
    """An empty server list gives no server (nats-py then gives up) but still a delay."""
    policy = ReconnectPolicy(base=0.5, cap=4.0, rng=random.Random(1))
    server, delay = policy([], {})
    assert server is None
    assert 0.05 <= delay <= 0.15
