"""`recorder report`: a self-contained page, checked in a real headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from recorder.cli import main
from recorder.journal.options import WriterOptions
from recorder.journal.record import Incoming, MarkerType
from recorder.journal.writer import JournalWriter
from recorder.meshsync import CORE_SUBJECT

from ._helpers import Recorded, cli, published_events

BUILD = Path(__file__).resolve().parents[2] / "build" / "investigate"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SERIES = re.compile(r'<g class="series" data-kind="([^"]*)" data-total="(\d+)"')


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium offline (as root it needs --no-sandbox), console logged to stderr."""
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            # Every host name fails to resolve: a request would show as an error, never leave.
            "--host-resolver-rules=MAP * ~NOTFOUND",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def console_errors(stderr: str) -> list[str]:
    """Console messages and refused loads Chromium logged for the page."""
    return [
        line
        for line in stderr.splitlines()
        if "CONSOLE" in line or "Uncaught" in line or "Refused to" in line
    ]


@pytest.fixture(scope="module")
def page(recorded: Recorded, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    with pytest.raises(SystemExit) as exit_info:
        main(["--log-format", "json", "report", str(recorded.directory), "--out", str(out)])
    assert exit_info.value.code in (0, None)
    return out


def test_the_page_is_self_contained(page: Path) -> None:
    """No external scripts, styles, images or links: everything the page needs is inline."""
    text = page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text)
    assert "http://" not in text and "https://" not in text
    assert "Content-Security-Policy" in text


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: apt-get install chromium")
def test_chromium_renders_one_series_per_kind_with_the_right_totals(
    page: Path, recorded: Recorded, tmp_path: Path
) -> None:
    """The page loads offline with no console errors; each kind's series totals its events."""
    result = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    assert console_errors(result.stderr) == []
    dom = result.stdout
    assert 'data-ready="1"' in dom, "the page's script ran to its end"
    want = Counter(event.kind for event in published_events(recorded.messages))
    got = {kind: int(total) for kind, total in SERIES.findall(dom)}
    assert got == dict(want)
    shown = re.search(r'<span id="timeline-total">(\d+)</span>', dom)
    assert shown is not None and int(shown.group(1)) == sum(want.values())
    assert dom.count('class="relist"') == len(
        [m for m in recorded.messages if b'"Request"' in m.payload and b"Entity" in m.payload]
    )
    BUILD.mkdir(parents=True, exist_ok=True)
    shot = BUILD / "report.png"
    shot.unlink(missing_ok=True)
    result = chromium(tmp_path, "--window-size=1280,1800", f"--screenshot={shot}", page.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gaps_are_shaded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A drop in the journal is a shaded stretch of the timeline and a row of the gaps table."""
    writer = JournalWriter(tmp_path / "j", WriterOptions())
    writer.open()
    writer.append_messages([Incoming(0, CORE_SUBJECT, "", None, b"{}", None)])
    writer.append_marker(MarkerType.DROPPED, {"count": 3})
    writer.close()
    code, _out, err = cli(capsys, "report", tmp_path / "j", "--out", tmp_path / "r.html")
    assert code == 0, err
    text = (tmp_path / "r.html").read_text()
    assert text.count('<rect class="gap" data-kind="dropped"') == 1
    assert '<table id="gaps">' in text


def test_a_record_stamped_before_the_first_counts_in_the_first_bucket(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After the wall clock stepped back, an earlier-stamped record is drawn, not a crash."""
    writer = JournalWriter(tmp_path / "j", WriterOptions())
    writer.open()
    payload = (Path(__file__).parents[1] / "data/meshsync-samples/core-added-pod.json").read_bytes()
    late, early = 2_000_000_000_000_000_000, 1_000_000_000_000_000_000
    writer.append_messages([Incoming(late, CORE_SUBJECT, "", None, payload, None)])
    writer.append_messages([Incoming(early, CORE_SUBJECT, "", None, payload, None)])
    writer.close()
    code, _out, err = cli(capsys, "report", tmp_path / "j", "--out", tmp_path / "r.html")
    assert code == 0, err
    assert (tmp_path / "r.html").read_text().count("Pod") >= 1
