"""The JSON report the README's hostile-host figures come from (never typed by hand).

Each test of docs/security.md merges what it measured under its case name into
$HOSTILE_HOST_REPORT (default build/reliability/hostile-host.json, relative to the directory
pytest runs in).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from reports import merge_case

REPORT_ENV = "HOSTILE_HOST_REPORT"


def report(case: str, **figures: Any) -> None:
    """Merge `figures` under `case` into the report, keeping every other case's."""
    path = Path(os.environ.get(REPORT_ENV, "build/reliability/hostile-host.json"))
    merge_case(path, case, figures)
