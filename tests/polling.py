"""Waiting for a condition, the one way every suite synchronises with processes and threads.

A test never sleeps a fixed time hoping something happened: it polls the condition, with a bound
generous enough for a loaded 2-core machine, and fails naming what it waited for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

POLL_S = 0.05


def wait_until(
    predicate: Callable[[], Any], timeout: float, what: str, *, interval: float = POLL_S
) -> Any:
    """Poll `predicate` until it returns something truthy (returned) or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
