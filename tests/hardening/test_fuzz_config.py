"""`recorder config check` on malformed configuration: exit 2 and the dotted field, never a traceback.

Most cases run the CLI in-process (main() with argv, as tests/test_cli.py does) for speed; a few
run it as a subprocess to show the same holds for the installed command.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import typer.main
import yaml
from fuzz_support import fuzz_pair
from hypothesis import strategies as st

from recorder.cli import main
from recorder.config import ENV_VARS, LEAVES, SECTIONS
from recorder.log import reset_logging

# Typer rebuilds the click command on every call (~40 ms); it is the same command every time.
_command_of = functools.cache(typer.main.get_command)
_SCRATCH = Path(tempfile.mkdtemp(prefix="fuzz-config-"))
_ENV_LEAVES = {path: name for name, path in ENV_VARS.items()}
_SECRETS = [path for path, leaf in LEAVES.items() if leaf.secret]


@pytest.fixture(autouse=True, scope="module")
def _cleanup() -> Iterator[None]:
    yield
    for path in _SCRATCH.iterdir():
        path.unlink()
    _SCRATCH.rmdir()


@contextlib.contextmanager
def _environment(extra: Mapping[str, str]) -> Iterator[None]:
    """os.environ without RECORDER_* settings, plus `extra`, restored afterwards."""
    saved = dict(os.environ)
    try:
        for name in [name for name in os.environ if name.startswith("RECORDER_")]:
            del os.environ[name]
        os.environ.update(extra)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def config_check(text: str | None, env: Mapping[str, str] | None = None) -> tuple[int, str]:
    """Run `recorder config check` in-process on a config file holding `text`: (exit code, output)."""
    argv = ["--log-format", "json", "config", "check"]
    if text is not None:
        fd, name = tempfile.mkstemp(suffix=".yaml", dir=_SCRATCH)
        os.close(fd)
        path = Path(name)
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        argv += ["--config", str(path)]
    out, err = io.StringIO(), io.StringIO()
    try:
        with (
            _environment(env or {}),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            mock.patch.object(typer.main, "get_command", _command_of),
        ):
            try:
                main(argv)
                code: Any = 0
            except SystemExit as exit_info:
                code = exit_info.code
    finally:
        reset_logging()
    return (code if isinstance(code, int) else 0), out.getvalue() + err.getvalue()


def _nested(path: str, value: Any) -> dict[str, Any]:
    """{"a": {"b": value}} for "a.b"."""
    document: Any = value
    for part in reversed(path.split(".")):
        document = {part: document}
    return document  # type: ignore[no-any-return]


def _yaml(document: Any) -> str:
    return yaml.safe_dump(document, allow_unicode=True)


def assert_names_field(code: int, output: str, field: str) -> None:
    assert code == 2, output
    assert output.startswith("Error: "), output
    assert f"Error: {field}: " in output, output
    assert "Traceback" not in output


# Values of no setting's type: every leaf must refuse them and name itself.
WRONG_TYPED = st.one_of(
    st.dictionaries(
        st.text(max_size=5), st.integers() | st.text(max_size=5), min_size=1, max_size=3
    ),
    st.lists(
        st.integers() | st.none() | st.floats(allow_nan=False) | st.dates(), min_size=1, max_size=3
    ),
    st.lists(
        st.dictionaries(st.dates(), st.integers(), min_size=1, max_size=2), min_size=1, max_size=2
    ),
)
LEAF_NAMES = st.sampled_from(sorted(LEAVES))


@fuzz_pair(st.tuples(LEAF_NAMES, WRONG_TYPED), quick=150, long=3_000)
def check_wrong_type_in_file(case: tuple[str, Any]) -> None:
    """A value of the wrong type for any setting in the YAML file is exit 2 naming that setting."""
    field, value = case
    code, output = config_check(_yaml(_nested(field, value)))
    assert_names_field(code, output, field)
    if field in _SECRETS:
        assert "value of type" in output  # a secret is never echoed, even a malformed one


test_wrong_type_in_file, test_wrong_type_in_file_long = check_wrong_type_in_file


def test_every_setting_refuses_a_mapping() -> None:
    """Each of the schema's settings, one by one, refuses a mapping and names its dotted path."""
    for field in LEAVES:
        code, output = config_check(_yaml(_nested(field, {"x": 1})))
        assert_names_field(code, output, field)


