"""TLS to the broker with certificates the test makes: mutual TLS records; a rejected certificate is one clear error.

The `cryptography` package is not a dependency, so the certificates come from the `openssl`
command; the tests skip when it is missing.
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from broker import NatsServer
from hostile_report import report
from run_helpers import Recorders, messages_of, numbered, publish, read_records

from recorder.meshsync import CORE_SUBJECT

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path
    other_client_cert: Path
    other_client_key: Path


def _openssl(directory: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True, timeout=60)


def _ca(directory: Path, name: str) -> None:
    _openssl(
        directory, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
        "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip


def _leaf(directory: Path, name: str, ca: str, extensions: str, days: str = "2") -> None:
    _openssl(
        directory, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}",
    )  # fmt: skip
    (directory / f"{name}.ext").write_text(extensions)
    _openssl(
        directory, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-out", f"{name}.pem", "-days", days, "-extfile", f"{name}.ext",
    )  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA with a server certificate for 127.0.0.1 (IP SAN) and a client certificate, and a second CA."""
    directory = tmp_path_factory.mktemp("pki")
    _ca(directory, "ca")
    _ca(directory, "other-ca")
    _leaf(directory, "server", "ca", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    _leaf(directory, "client", "ca", "extendedKeyUsage=clientAuth\n")
    _leaf(directory, "other-client", "other-ca", "extendedKeyUsage=clientAuth\n")
    # Signed by the trusted CA, yet wrong: for another host, or expired yesterday.
    _leaf(directory, "wrong-host", "ca", "subjectAltName=DNS:nats.example.invalid\n")
    _leaf(directory, "expired", "ca", "subjectAltName=IP:127.0.0.1\n", days="-1")
    d = directory
    return Pki(
        d / "ca.pem", d / "server.pem", d / "server.key", d / "client.pem", d / "client.key",
        d / "other-ca.pem", d / "other-client.pem", d / "other-client.key",
    )  # fmt: skip


@pytest.fixture(scope="module")
def tls_server(pki: Pki) -> Iterator[NatsServer]:
    """nats-server requiring TLS and a client certificate signed by the test CA (verify: true)."""
    config = (
        "tls {\n"
        f"  cert_file: {json.dumps(str(pki.server_cert))}\n"
        f"  key_file: {json.dumps(str(pki.server_key))}\n"
        f"  ca_file: {json.dumps(str(pki.ca))}\n"
        "  verify: true\n  timeout: 2\n}\n"
    )
    with NatsServer(config_text=config) as server:
        yield server


def _tls_url(server: NatsServer) -> str:
    return f"tls://127.0.0.1:{server.port}"


def _client_context(pki: Pki) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    context.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    return context


def test_recorder_records_over_mutual_tls(
    tls_server: NatsServer, pki: Pki, recorders: Recorders, tmp_path: Path
) -> None:
    """With the CA and a client certificate the recorder connects over TLS and journals what is published."""
    env = {
        "RECORDER_NATS_TLS_CA_FILE": str(pki.ca),
        "RECORDER_NATS_TLS_CERT_FILE": str(pki.client_cert),
        "RECORDER_NATS_TLS_KEY_FILE": str(pki.client_key),
    }
    recorder = recorders.start(tmp_path / "journal", _tls_url(tls_server), env=env)
    recorder.wait_ready()
    sent = numbered(CORE_SUBJECT, 20, prefix="over-tls-")
    publish(_tls_url(tls_server), sent, tls=_client_context(pki))
    recorder.wait_written(len(sent))
    assert recorder.stop() == 0
    got = messages_of(read_records(tmp_path / "journal"))
    assert [m.payload for m in got] == [m.payload for m in sent]
    connected = [e for e in recorder.events() if e.get("event") == "broker_connected"]
    assert connected and connected[0]["url"].startswith("tls://127.0.0.1:")


REJECTIONS = {
    # (what the recorder is given) -> a word its one error line must contain
    "client-cert-from-another-ca": ("ca", "other-client", ""),
    "no-client-cert": ("ca", None, ""),
    "server-cert-not-trusted": (
        "other-ca",
        "client",
        "certificate verify failed: unable to get local issuer certificate",
    ),
}


@pytest.mark.parametrize("case", list(REJECTIONS))
def test_a_rejected_certificate_is_one_clear_error(
    case: str, tls_server: NatsServer, pki: Pki, recorders: Recorders, tmp_path: Path
) -> None:
    """A certificate either side refuses ends the recorder quickly, non-zero, with one Error line naming the URL."""
    ca, client, expected = REJECTIONS[case]
    env = {
        "RECORDER_NATS_RETRY_ON_START": "false",
        "RECORDER_NATS_CONNECT_TIMEOUT": "1s",  # bounds how long a hung TLS connect is waited for
        "RECORDER_NATS_TLS_CA_FILE": str(pki.ca if ca == "ca" else pki.other_ca),
    }
    if client == "client":
        env |= {"RECORDER_NATS_TLS_CERT_FILE": str(pki.client_cert)}
        env |= {"RECORDER_NATS_TLS_KEY_FILE": str(pki.client_key)}
    elif client == "other-client":
        env |= {"RECORDER_NATS_TLS_CERT_FILE": str(pki.other_client_cert)}
        env |= {"RECORDER_NATS_TLS_KEY_FILE": str(pki.other_client_key)}
    started = time.monotonic()
    recorder = recorders.start(tmp_path / "journal", _tls_url(tls_server), env=env)
    code = recorder.wait_exit(20)
    assert code != 0
    assert time.monotonic() - started < 15
    stderr = recorder.stderr()
    lines = [line for line in stderr.splitlines() if not line.startswith("{")]
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"Error: cannot connect to {_tls_url(tls_server)}: "), lines
    assert expected in lines[0], lines
    assert "Traceback" not in stderr
    print(f"{case}: {lines[0]}")  # shown with -s: the exact operator-facing line


