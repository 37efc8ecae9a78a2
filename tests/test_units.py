"""Setting values as text: sizes, durations and URLs with their passwords masked."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recorder.units import (
    MASK,
    BadValueError,
    MiB,
    format_duration,
    format_size,
    mask_url,
    parse_duration,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "size"),
    [("64MiB", 64 * MiB), ("512KiB", 512 * 1024), ("1GB", 10**9), ("1.5KiB", 1536),
     (" 2 mib ", 2 * MiB), ("4096", 4096), (4096, 4096), ("0", 0), ("1.1MB", 1_100_000)],
)  # fmt: skip
def test_sizes_accept_numbers_and_units(text: object, size: int) -> None:
    """Sizes are byte counts or numbers with binary (KiB) or decimal (KB) units."""
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["lots", "-1", "64MiBs", "1.5B", "", "1 2", True, 1.5, -1, None])
def test_sizes_reject_anything_else(bad: object) -> None:
    """Words, fractions of a byte, negatives, booleans and floats are not sizes."""
    with pytest.raises(BadValueError, match="must be"):
        parse_size(bad)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1), ("500ms", 0.5), ("15m", 900), ("1h", 3600), ("7d", 604800), ("1h30m", 5400),
     ("90", 90), (2, 2), (0.25, 0.25), ("250us", 0.00025)],
)  # fmt: skip
def test_durations_accept_seconds_and_units(text: object, seconds: float) -> None:
    """Durations are seconds or numbers with ms, s, m, h, d units, also combined."""
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["soon", "-1s", "1x", "", "h", True, -1, float("nan"), [1]])
def test_durations_reject_anything_else(bad: object) -> None:
    """Words, unknown units, negatives, NaN and booleans are not durations."""
    with pytest.raises(BadValueError, match="must be"):
        parse_duration(bad)


def test_bad_values_are_value_errors() -> None:
    """Callers that only know ValueError still catch a rejected value."""
    assert issubclass(BadValueError, ValueError)


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0, 0), (1, 1), (1000, "1KB"), (1024, "1KiB"), (64 * MiB, "64MiB"), (3 * 10**9, "3GB"),
     (1536, 1536)],
)  # fmt: skip
def test_sizes_are_shown_in_the_largest_exact_unit(value: int, shown: int | str) -> None:
    """A byte count is shown in the largest unit dividing it, binary first, or as a plain number."""
    assert format_size(value) == shown


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, 0), (1, "1s"), (0.5, "500ms"), (90, "90s"), (3600, "1h"), (7 * 86400, "7d"),
     (0.00025, "250us")],
)  # fmt: skip
def test_durations_are_shown_in_the_largest_exact_unit(seconds: float, shown: int | str) -> None:
    """A duration is shown in the largest unit that divides it exactly."""
    assert format_duration(seconds) == shown


@given(st.integers(min_value=0, max_value=2**50))
def test_formatted_sizes_parse_back(size: int) -> None:
    """Every size `config show` prints reads back as the same byte count."""
    assert parse_size(format_size(size)) == size


@given(st.integers(min_value=0, max_value=10**9))
def test_formatted_durations_parse_back(millis: int) -> None:
    """Every whole-millisecond duration `config show` prints reads back as the same value."""
    assert parse_duration(format_duration(millis / 1000)) == pytest.approx(millis / 1000)


@pytest.mark.parametrize(
    ("text", "masked"),
    [("nats://u:hunter2@a:4222", f"nats://u:{MASK}@a:4222"),
     ("nats://t0ken@a:4222", f"nats://{MASK}@a:4222"),
     ("nats://u:@a", f"nats://u:{MASK}@a"),
     ("dial nats://u:p@a, tls://t@b failed", f"dial nats://u:{MASK}@a, tls://{MASK}@b failed"),
     ("nats://a:4222", "nats://a:4222"),
     ("mail me@example.com", "mail me@example.com")],
)  # fmt: skip
def test_url_passwords_and_tokens_are_masked(text: str, masked: str) -> None:
    """The password, or a bare token, in every URL in a text becomes ***; the rest is kept."""
    assert mask_url(text) == masked