ANY_VALUE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=20)
    | st.dates()
    | st.sampled_from(
        ["1s", "0", "-1", "64MiB", "off", "1_", "1__0", "nats://[x", "127.0.0.1:²", "yes"]
    ),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)
KEYS = LEAF_NAMES | st.sampled_from(sorted(SECTIONS)) | st.text(min_size=1, max_size=10)


def _one_error_line(output: str) -> bool:
    """Whether the output is one `Error: <what>: <why>` line, maybe followed by one hint line."""
    lines = output.rstrip("\n").split("\n")
    return bool(re.match(r"Error: .+: ", lines[0])) and (
        len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("Hint: "))
    )


@fuzz_pair(st.dictionaries(KEYS, ANY_VALUE, max_size=4), quick=200, long=3_000)
def check_any_document(settings_by_path: dict[str, Any]) -> None:
    """Any YAML document of known and unknown keys is either valid (exit 0) or exit 2 naming what is wrong."""
    document: dict[str, Any] = {}
    for path, value in settings_by_path.items():
        document.update(_nested(path, value))
    code, output = config_check(_yaml(document))
    assert code in (0, 2), output
    assert "Traceback" not in output
    if code == 2:
        assert _one_error_line(output), output
    else:
        assert output.strip() == "configuration is valid", output


test_any_config_document, test_any_config_document_long = check_any_document


@fuzz_pair(
    st.text(max_size=200)
    | st.sampled_from(
        ["a: &x [*x]\n", "? [a]\n: b\n", "journal: " + "[" * 3000 + "]" * 3000 + "\n"]
    ),
    quick=150,
    long=3_000,
)
def check_any_text(text: str) -> None:
    """Any text as the config file is valid or exit 2 with one Error line; never a traceback."""
    code, output = config_check(text)
    assert code in (0, 2), output
    assert "Traceback" not in output
    if code == 2:
        assert _one_error_line(output), output


test_any_config_text, test_any_config_text_long = check_any_text

ENV_TEXT = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=20
) | st.sampled_from(
    [
        "",
        " ",
        "-1",
        "1_",
        "1__0",
        "²",
        "\uff11\uff12",
        "1e309",
        "nan",
        "inf",
        "nats://[::1",
        "a,,b",
        "off",
    ]
)


@fuzz_pair(st.tuples(st.sampled_from(sorted(ENV_VARS)), ENV_TEXT), quick=200, long=3_000)
def check_env(case: tuple[str, str]) -> None:
    """Any text in any RECORDER_* variable is valid or exit 2 naming the setting."""
    name, value = case
    code, output = config_check(None, {name: value})
    assert code in (0, 2), output
    assert "Traceback" not in output
    if code == 2:
        if name == "RECORDER_LOG_LEVEL" and "--log-level" in output:
            return  # also a global option, which the CLI checks before the config loads
        assert _one_error_line(output), output
        # The setting itself, or (a combination check) the other setting it conflicts with.
        named = output.removeprefix("Error: ").split(": ")[0]
        assert named == ENV_VARS[name] or named in LEAVES, output


test_any_env_value, test_any_env_value_long = check_env


