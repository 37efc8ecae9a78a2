"""Publisher: the exact PUB/HPUB bytes it buffers, what it refuses, and a real nats-server round trip."""

from __future__ import annotations

import asyncio
import contextlib
import random
import string
from collections.abc import AsyncIterator, Callable
from typing import NamedTuple

import nats
import pytest
from broker import Broker, NatsServer
from hypothesis import given
from hypothesis import strategies as st
from nats.aio.client import Client
from nats.protocol.command import hpub_cmd, pub_cmd

from recorder import natsclient
from recorder.errors import BrokerError, PublishError
from recorder.journal.record import Headers, Message
from recorder.natsclient import HeaderPairs, RecordingClient
from recorder.replay.publisher import Publisher, encode_headers

TOKEN_CHARS = "!#$%&'*+-.^_`|~" + string.digits + string.ascii_letters
WAIT_S = 20.0
Received = tuple[str, str, Headers | None, bytes]


class Inbox(NamedTuple):
    received: list[Received]
    done: asyncio.Event


def msg(
    seq: int, subject: str, payload: bytes, reply: str = "", headers: Headers | None = None
) -> Message:
    return Message(seq, 0, subject, reply, headers, payload)


def header_block(pairs: Headers) -> bytes:
    """The header block built by hand, independently of encode_headers."""
    lines = b"".join(f"{name}: {value}\r\n".encode() for name, value in pairs)
    return b"NATS/1.0\r\n" + lines + b"\r\n"


def expected_bytes(messages: list[Message]) -> bytes:
    """What nats-py's own command builders produce for the messages, in order."""
    return b"".join(
        hpub_cmd(m.subject, m.reply, header_block(m.headers), m.payload)
        if m.headers
        else pub_cmd(m.subject, m.reply, m.payload)
        for m in messages
    )


def buffered(nc: Client) -> bytes:
    return b"".join(nc._pending)


# -- bytes in the outbound buffer -----------------------------------------------------------


def test_batches_are_byte_identical_to_nats_py() -> None:
    """PUB and HPUB commands, with and without reply, equal nats-py's builders' bytes and count."""
    nc = Client()
    messages = [
        msg(1, "a.b", b"hello"),
        msg(2, "a.b", b"", reply="_INBOX.r1"),
        msg(3, "a.b", b"x\r\nPUB y 1\r\n" * 3),  # protocol-looking bytes are just payload
        msg(4, "\u00fc.b", bytes(range(256)), reply="_INBOX.r2"),
        msg(5, "s.2", b"", headers=(("K", "v"), ("K", "w"))),
        msg(6, "a.b", b"again"),  # the cached prefix of seq 1
        msg(7, "s.3", b"p" * 100, reply="r", headers=(("Nats-Msg-Id", "id-7"),)),
    ]
    publisher = Publisher(nc)
    publisher.add(messages[:3])
    publisher.add(messages[3:])
    expected = expected_bytes(messages)
    assert buffered(nc) == expected
    assert nc._pending_data_size == publisher.unsent_bytes == len(expected)
    plain = [m for m in messages if not m.headers]
    assert expected_bytes(plain) == b"".join(pub_cmd(m.subject, m.reply, m.payload) for m in plain)


def test_hpub_command_layout_keeps_repeated_headers_in_order() -> None:
    """A message with headers becomes HPUB subject reply hdr_len total_len, then every pair."""
    nc = Client()
    pairs = (("X-A", "1"), ("X-B", "two words"), ("X-A", "3"))
    Publisher(nc).add([msg(9, "a.b", b"hello", reply="r.1", headers=pairs)])
    block = b"NATS/1.0\r\nX-A: 1\r\nX-B: two words\r\nX-A: 3\r\n\r\n"
    head = b"HPUB a.b r.1 %d %d\r\n" % (len(block), len(block) + 5)
    assert buffered(nc) == head + block + b"hello\r\n"
    assert nc._pending_data_size == len(head + block) + 7


def test_client_without_the_internals_is_refused() -> None:
    """A client lacking nats-py's outbound buffer internals is refused up front."""
    with pytest.raises(PublishError, match="lacks _pending, _pending_data_size, _flush_pending"):
        Publisher(object())  # type: ignore[arg-type]


# -- encode_headers -------------------------------------------------------------------------


def test_encode_headers_keeps_every_pair_unaltered() -> None:
    """Repeated names stay in order; values keep inner, leading and trailing spaces and unicode."""
    pairs = (("X-Hop", "a"), ("X-Text", " two  words "), ("X-Hop", "\u00fc\u2192\U0001f600"))
    encoded = encode_headers(pairs)
    assert encoded == header_block(pairs)
    assert b"X-Text:  two  words \r\n" in encoded
    assert encode_headers(()) == b"NATS/1.0\r\n\r\n"


@pytest.mark.parametrize("name", ["X Y", "X:Y", "", "\u00dc", "X\r", "X\n"])
def test_encode_headers_refuses_non_token_names(name: str) -> None:
    """A header name that is not an RFC 7230 token raises PublishError naming it."""
    with pytest.raises(PublishError, match="is not a valid header token") as info:
        encode_headers((("Ok", "1"), (name, "v")))
    assert repr(name) in str(info.value)
    assert isinstance(info.value, BrokerError)


