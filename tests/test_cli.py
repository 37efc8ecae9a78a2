"""The command line end to end: output, exit codes and one-line errors on bad input."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from recorder.cli import main
from recorder.cli.config_commands import reference_table
from recorder.journal.options import WriterOptions
from recorder.journal.record import Incoming
from recorder.journal.writer import JournalWriter
from recorder.log import reset_logging

T0 = 1_795_000_000 * 10**9  # 2026-11-18


@pytest.fixture(autouse=True)
def _restore_logging() -> object:
    """The CLI points logging at capsys' stderr, which is gone after the test."""
    yield
    reset_logging()


def run_cli(
    capsys: pytest.CaptureFixture[str], *args: str, log_format: str = "json"
) -> tuple[int, str, str]:
    capsys.readouterr()  # drop whatever the set-up printed
    with pytest.raises(SystemExit) as exit_info:
        main(["--log-format", log_format, *args])
    captured = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 0), captured.out, captured.err


def make_journal(directory: Path, *, segments: int = 2) -> None:
    """A closed journal: 3 messages per segment on two subjects, one binary payload."""
    clock = iter(range(T0, T0 + 10**12, 10**9))
    writer = JournalWriter(directory, WriterOptions(), clock=lambda: next(clock))
    writer.open()
    for index in range(segments):
        writer.append_messages(
            [
                Incoming(
                    T0 + (index * 3 + 0) * 10**9,
                    "meshery.meshsync.core",
                    "",
                    None,
                    b'{"a":1}',
                    None,
                ),
                Incoming(
                    T0 + (index * 3 + 1) * 10**9,
                    "meshery.meshsync.request",
                    "_INBOX.1",
                    (("k", "v1"), ("k", "v2")),
                    b"{}",
                    None,
                ),
                Incoming(
                    T0 + (index * 3 + 2) * 10**9, "other.binary", "", None, b"\xff\x00\x01", None
                ),
            ]
        )
        if index < segments - 1:
            writer.rotate()
    writer.close()


def dump_lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if line]


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`recorder version` prints the name and version and exits 0."""
    code, out, _ = run_cli(capsys, "version")
    assert code == 0
    assert out.startswith("meshsync-recorder ")


def test_python_dash_m_recorder_works() -> None:
    """`python -m recorder` runs the same CLI as the console script."""
    result = subprocess.run(
        [sys.executable, "-m", "recorder", "version"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert "meshsync-recorder" in result.stdout


def test_inspect_lists_segments_and_totals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """inspect shows one row per segment with its state and ranges, then a total row."""
    make_journal(tmp_path / "j")
    code, out, _ = run_cli(capsys, "inspect", str(tmp_path / "j"))
    assert code == 0
    rows = out.splitlines()
    assert rows[0].split()[:3] == ["segment", "state", "records"]
    assert rows[2].startswith("00000001.seg  sealed")
    assert rows[3].startswith("00000002.seg  sealed")
    assert rows[-1].startswith("total (2)")


def test_inspect_json_gives_one_object_per_segment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """inspect --json prints machine-readable rows with the sequence ranges."""
    make_journal(tmp_path / "j")
    code, out, _ = run_cli(capsys, "inspect", "--json", str(tmp_path / "j"))
    assert code == 0
    rows = dump_lines(out)
    assert [row["state"] for row in rows] == ["sealed", "sealed"]
    assert rows[0]["first_seq"] == 1
    assert rows[1]["last_seq"] == rows[0]["last_seq"] + 4  # 3 messages + stop marker  # type: ignore[operator]


def test_dump_prints_json_lines_with_text_or_base64_payloads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """dump gives seq, RFC 3339 time, subject, reply, headers and the payload as text or base64."""
    make_journal(tmp_path / "j", segments=1)
    code, out, _ = run_cli(capsys, "dump", str(tmp_path / "j"))
    assert code == 0
    lines = dump_lines(out)
    assert [line["subject"] for line in lines] == [
        "meshery.meshsync.core",
        "meshery.meshsync.request",
        "other.binary",
    ]
    assert lines[0]["payload"] == '{"a":1}'
    assert lines[0]["time"] == "2026-11-18T11:06:40.000000000Z"
    assert lines[1]["headers"] == {"k": ["v1", "v2"]}
    assert lines[1]["reply"] == "_INBOX.1"
    assert base64.b64decode(str(lines[2]["payload_b64"])) == b"\xff\x00\x01"
    assert "payload" not in lines[2]


def test_dump_filters_by_subject_sequence_and_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--subject (wildcards), --from-seq/--to-seq and --since/--until select records."""
    make_journal(tmp_path / "j")
    directory = str(tmp_path / "j")
    _, out, _ = run_cli(capsys, "dump", directory, "--subject", "meshery.>")
    assert {line["subject"] for line in dump_lines(out)} == {
        "meshery.meshsync.core",
        "meshery.meshsync.request",
    }
    _, out, _ = run_cli(capsys, "dump", directory, "--from-seq", "3", "--to-seq", "4")
    assert [line["seq"] for line in dump_lines(out)] == [3, 4]
    _, out, _ = run_cli(
        capsys,
        "dump",
        directory,
        "--since",
        "2026-11-18T11:06:43Z",
        "--until",
        "2026-11-18T11:06:44Z",
    )
    assert [line["time"][:19] for line in dump_lines(out)] == [  # type: ignore[index]
        "2026-11-18T11:06:43",
        "2026-11-18T11:06:44",
    ]


