"""The nats-py edge: the internals the recording client relies on are checked before connecting."""

from __future__ import annotations

import asyncio

import pytest
from nats.aio import client as nats_client_module
from nats.aio.client import Client

from recorder import natsclient
from recorder.errors import UnsupportedClientError
from recorder.natsclient import HeaderPairs, RecordingClient


def test_the_installed_nats_py_has_every_internal() -> None:
    """The pinned nats-py passes the start-up check."""
    natsclient.check_internals()


def test_a_missing_internal_is_refused_naming_the_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """A nats-py without _parse_header_lines is refused with its version and the missing name."""
    monkeypatch.delattr(Client, "_parse_header_lines")
    monkeypatch.delattr(RecordingClient, "_parse_header_lines")
    with pytest.raises(UnsupportedClientError) as caught:
        natsclient.check_internals()
    assert nats_client_module.__version__ in str(caught.value)
    assert "Client._parse_header_lines" in str(caught.value)


def test_fast_mail_parser_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """With fast_mail_parser, nats-py bypasses our header parser, so connecting is refused."""
    monkeypatch.setattr(nats_client_module, "parse_email", lambda raw: raw, raising=False)
    with pytest.raises(UnsupportedClientError, match="fast_mail_parser"):
        asyncio.run(natsclient.connect(servers=["nats://127.0.0.1:1"]))


def test_repeated_header_names_survive_nats_pys_header_path() -> None:
    """nats-py's own _process_headers, with our parser, keeps every repeated header pair."""
    client = RecordingClient()
    raw = b"NATS/1.0\r\nX-A: 1\r\nX-A: 2\r\nX-B: b\r\n\r\n"
    parsed = asyncio.run(client._process_headers(raw))
    assert isinstance(parsed, HeaderPairs)
    assert parsed.pairs == (("X-A", "1"), ("X-A", "2"), ("X-B", "b"))
