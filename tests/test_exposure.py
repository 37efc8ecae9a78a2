"""Which secret-holding files others may read, and how a refused certificate is described."""

from __future__ import annotations

import ssl
from pathlib import Path

from recorder.config import load_config
from recorder.exposure import exposed_secrets, secrets_in_config_file
from recorder.natsclient import describe_error


def _config(tmp_path: Path, text: str, mode: int) -> Path:
    path = tmp_path / "recorder.yaml"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_a_config_file_spelling_out_a_password_or_url_credentials_holds_secrets(
    tmp_path: Path,
) -> None:
    """Inline passwords, tokens and URLs with userinfo count as secrets; file names do not."""
    text = "nats:\n  urls: ['nats://u:pw@h:4222']\n  user: u\n  password: pw\n  token: t\n"
    assert secrets_in_config_file(_config(tmp_path, text, 0o600)) == [
        "nats.password",
        "nats.token",
        "nats.urls",
    ]
    plain = "nats:\n  user: u\n  password_file: /run/secrets/pw\n"
    assert secrets_in_config_file(_config(tmp_path, plain, 0o600)) == []


def test_only_files_group_or_world_may_read_are_exposed(tmp_path: Path) -> None:
    """A 0640 config with a password and a 0604 token file are reported; 0600 and 0620 are not."""
    config = _config(tmp_path, "nats:\n  user: u\n  password: pw\n", 0o640)
    token = tmp_path / "token"
    token.write_text("t")
    token.chmod(0o604)
    cfg = load_config(None, {}, {"nats.token_file": str(token)})
    found = exposed_secrets(cfg, config)
    assert [(e.path, e.mode, e.holds) for e in found] == [
        (config, 0o640, "nats.password"),
        (token, 0o604, "nats.token_file"),
    ]
    config.chmod(0o600)
    token.chmod(0o620)  # writable by the group is another problem; not a leak of the secret
    assert exposed_secrets(cfg, config) == []


def _refused(code: int, message: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {message}")
    error.verify_code = code
    error.verify_message = message
    return error


def test_a_refused_certificate_is_described_by_its_reason_and_what_to_do() -> None:
    """OpenSSL's verify message without the [SSL: ...] noise, plus advice for known codes."""
    assert describe_error(_refused(10, "certificate has expired")) == (
        "certificate verify failed: certificate has expired "
        "(the broker's certificate has expired; renew it, and check this host's clock)"
    )
    assert describe_error(
        _refused(64, "IP address mismatch, certificate is not valid for 'x'.")
    ) == (
        "certificate verify failed: IP address mismatch, certificate is not valid for 'x' "
        "(the broker's certificate does not name the host in the URL; connect by a name it lists)"
    )
    assert describe_error(_refused(99, "something new")) == (
        "certificate verify failed: something new"
    )
    assert describe_error(OSError("nats: no servers available for connection")) == (
        "no servers available for connection"
    )