def test_dump_includes_markers_only_when_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Marker records (started, stopped) appear with --markers and not without it."""
    make_journal(tmp_path / "j", segments=1)
    _, out, _ = run_cli(capsys, "dump", str(tmp_path / "j"))
    assert all("marker" not in line for line in dump_lines(out))
    _, out, _ = run_cli(capsys, "dump", "--markers", str(tmp_path / "j"))
    markers = [line["marker"] for line in dump_lines(out) if "marker" in line]
    assert markers == ["started", "stopped"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "Error: --since: not a time: 'yesterday'"),
        (["--subject", "a..b"], "Error: --subject: not a NATS subject or pattern: 'a..b'"),
    ],
)
def test_dump_rejects_bad_options_with_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    """A bad time or subject pattern exits 2 with one line naming the option."""
    make_journal(tmp_path / "j", segments=1)
    code, out, err = run_cli(capsys, "dump", str(tmp_path / "j"), *args)
    assert code == 2
    assert out == ""
    assert err.splitlines()[0].startswith(message)


@pytest.mark.parametrize("command", ["inspect", "verify", "repair", "dump"])
def test_missing_journal_directory_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """Every journal command names the directory it could not use and exits non-zero."""
    code, _, err = run_cli(capsys, command, str(tmp_path / "nope"))
    assert code == 1
    assert (
        err.splitlines()[0]
        == f"Error: {tmp_path / 'nope'}: not a journal directory (no such directory)"
    )


def test_verify_exits_0_when_clean_and_1_with_every_damaged_position(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """verify is quiet and 0 on a clean journal, and names segment and offset of a bit flip."""
    directory = tmp_path / "j"
    make_journal(directory)
    code, out, _ = run_cli(capsys, "verify", str(directory))
    assert code == 0
    assert out.strip().endswith("clean")
    segment = directory / "00000001.seg"
    data = bytearray(segment.read_bytes())
    data[100] ^= 0x40
    segment.write_bytes(bytes(data))
    code, out, _ = run_cli(capsys, "verify", str(directory))
    assert code == 1
    assert "00000001.seg offset " in out
    assert "1 problem(s)" in out


def test_repair_moves_damage_aside_and_then_verify_is_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """repair prints what it moved to quarantine; afterwards verify exits 0 and records remain."""
    directory = tmp_path / "j"
    make_journal(directory)
    segment = directory / "00000002.seg"
    segment.write_bytes(segment.read_bytes()[:-80])  # tear the tail: footer and last record
    code, out, _ = run_cli(capsys, "verify", str(directory))
    assert code == 1
    assert "torn tail" in out
    code, out, _ = run_cli(capsys, "repair", str(directory))
    assert code == 0
    assert "moved" in out
    assert "quarantine" in out
    assert list(directory.glob("*.quarantine"))
    code, out, _ = run_cli(capsys, "verify", str(directory))
    assert code == 0
    code, out, _ = run_cli(capsys, "repair", str(directory))
    assert out.strip() == "nothing to repair"


def test_config_show_masks_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """config show prints the effective YAML with the password masked."""
    config = tmp_path / "recorder.yaml"
    config.write_text("nats:\n  user: alice\n  password: s3cret-pw\n")
    monkeypatch.setenv("RECORDER_JOURNAL_DIR", "/var/lib/rec")
    code, out, err = run_cli(capsys, "config", "show", "--config", str(config))
    assert code == 0
    assert "s3cret-pw" not in out + err
    assert "dir: /var/lib/rec" in out
    assert "user: alice" in out


def test_config_check_names_the_bad_field_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad value gives exit code 2 and one line with the dotted field name."""
    config = tmp_path / "recorder.yaml"
    config.write_text("journal:\n  segment_max_bytes: lots\n")
    code, _, err = run_cli(capsys, "config", "check", "--config", str(config))
    assert code == 2
    first = err.splitlines()[0]
    assert first.startswith("Error: journal.segment_max_bytes: must be a size")
    assert str(config) in first


def test_config_check_accepts_the_example_file(capsys: pytest.CaptureFixture[str]) -> None:
    """The shipped example configuration is valid."""
    example = Path(__file__).resolve().parents[1] / "config" / "recorder.yaml"
    code, out, _ = run_cli(capsys, "config", "check", "--config", str(example))
    assert code == 0
    assert out.strip() == "configuration is valid"


def test_readme_configuration_reference_matches_the_schema() -> None:
    """The README's settings table is exactly what `recorder config reference` prints, so the
    documentation cannot drift from the config schema."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = readme.index("<!-- config-reference")
    table = readme[readme.index("\n", start) + 1 : readme.index("<!-- end config-reference -->")]
    assert table == reference_table()
