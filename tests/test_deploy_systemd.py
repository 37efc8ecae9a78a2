"""The systemd units agree with what the daemon does, and systemd itself accepts them."""

from __future__ import annotations

import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from broker import Broker
from polling import wait_until

from recorder.config import ENV_CONFIG_PATH, ENV_VARS, load_config
from recorder.recording.daemon import _STATUS_INTERVAL_S, DRAIN_TIMEOUT_S
from recorder.recording.sdnotify import Notifier
from recorder.units import parse_duration

ROOT = Path(__file__).resolve().parents[1]
UNITS = ROOT / "systemd"
SERVICE = UNITS / "meshsync-recorder.service"
COMPACT = UNITS / "meshsync-recorder-compact.service"
TIMER = UNITS / "meshsync-recorder-compact.timer"
ENV_EXAMPLE = UNITS / "env.example"
INSTALLED_RECORDER = "/opt/meshsync-recorder/bin/recorder"
SPECIFIERS = {"%S": "/var/lib", "%d": "/run/credentials/meshsync-recorder.service"}

Unit = dict[str, list[tuple[str, str]]]


def parse_unit(text: str) -> Unit:
    """Sections of (key, value) pairs in order; keys may repeat, as systemd allows."""
    unit: Unit = {}
    section: list[tuple[str, str]] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], [])
            continue
        key, sep, value = line.partition("=")
        assert sep and section is not None, f"line {number}: not KEY=VALUE in a section: {raw}"
        assert not line.endswith("\\"), f"line {number}: keep settings on one line"
        section.append((key.strip(), value.strip()))
    return unit


def get(unit: Unit, section: str, key: str) -> str:
    """The value systemd uses for a single-valued key: the last one set."""
    values = [v for k, v in unit.get(section, []) if k == key]
    assert values, f"[{section}] {key}= is not set"
    return values[-1]


def environment(unit: Unit) -> dict[str, str]:
    """Environment= assignments with the specifiers systemd would resolve."""
    env: dict[str, str] = {}
    for key, value in unit["Service"]:
        if key == "Environment":
            for pair in shlex.split(value):
                name, _, val = pair.partition("=")
                for spec, resolved in SPECIFIERS.items():
                    val = val.replace(spec, resolved)
                env[name] = val
    return env


