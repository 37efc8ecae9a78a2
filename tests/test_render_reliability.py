"""The README's reliability tables are rendered from the reports the tests wrote, not typed."""

from __future__ import annotations

import json
from pathlib import Path

import render_reliability as rr

FAULTS = {
    "core/fsync-EIO": {"injected_fsync_errors": 5, "lost": 0, "invented": 0, "fault": "a|b"},
    "jetstream/write-ENOSPC": {"injected_write_errors": 3, "lost": 0, "invented": 0},
}
CLOCKS = {
    "phases": [
        {"label": "before any step", "fsyncs_per_interval": 1.049, "rotations": 3},
        {"label": "stepped back 1 h", "fsyncs_per_interval": 0.99, "rotations": 3},
    ],
    "clock_steps": [{"to": "stepped back 1 h", "step_s": -3600}],
    "published": 1476,
    "journaled": 1476,
}


def test_a_report_is_a_table_of_its_cases_and_every_figure() -> None:
    """Rows are cases, columns the union of their figures; pipes in text cannot break a row."""
    block = rr.render({"faults": FAULTS}, "today")
    assert block.startswith(rr.BEGIN) and block.endswith(rr.END)
    assert "| case | injected fsync errors | lost | invented | fault | injected write errors |" in (
        block
    )
    assert "| core/fsync-EIO | 5 | 0 | 0 | a\\|b |  |" in block
    assert "| jetstream/write-ENOSPC |  | 0 | 0 |  | 3 |" in block


def test_the_clock_report_shows_each_phase_and_the_totals() -> None:
    block = rr.render({"clocks": CLOCKS}, "today")
    assert "| stepped back 1 h | 0.99 | 3 |" in block
    assert "| whole run | 1,476 | 1,476 |" in block


def test_main_rewrites_only_the_marked_block_from_the_reports_on_disk(tmp_path: Path) -> None:
    """Text around the markers is kept; only the block between them changes."""
    (tmp_path / "faults.json").write_text(json.dumps(FAULTS))
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{rr.BEGIN}\nold\n{rr.END}\nafter\n")
    assert rr.main(["render", str(tmp_path), str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("before\n") and text.endswith("\nafter\n")
    assert "old" not in text and "core/fsync-EIO" in text and "crash_states" not in text


def test_no_reports_is_an_error_not_an_empty_table(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"{rr.BEGIN}\nkept\n{rr.END}\n")
    assert rr.main(["render", str(tmp_path), str(readme)]) == 1
    assert "kept" in readme.read_text()


def test_the_readme_has_the_markers() -> None:
    text = (rr.ROOT / "README.md").read_text(encoding="utf-8")
    assert text.count(rr.BEGIN) == 1 and text.count(rr.END) == 1


def test_the_daemon_report_lists_each_cases_own_figures() -> None:
    """Cases measured by different tests share no columns: each row lists its own figures."""
    daemon = {
        "sigkill storm [default]": {"kills": 20, "published": 42560, "seed": 20260101},
        "soak": {"rss_max_mib": 39.5, "verify_clean": True},
    }
    block = rr.render({"daemon": daemon}, "today")
    assert "| sigkill storm [default] | kills 20, published 42,560, seed 20260101 |" in block
    assert "| soak | rss max mib 39.5, verify clean yes |" in block
