"""Publishing many messages over a nats-py connection for little more than building their bytes.

nats-py's `publish()` costs about 3 us a message before a byte moves: a coroutine, a subject
check and, whenever its flusher is idle, a fresh future queued to wake it. That is as much as
reading the message back from the journal, so a replay built on it reached only 35-46% of a bare
`publish()` loop. `Publisher` builds the same protocol commands nats-py builds
(`nats.protocol.command`), appends them to the same outbound buffer `publish()` appends to, and
wakes nats-py's flusher once per batch. Everything still goes through that one buffer, so the
order with nats-py's own commands (the PING of a flush) holds, and nats-py still owns the socket,
TLS and error handling.

The price is three nats-py internals, the ones `publish()` itself uses: the outbound buffer
`_pending`, its byte count `_pending_data_size`, and `_flush_pending()`. `Publisher` refuses a
client without them, and the integration tests publish through them to a real nats-server.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Final, Protocol

from nats.aio.client import Client
from nats.protocol.command import hpub_cmd

from recorder.errors import PublishError
from recorder.journal.record import Headers, Message

_INTERNALS: Final = ("_pending", "_pending_data_size", "_flush_pending")
# A header name is an RFC 7230 token: the rule nats-py's publish() enforces too.
_HEADER_NAME: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_STATUS_LINE: Final = b"NATS/1.0\r\n"
_CRLF: Final = b"\r\n"


def encode_headers(pairs: Headers) -> bytes:
    """The header block of an HPUB: every pair in order, repeated names included, unaltered.

    A recorded header never holds a line break (the parser splits on them); one that does came
    from a damaged or hand-made journal and would inject protocol, so it is refused, not mended.
    """
    lines = [_STATUS_LINE]
    for name, value in pairs:
        if not _HEADER_NAME.fullmatch(name):
            raise PublishError(f"header name {name!r} is not a valid header token")
        if "\r" in value or "\n" in value:
            raise PublishError(f"header {name!r} has a line break in its value")
        try:
            lines.append(f"{name}: {value}\r\n".encode())
        except UnicodeEncodeError:
            raise PublishError(f"header {name!r} has a value that is not UTF-8") from None
    lines.append(b"\r\n")
    return b"".join(lines)


def _has_space(text: str) -> bool:
    return any(char.isspace() for char in text)


class Sink(Protocol):
    """Where replay puts messages: `Publisher`, or a stand-in in tests of the replay loop."""

    unconfirmed_messages: int
    unconfirmed_bytes: int

    def add(self, messages: Sequence[Message]) -> None: ...

    async def send(self) -> None: ...

    async def confirm(self, timeout: float) -> None: ...


class Publisher:
    """Batches PUB/HPUB commands into a connected nats-py client's outbound buffer.

    `add()` is synchronous and cheap; `send()` hands the batch to nats-py's flusher and lets it
    run; `confirm()` also waits for the broker's PONG. The caller bounds the buffer by calling
    `send()` and `confirm()` often enough (`unsent_*` and `unconfirmed_*` say how much is open).
    """

    def __init__(self, nc: Client) -> None:
        missing = [name for name in _INTERNALS if not hasattr(nc, name)]
        if missing:
            raise PublishError(
                f"this nats-py version lacks {', '.join(missing)}; it is not supported"
            )
        self._nc = nc
        self._prefixes: dict[str, bytes] = {}  # per well-formed subject, for messages without reply
        self.unsent_bytes = 0
        self.unconfirmed_messages = 0
        self.unconfirmed_bytes = 0
        self._unsent_messages = 0
        self._unsent_payload = 0

    def add(self, messages: Sequence[Message]) -> None:
        """Append messages to the outbound buffer, in order; they leave with the next `send()`.

        Raises PublishError naming the seq of a message that cannot be sent; the ones before it
        are in the buffer.
        """
        nc = self._nc
        max_payload = nc.max_payload
        prefixes = self._prefixes
        push = nc._pending.append
        added = count = payload_bytes = 0
        try:
            for message in messages:
                seq, _time_ns, subject, reply, headers, payload, _stream_seq = message
                size = len(payload)
                if headers:
                    added += self._add_with_headers(message)
                elif size > max_payload:
                    raise PublishError(
                        f"seq {seq}: payload of {size} bytes exceeds the broker's max_payload "
                        f"({max_payload})"
                    )
                else:
                    # PUB <subject> <reply> <size>, as nats-py's pub_cmd() builds it, in
                    # pieces: the buffer is joined once when written, which beats copying each
                    # payload twice here. This loop is most of what publishing costs.
                    prefix = prefixes.get(subject) if not reply else None
                    if prefix is None:
                        prefix = self._prefix(seq, subject, reply)
                    head = b"%b%d\r\n" % (prefix, size)
                    push(head)
                    push(payload)
                    push(_CRLF)
                    added += len(head) + size + 2
                count += 1
                payload_bytes += size
        finally:
            nc._pending_data_size += added
            self.unsent_bytes += added
            self._unsent_messages += count
            self._unsent_payload += payload_bytes

    def _add_with_headers(self, message: Message) -> int:
        """Append an HPUB of `message`; returns its size."""
        nc = self._nc
        try:
            block = encode_headers(message.headers or ())
        except PublishError as exc:
            raise PublishError(f"seq {message.seq}: {exc}") from None
        if len(block) + len(message.payload) > nc.max_payload:
            raise PublishError(
                f"seq {message.seq}: payload of {len(message.payload)} bytes and headers of "
                f"{len(block)} bytes exceed the broker's max_payload ({nc.max_payload})"
            )
        self._prefix(message.seq, message.subject, message.reply)  # checks both
        command = hpub_cmd(message.subject, message.reply, block, message.payload)
        nc._pending.append(command)
        return len(command)

    def _prefix(self, seq: int, subject: str, reply: str) -> bytes:
        """b"PUB <subject> <reply> " once both are found well-formed.

        Kept per subject for messages without a reply (almost all): the lookup `add` makes.
        """
        # What nats-py's publish() checks: whitespace would break the PUB line.
        if not subject or _has_space(subject):
            raise PublishError(f"seq {seq}: subject {subject!r} is empty or contains whitespace")
        if _has_space(reply):
            raise PublishError(f"seq {seq}: reply subject {reply!r} contains whitespace")
        prefix = f"PUB {subject} {reply} ".encode()
        if not reply:
            self._prefixes[subject] = prefix
        return prefix

    async def send(self) -> None:
        """Wake nats-py's flusher for what was added, and yield so that it (and signals) run."""
        nc = self._nc
        if not nc.is_connected:
            raise PublishError("lost the connection to the broker")
        if self._unsent_messages:
            nc.stats["out_msgs"] += self._unsent_messages
            nc.stats["out_bytes"] += self._unsent_payload  # as publish() counts: payloads
            self.unconfirmed_messages += self._unsent_messages
            self.unconfirmed_bytes += self.unsent_bytes
            self._unsent_messages = self._unsent_payload = self.unsent_bytes = 0
            await nc._flush_pending()
        await asyncio.sleep(0)

    async def confirm(self, timeout: float) -> None:
        """Send what is open and wait for the broker's PONG: it has read everything before it."""
        await self.send()
        await self._nc.flush(timeout=timeout)  # type: ignore[arg-type]  # nats-py says int
        self.unconfirmed_messages = 0
        self.unconfirmed_bytes = 0
