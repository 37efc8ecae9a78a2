"""The real MeshSync messages the tests decode, compact and replay: one loader for every suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_IN_REPO = Path(__file__).resolve().parent / "data" / "meshsync-samples"


def samples_dir() -> Path:
    """MESHSYNC_SAMPLES, else the in-repo copy, else ../shared next to the clone."""
    candidates = [
        Path(os.environ.get("MESHSYNC_SAMPLES", "")),
        _IN_REPO,
        _IN_REPO.parents[3] / "shared" / "meshsync" / "samples",
    ]
    for candidate in candidates:
        if str(candidate) not in ("", ".") and (candidate / "core-added-pod.json").is_file():
            return candidate
    pytest.fail("MeshSync samples not found; set MESHSYNC_SAMPLES")


def sample_names() -> list[str]:
    """Every sample's name (the file name without `.json`), sorted."""
    return sorted(path.stem for path in samples_dir().glob("*.json"))


def sample(name: str) -> bytes:
    """The payload bytes of one sample, by name without `.json` (e.g. "core-added-pod")."""
    return (samples_dir() / f"{name}.json").read_bytes()