def example_assignments() -> tuple[dict[str, str], dict[str, str]]:
    """The env example's active lines, and its commented-out `#RECORDER_...=` suggestions."""
    active, suggested = {}, {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        target = suggested if line.startswith("#RECORDER_") else active
        line = line.removeprefix("#") if target is suggested else line
        if line.strip() and not line.startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f"not VARIABLE=value: {line}"
            target[name] = value
    return active, suggested


def example_drop_in() -> str:
    """The credentials drop-in that the env example shows inside a comment."""
    lines = ENV_EXAMPLE.read_text().splitlines()
    start = lines.index("#   [Service]")
    block = []
    for line in lines[start:]:
        if not line.startswith("#   "):
            break
        block.append(line.removeprefix("#   "))
    return "\n".join(block) + "\n"


@pytest.fixture(scope="module")
def service() -> Unit:
    return parse_unit(SERVICE.read_text())


@pytest.fixture(scope="module")
def compact() -> Unit:
    return parse_unit(COMPACT.read_text())


def test_service_speaks_the_notify_protocol_and_reloads_by_sighup(service: Unit) -> None:
    """Type=notify from the main process, ExecStart runs the daemon, reload sends SIGHUP."""
    assert get(service, "Service", "Type") == "notify"
    assert get(service, "Service", "NotifyAccess") == "main"
    assert get(service, "Service", "ExecStart") == f"{INSTALLED_RECORDER} run"
    assert get(service, "Service", "ExecReload") == "/bin/kill -HUP $MAINPID"
    assert get(service, "Service", "Restart") == "on-failure"
    assert parse_duration(get(service, "Service", "RestartSec")) == 2
    # ConfigError and UsageError exit 2: a restart loop cannot fix a bad setting.
    assert get(service, "Service", "RestartPreventExitStatus") == "2"


def test_watchdog_is_pinged_well_within_its_interval(service: Unit) -> None:
    """The daemon pings at least every _STATUS_INTERVAL_S and at half WatchdogSec: both fit."""
    watchdog_s = parse_duration(get(service, "Service", "WatchdogSec"))
    assert watchdog_s >= 2 * _STATUS_INTERVAL_S
    notifier = Notifier({"WATCHDOG_USEC": str(int(watchdog_s * 1e6))})
    assert notifier.watchdog_interval_s == watchdog_s / 2
    ping_every_s = min(notifier.watchdog_interval_s, _STATUS_INTERVAL_S)  # Daemon._heartbeat
    assert ping_every_s <= watchdog_s / 2


def test_stop_timeout_covers_the_graceful_shutdown(service: Unit) -> None:
    """TimeoutStopSec leaves the drain and the final flush and fsync time before SIGKILL."""
    assert parse_duration(get(service, "Service", "TimeoutStopSec")) >= DRAIN_TIMEOUT_S + 15


def test_start_is_bounded_because_ready_never_waits_for_the_broker(service: Unit) -> None:
    """READY=1 follows the journal's opening, so the start has a bound and an unreachable broker
    never hangs `systemctl enable --now` (tests/integration/test_run_capture.py runs it)."""
    timeout = get(service, "Service", "TimeoutStartSec")
    assert timeout != "infinity"
    assert 30 <= parse_duration(timeout) <= 300


HARDENING = {
    "DynamicUser": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "NoNewPrivileges": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "CapabilityBoundingSet": "",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "RestrictNamespaces": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "SystemCallArchitectures": "native",
    "UMask": "0077",
    # As nats-server's own hardened unit has them.
    "PrivateUsers": "yes",
    "PrivateMounts": "yes",
    "ProtectProc": "invisible",
    "ProcSubset": "pid",
}


@pytest.mark.parametrize("path", [SERVICE, COMPACT], ids=lambda p: p.name)
def test_units_are_hardened(path: Path) -> None:
    """Both services run sandboxed with the same hardening; the recorder only needs IP."""
    unit = parse_unit(path.read_text())
    for key, value in HARDENING.items():
        assert get(unit, "Service", key) == value, key
    # Lists accumulate: the service set, then the groups taken out of it.
    filters = [v for k, v in unit["Service"] if k == "SystemCallFilter"]
    assert filters == ["@system-service", "~@privileged @resources"]
    families = get(unit, "Service", "RestrictAddressFamilies").split()
    assert set(families) <= {"AF_UNIX", "AF_INET", "AF_INET6"}


def _memory_bytes(value: str) -> int:
    match = re.fullmatch(r"(\d+)([KMG]?)", value)
    assert match, f"MemoryMax={value}: a number with K, M or G"
    return int(match.group(1)) * 1024 ** " KMG".index(match.group(2) or " ")


def test_memory_limit_leaves_room_for_a_burst(service: Unit) -> None:
    """MemoryMax is set and the client's burst buffer (as configured) is at most half of it."""
    active, _ = example_assignments()
    cfg = load_config(None, {**environment(service), **active}, {})
    assert cfg.queue_max_bytes <= _memory_bytes(get(service, "Service", "MemoryMax")) // 2


def test_journal_lives_in_the_shared_state_directory(service: Unit, compact: Unit) -> None:
    """Journal dir is StateDirectory (0700); the compactor shares its User= and reads it."""
    for unit in (service, compact):
        assert get(unit, "Service", "StateDirectory") == "meshsync-recorder"
        assert get(unit, "Service", "StateDirectoryMode") == "0700"
        assert get(unit, "Service", "User") == "meshsync-recorder"
    assert environment(service)["RECORDER_JOURNAL_DIR"] == "/var/lib/meshsync-recorder"
    assert get(service, "Service", "EnvironmentFile") == "-/etc/meshsync-recorder/env"
    command = shlex.split(get(compact, "Service", "ExecStart"))
    assert command[:3] == [INSTALLED_RECORDER, "compact", "%S/meshsync-recorder"]
    assert "--checkpoint" in command
    assert get(compact, "Service", "Type") == "oneshot"
    timer = parse_unit(TIMER.read_text())
    assert get(timer, "Timer", "OnCalendar")
    assert get(timer, "Install", "WantedBy") == "timers.target"


def test_named_variables_are_real_settings(service: Unit) -> None:
    """Every RECORDER_* the unit and the env example name is a setting, and they load."""
    active, suggested = example_assignments()
    drop_in = environment(parse_unit(example_drop_in()))
    named = {*environment(service), *active, *suggested, *drop_in}
    assert named <= {*ENV_VARS, ENV_CONFIG_PATH}, named - {*ENV_VARS, ENV_CONFIG_PATH}
    load_config(None, {**environment(service), **active}, {})
    load_config(None, {**environment(service), **active, **drop_in}, {})


def _systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    return found


def _installable_copy(tmp_path: Path) -> Path:
    """The units with ExecStart pointing at this venv's recorder, plus the documented drop-in."""
    recorder = Path(sys.executable).parent / "recorder"
    assert recorder.exists()
    for unit in (SERVICE, COMPACT, TIMER):
        text = unit.read_text().replace(INSTALLED_RECORDER, str(recorder))
        (tmp_path / unit.name).write_text(text)
    drop_in = tmp_path / f"{SERVICE.name}.d"
    drop_in.mkdir()
    (drop_in / "credentials.conf").write_text(example_drop_in())
    return tmp_path


def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    """systemd's own parser finds no error and no warning in the units and the drop-in."""
    analyze = _systemd_analyze()
    units = _installable_copy(tmp_path)
    names = [SERVICE.name, COMPACT.name, TIMER.name]
    result = subprocess.run(
        [analyze, "verify", *names], cwd=units, capture_output=True, text=True, timeout=60
    )
    ours = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if "meshsync-recorder" in line or str(units) in line
    ]
    assert result.returncode == 0 and not ours, result.stdout + result.stderr


