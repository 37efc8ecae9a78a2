"""A reliability test's name becomes a readable row of the README's table."""

from __future__ import annotations

from faults import case_name


def test_a_test_name_reads_as_a_case() -> None:
    assert case_name("test_sigkill_storm_keeps_x[20]") == "sigkill storm keeps x [20]"
    assert case_name("test_soak") == "soak"
