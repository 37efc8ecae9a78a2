"""The one way tests build their LD_PRELOAD shims (file-system log, fault injection, clock steps).

A shim wraps the product's real system calls in a child process; it is compiled per test
session into a temporary directory, so parallel workers never share a half-written library.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def build_shim(source: Path, out_dir: Path) -> Path:
    """Compile `source` into a shared library in `out_dir`; skip the test when there is no cc."""
    if shutil.which("cc") is None:
        pytest.skip(f"no C compiler for {source.name} (.ci/run installs gcc)")
    library = out_dir / f"lib{source.stem}.so"
    command = ["cc", "-shared", "-fPIC", "-O2", "-o", str(library), str(source)]
    subprocess.run([*command, "-ldl", "-lpthread"], check=True, capture_output=True)
    return library