@pytest.mark.parametrize("unit", [SERVICE.name, COMPACT.name])
def test_systemd_analyze_security_exposure_is_at_most_1_5(tmp_path: Path, unit: str) -> None:
    """The offline security review rates each service's exposure at most 1.5 of 10."""
    analyze = _systemd_analyze()
    units = _installable_copy(tmp_path)
    result = subprocess.run(
        [analyze, "security", "--offline=yes", "--threshold=15", unit],
        cwd=units,
        capture_output=True,
        text=True,
        timeout=60,
    )
    exposure = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert exposure, result.stdout[-3000:] + result.stderr
    assert float(exposure.group(1)) <= 1.5, result.stdout[-3000:]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr


# The prctl(2) constants for the kernel's own memory-deny-write-execute (Linux >= 6.3).
PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
_UNDER_MDWE = (
    "import ctypes, os, sys\n"
    f"if ctypes.CDLL(None).prctl({PR_SET_MDWE}, {PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0) != 0:\n"
    "    sys.exit(77)\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve_and_stop(
    launcher: list[str], env: dict[str, str], port: int, path: str = "/healthz"
) -> None:
    """Start the daemon through `launcher`, wait for `path` to answer 200, SIGTERM, require 0.

    A launcher that exits 77 cannot set up its restriction on this machine: the test skips.
    """
    daemon = subprocess.Popen(
        launcher, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )

    def answer() -> tuple[bytes] | None:
        """(body,) once `path` answers, (b"",) once the daemon has exited, else None."""
        if daemon.poll() is not None:
            return (b"",)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                return (r.read(),)
        except OSError:
            return None

    try:
        (body,) = wait_until(answer, 20, f"{path} to answer or the daemon to exit")
        if daemon.poll() == 77:
            pytest.skip(daemon.stderr.read().strip() if daemon.stderr else "not supported here")
        assert body, daemon.stderr.read() if daemon.poll() is not None else f"no answer on {path}"
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=15)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    assert daemon.returncode == 0, stderr


