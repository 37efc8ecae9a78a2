"""The README's crash-state figures are rendered from the simulator's report, not typed."""

from __future__ import annotations

import json
from pathlib import Path

import render_reliability

from crashsim import render

FIGURES = {
    "crash_points": 3,
    "crash_states": 1200,
    "acknowledged_records_checked": 5000,
    "lost": 0,
    "invented": 0,
    "compactions_compared": 4,
    "failures": 0,
}


def test_render_totals_every_workload() -> None:
    """The block has one row per workload and the sums of states and records checked."""
    block = render.render({"daemon": FIGURES, "writer-always": FIGURES}, "today")
    assert block.startswith(render.BEGIN) and block.endswith(render.END)
    assert "| **total** | **2,400** | **10,000** | **0** | **0** | |" in block


def test_main_rewrites_only_the_marked_block(tmp_path: Path) -> None:
    """Text around the markers is kept; the block between them is replaced."""
    report = tmp_path / "crashsim.json"
    report.write_text(json.dumps({"daemon": FIGURES}))
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{render.BEGIN}\nold\n{render.END}\nafter\n")
    (tmp_path / "faults.json").write_text(json.dumps({"core": {"lost": 0}}))
    readme.write_text(
        readme.read_text() + f"{render_reliability.BEGIN}\n{render_reliability.END}\n"
    )
    assert render_reliability.main(["render", str(tmp_path), str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("before\n") and "\nafter\n" in text
    assert "old" not in text and "| 1,200 |" in text


def test_the_readme_has_the_markers() -> None:
    """The repository's README holds the block the renderer fills."""
    readme = (Path(render.ROOT) / "README.md").read_text()
    assert render.BEGIN in readme and render.END in readme
