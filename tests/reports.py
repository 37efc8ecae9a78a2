"""The one way tests merge figures into a JSON report under build/reliability/.

Test files run in parallel workers (pytest-xdist), and several files add cases to the same
report, so a merge is a read-modify-write under an exclusive lock, written by rename: no case
is lost to a race and no reader sees half a file.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any


def merge_case(path: Path, case: str, figures: dict[str, Any]) -> Path:
    """Set `case` to `figures` in the JSON report at `path`, keeping every other case."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.with_name(path.name + ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = json.loads(path.read_text()) if path.exists() else {}
        results[case] = figures
        partial = path.with_name(path.name + f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
        os.replace(partial, path)
    return path