def test_unknown_env_variable_is_named() -> None:
    """A misspelt RECORDER_ variable is exit 2 naming it and suggesting the real one."""
    code, output = config_check(None, {"RECORDER_NATS_URLL": "nats://x:1"})
    assert code == 2 and "RECORDER_NATS_URLL: unknown environment variable" in output, output
    assert "RECORDER_NATS_URL" in output


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("nats:\n  urls: ['nats://[abc']\n", "nats.urls"),
        ("http:\n  listen: '127.0.0.1:²'\n", "http.listen"),
        ("nats:\n  name: {2024-01-01: x}\n", "nats.name"),
        ("subjects: [a, {2024-01-01: 1}]\n", "subjects"),
        ('nats:\n  tls:\n    ca_file: "a\\0b"\n', "nats.tls.ca_file"),
        ("journal:\n  dir: &x [*x]\n", "journal.dir"),
        ("? [a]\n: b\n", None),
        ("journal: " + "[" * 5000 + "]" * 5000 + "\n", None),
    ],
    ids=[
        "bad-ipv6",
        "superscript-port",
        "date-key",
        "date-key-in-list",
        "nul-path",
        "alias-cycle",
        "list-key",
        "deep",
    ],
)
def test_regressions_found_by_fuzzing(text: str, field: str | None) -> None:
    """Inputs that used to raise ValueError, TypeError or RecursionError are exit 2 naming the field."""
    code, output = config_check(text)
    assert code == 2 and "Traceback" not in output, output
    assert f"Error: {field}: " in output if field else "invalid YAML" in output, output


@pytest.mark.parametrize(
    "env", [{"RECORDER_QUEUE_MAX_MESSAGES": "1_"}, {"RECORDER_NATS_URL": "nats://[::1"}]
)
def test_regressions_from_the_environment(env: dict[str, str]) -> None:
    """Env values that used to crash the loader are exit 2 naming the setting."""
    code, output = config_check(None, env)
    assert_names_field(code, output, ENV_VARS[next(iter(env))])


def test_a_password_inside_a_malformed_url_list_is_not_echoed() -> None:
    """An error about a list of URLs masks a user:password@ in it, like every other message."""
    code, output = config_check("nats:\n  urls: ['nats://u:topsecret1@h:4222', 5]\n")
    assert_names_field(code, output, "nats.urls")
    assert "topsecret1" not in output


def test_a_billion_laughs_value_is_refused_without_expanding_it() -> None:
    """A value whose YAML aliases expand to a billion strings is refused at once, not rendered whole."""
    levels = ["&a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"&a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    started = time.monotonic()
    code, output = config_check("journal:\n  dir: [" + ", ".join(levels) + "]\n")
    assert_names_field(code, output, "journal.dir")
    assert time.monotonic() - started < 5 and len(output) < 1000


# -- subprocess: the installed command ----------------------------------------------------------


def _subprocess_check(
    tmp_path: Path, text: str | None, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "recorder", "--log-format", "json", "config", "check"]
    if text is not None:
        (tmp_path / "c.yaml").write_text(text)
        argv += ["--config", str(tmp_path / "c.yaml")]
    base = {k: v for k, v in os.environ.items() if not k.startswith("RECORDER_")}
    return subprocess.run(
        argv, capture_output=True, text=True, env={**base, **env}, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("text", "env", "field"),
    [
        ("journal:\n  segment_max_bytes: [1, 2]\n", {}, "journal.segment_max_bytes"),
        ("nats:\n  retry_on_start: maybe\n", {}, "nats.retry_on_start"),
        ("jornal:\n  dir: x\n", {}, "jornal"),
        (None, {"RECORDER_JOURNAL_FSYNC_INTERVAL": "soon"}, "journal.fsync_interval"),
        (None, {"RECORDER_NATS_URL": "nats://[::1"}, "nats.urls"),
        (None, {"RECORDER_JETSTREAM_BATCH": "1_"}, "jetstream.batch"),
    ],
    ids=["list-size", "bool", "unknown-section", "env-duration", "env-url", "env-int"],
)
def test_config_check_subprocess(
    tmp_path: Path, text: str | None, env: dict[str, str], field: str
) -> None:
    """The installed command exits 2 with one Error line naming the field, on stderr only."""
    result = _subprocess_check(tmp_path, text, env)
    assert result.returncode == 2, result
    assert result.stderr.startswith(f"Error: {field}: "), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
