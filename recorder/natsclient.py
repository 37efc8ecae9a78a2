"""The nats-py edge shared by recording and replay: the client and its connection options.

`RecordingClient` keeps every header value, since NATS headers can repeat a name.

nats-py parses headers into a dict, so a name sent twice keeps only its last value. The recorder
must journal headers exactly, and replay must send them back the same way, so headers arrive as
`HeaderPairs`: still the dict nats-py's API promises (last value per name), plus every pair in
arrival order. Publishing a `HeaderPairs` sends every pair, since nats-py encodes `items()`.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable
from typing import Any, Final

from nats.aio import client as nats_client_module
from nats.aio.client import Client
from nats.aio.subscription import Subscription

from recorder.config import NatsConfig, nats_password, nats_token
from recorder.errors import ConfigError, UnsupportedClientError

# nats-py retries a first connection forever inside connect() unless attempts are bounded (0
# means unbounded there), so a dead or refusing broker would never be reported: bound them, and
# lift the bound once connected (Bridge.connect) where reconnecting forever is what we want.
FIRST_CONNECT_OPTIONS: dict[str, Any] = {"max_reconnect_attempts": 1, "reconnect_time_wait": 0.2}


# Every (name, value) pair in arrival order: the journal record's `Headers` shape.
Pairs = tuple[tuple[str, str], ...]


class HeaderPairs(dict[str, str]):
    """A header dict (last value per name) that also keeps every (name, value) pair in order."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.pairs: Pairs = tuple(pairs)
        super().__init__(self.pairs)

    def items(self) -> Any:  # a view of every pair, not of the dict's unique keys
        # nats-py's publish encodes `items()`; give it every pair, repeats included.
        return _PairsView(self)


class _PairsView:
    def __init__(self, headers: HeaderPairs) -> None:
        self._pairs = headers.pairs

    def __iter__(self) -> Any:
        return iter(self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)


# What a direct handler gets: subject, reply, headers (or None), payload.
DirectHandler = Callable[[str, str, "dict[str, str] | None", bytes], None]


class RecordingClient(Client):
    """nats-py's Client, parsing header lines into HeaderPairs, with direct delivery.

    nats-py hands every message to a per-subscription asyncio queue and a task that awaits the
    callback: two hops and a task switch per message. Subscriptions registered with
    `deliver_directly` skip both: the protocol parser's message goes straight to a plain
    function (the recorder's own bounded intake is the only buffer). Everything else, JetStream
    and request inboxes included, takes nats-py's normal path.
    """

    def __init__(self) -> None:
        super().__init__()
        self._direct: dict[int, DirectHandler] = {}

    def deliver_directly(self, subscription: Subscription, handler: DirectHandler) -> None:
        self._direct[subscription._id] = handler

    async def _process_msg(
        self, sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes
    ) -> None:
        handler = self._direct.get(sid)
        if handler is None:
            await super()._process_msg(sid, subject, reply, data, headers)
            return
        stats = self.stats
        stats["in_msgs"] += 1
        stats["in_bytes"] += len(data)
        parsed = await self._process_headers(headers) if headers else None
        handler(subject.decode(), reply.decode(), parsed, data)

    @staticmethod
    def _parse_header_lines(raw: bytes) -> dict[str, str]:
        pairs = []
        for line in raw.split(b"\r\n"):
            name, sep, value = line.partition(b":")
            if not sep:
                continue
            try:
                key = name.strip().decode("ascii")
            except UnicodeDecodeError:
                continue
            if key:
                pairs.append((key, value.strip(b" \t").decode("utf-8", "replace")))
        return HeaderPairs(pairs)


# What RecordingClient overrides or reads of nats-py's Client: a release that renames one of
# these would silently skip our header parsing or direct delivery, so each is checked first.
_CLIENT_INTERNALS: Final = ("_process_msg", "_process_headers", "_parse_header_lines")


def check_internals() -> None:
    """Refuse a nats-py whose internals differ from what RecordingClient overrides and reads."""
    missing = [f"Client.{name}" for name in _CLIENT_INTERNALS if not hasattr(Client, name)]
    subscription_init = getattr(Subscription.__init__, "__code__", None)
    if subscription_init is None or "id" not in subscription_init.co_varnames:
        missing.append("Subscription._id")
    # With fast_mail_parser installed, nats-py parses headers with it and never calls
    # _parse_header_lines, so repeated header names would collapse to their last value.
    if getattr(nats_client_module, "parse_email", None) is not None:
        missing.append("fast_mail_parser is installed and bypasses Client._parse_header_lines")
    if missing:
        raise UnsupportedClientError(nats_client_module.__version__, missing)


async def connect(**options: Any) -> RecordingClient:
    check_internals()
    client = RecordingClient()
    await client.connect(**options)
    return client


_OTHER_HOST: Final = (
    "the broker's certificate does not name the host in the URL; connect by a name it lists"
)
# Why a server certificate was refused, in the operator's terms, by OpenSSL's verify code.
_CERT_ADVICE: Final = {
    10: "the broker's certificate has expired; renew it, and check this host's clock",
    9: "the broker's certificate is not valid yet; check this host's clock",
    62: _OTHER_HOST,  # X509_V_ERR_HOSTNAME_MISMATCH
    64: _OTHER_HOST,  # X509_V_ERR_IP_ADDRESS_MISMATCH
    20: "the broker's certificate is not signed by a CA in nats.tls.ca_file",
    19: "the broker's certificate is self-signed and not in nats.tls.ca_file",
    18: "the broker's certificate is self-signed and not in nats.tls.ca_file",
}


def describe_error(exc: BaseException) -> str:
    """One line saying why a connection failed; a refused certificate gives OpenSSL's reason."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = (exc.verify_message or exc.reason or "unknown reason").rstrip(".")
        advice = _CERT_ADVICE.get(exc.verify_code)
        return f"certificate verify failed: {reason}" + (f" ({advice})" if advice else "")
    text = str(exc).strip() or type(exc).__name__
    return text.replace("nats: ", "")


def tls_context(nats_cfg: NatsConfig) -> ssl.SSLContext | None:
    tls = nats_cfg.tls
    needs_tls = (
        tls.ca_file or tls.cert_file or any(url.startswith("tls://") for url in nats_cfg.urls)
    )
    if not needs_tls:
        return None
    try:
        context = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
        if tls.cert_file:
            context.load_cert_chain(str(tls.cert_file), str(tls.key_file) if tls.key_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError("nats.tls", f"cannot load TLS files: {exc}") from None
    return context


def auth_options(nats_cfg: NatsConfig) -> dict[str, Any]:
    """Credentials for nats-py; secrets are read here, from files or inline values."""
    options: dict[str, Any] = {}
    password = nats_password(nats_cfg)
    token = nats_token(nats_cfg)
    if nats_cfg.user:
        options["user"] = nats_cfg.user
        options["password"] = password or ""
    if token:
        options["token"] = token
    if nats_cfg.nkey_seed_file:
        options["nkeys_seed"] = str(nats_cfg.nkey_seed_file)
    if nats_cfg.creds_file:
        options["user_credentials"] = str(nats_cfg.creds_file)
    return options