@pytest.mark.parametrize("value", ["a\rb", "a\nb", "\r\n", "x\r\nPUB evil 1\r\n"])
def test_encode_headers_refuses_line_breaks_in_values(value: str) -> None:
    """A value with CR or LF would inject protocol, so it raises PublishError."""
    with pytest.raises(PublishError, match="'X' has a line break in its value"):
        encode_headers((("X", value),))


def test_encode_headers_refuses_a_value_that_is_not_utf8() -> None:
    """A lone surrogate cannot be encoded: a PublishError naming the header, not a UnicodeError."""
    with pytest.raises(PublishError, match="'X' has a value that is not UTF-8"):
        encode_headers((("X", "\ud800"),))


names = st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=20)
values = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=30
).map(lambda v: v.strip(" \t"))  # the parser strips these, as nats-py does


@given(st.lists(st.tuples(names, values), max_size=8))
def test_encoded_headers_parse_back_to_the_same_pairs(pairs: list[tuple[str, str]]) -> None:
    """RecordingClient's parser reads encode_headers' block back as the same pairs, in order."""
    encoded = encode_headers(tuple(pairs))
    assert encoded.startswith(b"NATS/1.0\r\n") and encoded.endswith(b"\r\n\r\n")
    parsed = RecordingClient._parse_header_lines(encoded[len(b"NATS/1.0\r\n") :])
    assert isinstance(parsed, HeaderPairs)
    assert parsed.pairs == tuple(pairs)


# -- refusals name the seq and leave earlier messages buffered ------------------------------


def refused(nc: Client, messages: list[Message], pattern: str) -> None:
    """Add messages, expecting the last one refused; the ones before it stay, nothing else."""
    publisher = Publisher(nc)
    with pytest.raises(PublishError, match=pattern):
        publisher.add(messages)
    expected = expected_bytes(messages[:-1])
    assert buffered(nc) == expected
    assert nc._pending_data_size == publisher.unsent_bytes == len(expected)


def test_payload_over_max_payload_names_seq_and_sizes() -> None:
    """A payload over max_payload is refused naming its seq and both sizes; one at it is not."""
    nc = Client()
    nc._max_payload = 100
    messages = [msg(1, "a", b"x" * 100), msg(2, "a", b"y"), msg(3, "a", b"z" * 101)]
    refused(nc, messages, r"^seq 3: payload of 101 bytes exceeds the broker's max_payload \(100\)$")


def test_headers_and_payload_over_max_payload_names_both_sizes() -> None:
    """With headers, the block plus payload is what must fit; the error gives both sizes."""
    nc = Client()
    pairs = (("X-A", "1"), ("X-A", "2"))
    block = len(header_block(pairs))
    nc._max_payload = 100
    fits = msg(1, "a", b"x" * (100 - block), headers=pairs)
    over = msg(2, "a", b"y" * (101 - block), headers=pairs)
    refused(
        nc,
        [fits, over],
        rf"^seq 2: payload of {101 - block} bytes and headers of {block} bytes exceed the "
        r"broker's max_payload \(100\)$",
    )


@pytest.mark.parametrize("headers", [None, (("X", "1"),)], ids=["pub", "hpub"])
@pytest.mark.parametrize(
    ("subject", "reply", "pattern"),
    [
        ("", "", r"^seq 7: subject '' is empty or contains whitespace$"),
        ("a b", "", r"^seq 7: subject 'a b' is empty or contains whitespace$"),
        ("a\tb", "r", r"^seq 7: subject 'a\\tb' is empty or contains whitespace$"),
        ("a\r\nb", "", r"^seq 7: subject 'a\\r\\nb' is empty or contains whitespace$"),
        ("a", "r x", r"^seq 7: reply subject 'r x' contains whitespace$"),
        ("a", "r\n", r"^seq 7: reply subject 'r\\n' contains whitespace$"),
    ],
)
def test_malformed_subject_or_reply_names_the_seq(
    subject: str, reply: str, pattern: str, headers: Headers | None
) -> None:
    """An empty subject, or whitespace in subject or reply, is refused naming the seq."""
    good = [msg(5, "a", b"1", reply="r"), msg(6, "b", b"2", headers=(("X", "1"),))]
    refused(Client(), [*good, msg(7, subject, b"3", reply=reply, headers=headers)], pattern)


def test_bad_header_in_a_message_names_the_seq() -> None:
    """A header that encode_headers refuses is reported with the seq of its message."""
    bad = msg(4, "a", b"p", headers=(("X", "a\r\nb"),))
    refused(Client(), [msg(3, "a", b"ok"), bad], r"^seq 4: header 'X' has a line break")


def test_send_on_an_unconnected_client_is_a_publish_error() -> None:
    """send() on a client that is not connected raises PublishError and keeps the batch open."""
    publisher = Publisher(Client())
    publisher.add([msg(1, "a", b"x")])
    with pytest.raises(PublishError, match=r"^lost the connection to the broker$"):
        asyncio.run(publisher.send())
    assert publisher.unsent_bytes == len(pub_cmd("a", "", b"x"))
    assert publisher.unconfirmed_messages == 0