def _daemon_env(tmp_path: Path, port: int, nats_url: str) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "RECORDER_JOURNAL_DIR": str(tmp_path / "journal"),
        "RECORDER_HTTP_LISTEN": f"127.0.0.1:{port}",
        "RECORDER_NATS_URL": nats_url,
        "RECORDER_JOURNAL_MIN_FREE_BYTES": "0",
    }


def test_daemon_runs_without_write_execute_memory(tmp_path: Path) -> None:
    """MemoryDenyWriteExecute holds: the daemon starts, serves and stops under the kernel's MDWE."""
    recorder = Path(sys.executable).parent / "recorder"
    port = _free_port()
    env = _daemon_env(tmp_path, port, f"nats://127.0.0.1:{_free_port()}")  # nobody: it retries
    _serve_and_stop([sys.executable, "-c", _UNDER_MDWE, str(recorder), "run"], env, port)


# Denies each named system call with EPERM (as SystemCallErrorNumber=EPERM does), checks that
# the filter bites, then runs the command.
_UNDER_SECCOMP = """\
import ctypes, ctypes.util, errno, os, sys
found = ctypes.util.find_library("seccomp")
if found is None:
    sys.exit(77)
lib = ctypes.CDLL(found)
lib.seccomp_init.restype = ctypes.c_void_p
lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
lib.seccomp_load.argtypes = [ctypes.c_void_p]
ctx = lib.seccomp_init(0x7FFF0000)  # SCMP_ACT_ALLOW
for name in sys.argv[1].split():
    number = lib.seccomp_syscall_resolve_name(name.encode())
    if number >= 0:  # a name this architecture has
        assert lib.seccomp_rule_add(ctx, 0x00050000 | errno.EPERM, number, 0) == 0, name
assert lib.seccomp_load(ctx) == 0
try:
    os.nice(1)  # setpriority, in @resources
except PermissionError:
    os.execv(sys.argv[2], sys.argv[2:])
sys.exit("the filter did not deny setpriority")
"""


def _syscalls(group: str, analyze: str) -> set[str]:
    """The system calls of a systemd syscall-filter group, nested groups expanded."""
    listing = subprocess.run(
        [analyze, "syscall-filter", group], capture_output=True, text=True, check=True, timeout=30
    ).stdout.splitlines()
    names: set[str] = set()
    for line in listing[1:]:
        entry = line.strip()
        if entry.startswith("@"):
            names |= _syscalls(entry, analyze)
        elif entry and not entry.startswith("#"):
            names.add(entry)
    return names


def test_daemon_records_with_the_units_system_call_filter(
    tmp_path: Path, nats_server: Broker
) -> None:
    """`SystemCallFilter=~@privileged @resources` holds: the daemon subscribes, serves and stops.

    libseccomp (which systemd itself uses) installs the same deny list with EPERM.
    """
    analyze = _systemd_analyze()
    (denied,) = [
        v
        for k, v in parse_unit(SERVICE.read_text())["Service"]
        if k == "SystemCallFilter" and v.startswith("~")
    ]
    names = set().union(*(_syscalls(group, analyze) for group in denied[1:].split()))
    recorder = Path(sys.executable).parent / "recorder"
    port = _free_port()
    env = _daemon_env(tmp_path, port, nats_server.url)
    launcher = [sys.executable, "-c", _UNDER_SECCOMP, " ".join(sorted(names)), str(recorder), "run"]
    _serve_and_stop(launcher, env, port, "/readyz")  # 200 once subscribed to the broker
