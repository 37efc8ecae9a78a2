"""The fault-injection figures, merged into one JSON report the README's table is rendered from
(by tests/render_reliability.py on main, which turns build/reliability/*.json into tables)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

REPORT_ENV = "FAULTS_REPORT"


def report(name: str, figures: dict[str, Any]) -> None:
    """Merge one scenario's figures into $FAULTS_REPORT (default build/reliability/faults.json)."""
    path = Path(os.environ.get(REPORT_ENV, "build/reliability/faults.json"))
    path.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(path.read_text()) if path.exists() else {}
    results[name] = figures
    path.write_text(json.dumps(results, indent=2) + "\n")