# -- a real nats-server ---------------------------------------------------------------------


@contextlib.asynccontextmanager
async def wire(url: str, subject: str, count: int) -> AsyncIterator[tuple[Client, Inbox]]:
    """A plain nats-py publisher client and a RecordingClient subscriber; both closed after."""
    inbox = Inbox([], asyncio.Event())

    def on_msg(subj: str, reply: str, headers: dict[str, str] | None, data: bytes) -> None:
        inbox.received.append((subj, reply, getattr(headers, "pairs", headers), data))
        if len(inbox.received) >= count:
            inbox.done.set()

    sub = await natsclient.connect(servers=[url], connect_timeout=5, allow_reconnect=False)
    try:
        sub.deliver_directly(await sub.subscribe(subject), on_msg)
        await sub.flush(timeout=5)
        nc = await nats.connect(url, connect_timeout=5, allow_reconnect=False)
        try:
            yield nc, inbox
            await asyncio.wait_for(inbox.done.wait(), WAIT_S)
            await sub.flush(timeout=5)  # anything more would have arrived before the PONG
        finally:
            await nc.close()
    finally:
        await sub.close()


def mixed_traffic(count: int) -> list[Message]:
    """Messages of 0 B to 64 KiB, random bytes, some with replies, some with repeated headers."""
    rng = random.Random(20260101)
    sizes = [0, 1, 100, 1000, 4096, 20000, 65536, 300]
    out = []
    for i in range(count):
        headers: Headers | None = None
        if i % 4 == 1:
            headers = (("X-Hop", "a"), ("X-Seq", str(i)), ("X-Hop", "b \u00fc"))
        elif i % 4 == 3:
            headers = (("Nats-Msg-Id", f"id-{i}"),)
        reply = f"_INBOX.reply.{i}" if i % 3 == 0 else ""
        payload = rng.randbytes(sizes[i % len(sizes)] if i % 11 else rng.randrange(65537))
        out.append(msg(i + 1, f"pub.mix.{i % 7}", payload, reply=reply, headers=headers))
    return out


def test_real_server_receives_every_message_identically(nats_server: Broker) -> None:
    """3000 mixed messages over many add/send calls arrive in order with identical subject, reply, headers and bytes."""
    messages = mixed_traffic(3000)

    async def main() -> tuple[list[Received], int, int]:
        async with wire(nats_server.url, "pub.mix.>", len(messages)) as (nc, inbox):
            publisher = Publisher(nc)
            start = 0
            for step, size in enumerate([1, 9, 90, 400, 500, 1000] * 3):
                publisher.add(messages[start : start + size])
                start += size
                await publisher.send()
                if step % 4 == 3:
                    await publisher.confirm(timeout=10)
            publisher.add(messages[start:])
            await publisher.confirm(timeout=10)
            assert publisher.unsent_bytes == publisher.unconfirmed_messages == 0
        return inbox.received, nc.stats["out_msgs"], nc.stats["out_bytes"]

    received, out_msgs, out_bytes = asyncio.run(main())
    want = [(m.subject, m.reply, m.headers, m.payload) for m in messages]
    assert out_msgs == len(messages)
    assert out_bytes == sum(len(m.payload) for m in messages)  # as nats-py counts: payloads
    assert len(received) == len(want)
    index = next((i for i, (g, w) in enumerate(zip(received, want, strict=True)) if g != w), None)
    assert index is None, f"message {index}: got {received[index][:3]}, want {want[index][:3]}"


def test_real_server_max_payload_is_enforced_at_add(
    nats_server_factory: Callable[..., NatsServer],
) -> None:
    """With a server's max_payload of 1024, add() refuses what exceeds it naming the limit; what fits exactly arrives."""
    server = nats_server_factory(max_payload=1024)
    pairs = (("X-A", "1"), ("X-A", "2"))
    block = len(header_block(pairs))
    fitting = [
        msg(1, "small.x", b"a" * 1024),
        msg(4, "small.x", b"d" * (1024 - block), headers=pairs),
        msg(5, "small.x", b"e"),
    ]
    too_big = r"^seq 2: payload of 1025 bytes exceeds the broker's max_payload \(1024\)$"
    too_big_with_headers = rf"^seq 3: .* and headers of {block} bytes exceed .*\(1024\)$"

    async def main() -> list[Received]:
        async with wire(server.url, "small.>", len(fitting)) as (nc, inbox):
            assert nc.max_payload == 1024
            publisher = Publisher(nc)
            with pytest.raises(PublishError, match=too_big):
                publisher.add([fitting[0], msg(2, "small.x", b"b" * 1025)])
            with pytest.raises(PublishError, match=too_big_with_headers):
                publisher.add([msg(3, "small.x", b"c" * (1025 - block), headers=pairs)])
            publisher.add(fitting[1:])
            await publisher.confirm(timeout=10)
            assert nc.is_connected  # the server took everything that was sent
        return inbox.received

    received = asyncio.run(main())
    assert received == [(m.subject, m.reply, m.headers, m.payload) for m in fitting]