def test_an_untrusted_server_with_retry_keeps_retrying_and_says_why(
    tls_server: NatsServer, pki: Pki, recorders: Recorders, tmp_path: Path
) -> None:
    """With retry on start (the default) an untrusted server certificate is logged and retried, not a silent hang."""
    env = {
        "RECORDER_NATS_CONNECT_TIMEOUT": "0.5s",
        "RECORDER_NATS_TLS_CA_FILE": str(pki.other_ca),
        "RECORDER_NATS_TLS_CERT_FILE": str(pki.client_cert),
        "RECORDER_NATS_TLS_KEY_FILE": str(pki.client_key),
    }
    recorder = recorders.start(tmp_path / "journal", _tls_url(tls_server), env=env)
    event = recorder.wait_event("broker_unreachable", timeout=15)
    assert "certificate verify failed" in event["error"]
    assert recorder.stop() == 0


SERVER_REJECTIONS = {
    # server certificate -> the reason the recorder's one error line must give
    "wrong-host": "certificate verify failed: IP address mismatch, certificate is not valid "
    "for '127.0.0.1' (the broker's certificate does not name the host in the URL; connect by a "
    "name it lists)",
    "expired": "certificate verify failed: certificate has expired (the broker's certificate "
    "has expired; renew it, and check this host's clock)",
}


@pytest.mark.parametrize("case", list(SERVER_REJECTIONS))
def test_a_server_certificate_for_another_host_or_expired_says_which(
    case: str, pki: Pki, recorders: Recorders, tmp_path: Path
) -> None:
    """A server certificate from the trusted CA that names another host, or has expired, ends the recorder with one Error line giving that reason."""
    directory = pki.ca.parent
    config = (
        "tls {\n"
        f"  cert_file: {json.dumps(str(directory / f'{case}.pem'))}\n"
        f"  key_file: {json.dumps(str(directory / f'{case}.key'))}\n"
        "  timeout: 2\n}\n"
    )
    env = {
        "RECORDER_NATS_RETRY_ON_START": "false",
        "RECORDER_NATS_CONNECT_TIMEOUT": "1s",
        "RECORDER_NATS_TLS_CA_FILE": str(pki.ca),
    }
    with NatsServer(config_text=config) as server:
        recorder = recorders.start(tmp_path / "journal", _tls_url(server), env=env)
        assert recorder.wait_exit(20) != 0
        stderr = recorder.stderr()
    lines = [line for line in stderr.splitlines() if not line.startswith("{")]
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"Error: cannot connect to {_tls_url(server)}: "), lines
    assert lines[0].endswith(f": {SERVER_REJECTIONS[case]}"), lines
    assert "Traceback" not in stderr
    report(f"TLS server certificate: {case}", error_line=lines[0].split(": ", 2)[2])
