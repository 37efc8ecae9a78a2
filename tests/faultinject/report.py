"""The fault-injection figures, merged into one JSON report the README's table is rendered from
(by tests/render_reliability.py on main, which turns build/reliability/*.json into tables)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from reports import merge_case

REPORT_ENV = "FAULTS_REPORT"


def report(name: str, figures: dict[str, Any]) -> None:
    """Merge one scenario's figures into $FAULTS_REPORT (default build/reliability/faults.json)."""
    path = Path(os.environ.get(REPORT_ENV, "build/reliability/faults.json"))
    merge_case(path, name, figures)
