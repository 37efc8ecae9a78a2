"""The atheris harnesses in fuzz/ run clean for a bounded number of runs (slow: needs --run-slow)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fuzz_support import FUZZ_CASES

FUZZ_DIR = Path(__file__).resolve().parents[2] / "fuzz"
RUNS = 50_000

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1_800),
    pytest.mark.skipif(
        importlib.util.find_spec("atheris") is None, reason="atheris is not installed"
    ),
]


@pytest.mark.parametrize("harness", ["fuzz_reader.py", "fuzz_decoder.py"])
def test_atheris_harness_finds_nothing(harness: str, tmp_path: Path) -> None:
    """libFuzzer-guided inputs never make the reader or the decoder raise an unexpected exception."""
    result = subprocess.run(
        [sys.executable, str(FUZZ_DIR / harness), f"-atheris_runs={RUNS}", "-max_len=4096"],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # crash-* files, if any, land here
        timeout=1_700,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    done = re.search(r"Done (\d+) in", result.stderr)
    assert done is not None, result.stderr[-2000:]
    FUZZ_CASES[f"atheris {harness}"] += int(done[1])
