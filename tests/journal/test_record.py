"""Pure framing: bytes <-> records, checked against byte literals and hypothesis properties."""

from __future__ import annotations

import random
import struct
import zlib
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from recorder.journal.record import (
    FOOTER_SIZE,
    FORMAT_VERSION,
    FRAME_OVERHEAD,
    HEADER_SIZE,
    MAX_BODY_SIZE,
    SEGMENT_MAGIC,
    SYNC,
    TAIL_MAGIC,
    Footer,
    FrameError,
    Kind,
    Marker,
    MarkerType,
    Message,
    Record,
    SegmentHeader,
    decode_body,
    decode_footer,
    decode_header,
    encode_footer,
    encode_header,
    encode_marker,
    encode_message,
    encode_messages,
    encode_record,
    find_footer,
    read_frame,
    record_seq_time,
)

from ._helpers import INSTANCE, T0

U64 = st.integers(0, 2**64 - 1)
I64 = st.integers(-(2**63), 2**63 - 1)


def _random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


# Mostly small payloads, sometimes anything up to 1 MiB (deterministic, so shrinking works).
PAYLOADS = st.one_of(
    st.binary(max_size=300),
    st.builds(_random_bytes, st.integers(0, 1 << 20), st.integers(0, 2**32)),
)
HEADERS = st.none() | st.lists(
    st.tuples(st.text(max_size=20), st.text(max_size=40)), max_size=6
).map(tuple)
MESSAGES = st.builds(
    Message,
    seq=U64,
    time_ns=I64,
    subject=st.text(max_size=80),
    reply=st.text(max_size=40),
    headers=HEADERS,
    payload=PAYLOADS,
    stream_seq=st.none() | U64,
)


def _frame_raw(kind: int, body: bytes) -> bytes:
    """A frame built from the spec's words alone: sync, LE length, CRC-32 of kind+body, kind."""
    crc = zlib.crc32(bytes([kind]) + body)
    return SYNC + struct.pack("<II", len(body), crc) + bytes([kind]) + body


def _decode(frame: bytes) -> Any:
    kind, body, end = read_frame(frame, 0)
    assert end == len(frame)
    return decode_body(kind, body)


# -- messages -------------------------------------------------------------------------------


def test_message_round_trip() -> None:
    """A message with headers, reply and stream sequence decodes to an equal message."""
    message = Message(
        7,
        T0,
        "meshsync.k8s.pods",
        "_INBOX.1",
        (("Nats-Msg-Id", "a"), ("X-Dup", "1"), ("X-Dup", "2")),
        b'{"kind":"Pod"}',
        42,
    )
    assert _decode(encode_message(message)) == message


def test_message_frame_matches_the_spec_byte_for_byte() -> None:
    """A message frame is sync, little-endian length, CRC-32 over kind then body, kind, body."""
    message = Message(1, 2, "a.b", "", None, b"\x00\xff", None)
    body = msgpack.packb((1, 2, "a.b", "", None, b"\x00\xff", None), use_bin_type=True)
    assert encode_message(message) == _frame_raw(1, body)
    assert FRAME_OVERHEAD == 13


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MESSAGES)
@example(Message(0, 0, "", "", None, b"", None))
@example(Message(2**64 - 1, -(2**63), "a.b", "r", (("h", "v"), ("h", "w")), b"\xff" * (1 << 20), 0))
def test_message_framing_round_trips(message: Message) -> None:
    """Any subject, reply, multi-valued headers and payload up to 1 MiB survive framing unchanged."""
    frame = encode_message(message)
    kind, body, end = read_frame(frame, 0)
    assert kind is Kind.MESSAGE
    assert end == len(frame) == FRAME_OVERHEAD + len(body)
    assert decode_body(kind, body) == message
    assert record_seq_time(kind, body) == (message.seq, message.time_ns)


@settings(max_examples=40, deadline=None)
@given(st.lists(MESSAGES, max_size=5), U64)
def test_encode_messages_equals_encode_message_per_item(
    batch: list[Message], first_seq: int
) -> None:
    """The batch hot path produces exactly the frames encode_message gives, numbered from first_seq."""
    first_seq = min(first_seq, 2**64 - 1 - len(batch))
    incoming = [(m.time_ns, m.subject, m.reply, m.headers, m.payload, m.stream_seq) for m in batch]
    expected = [
        encode_message(
            Message(
                first_seq + i, m.time_ns, m.subject, m.reply, m.headers, m.payload, m.stream_seq
            )
        )
        for i, m in enumerate(batch)
    ]
    assert encode_messages(first_seq, incoming) == expected


def test_frames_concatenate_and_walk_in_order() -> None:
    """read_frame's next offset leads from one frame to the next in a concatenated stream."""
    records: list[Record] = [
        Message(1, 10, "a", "", None, b"x", None),
        Marker(2, 11, MarkerType.NOTE, {"text": "hi"}),
        Message(3, 12, "b", "", None, b"", None),
    ]
    data = b"".join(encode_record(record) for record in records)
    offset, decoded = 0, []
    while offset < len(data):
        kind, body, offset = read_frame(data, offset)
        decoded.append(decode_body(kind, body))
    assert decoded == records


def test_decoder_ignores_extra_trailing_fields() -> None:
    """Bodies with extra trailing array elements (a later format version) still decode."""
    body = msgpack.packb((5, 6, "s", "", None, b"p", None, "future"), use_bin_type=True)
    assert _decode(_frame_raw(1, body)) == Message(5, 6, "s", "", None, b"p", None)


def test_body_that_passes_its_checksum_but_does_not_decode_is_damage() -> None:
    """A checksum-valid body that is not the expected msgpack raises FrameError, not a crash."""
    for body in (b"\xc1", msgpack.packb((1, 2), use_bin_type=True), msgpack.packb("x")):
        kind, view, _ = read_frame(_frame_raw(1, body), 0)
        with pytest.raises(FrameError, match="undecodable message body"):
            decode_body(kind, view, offset=99)
    marker_body = msgpack.packb((1, 2, "no-such-type", {}), use_bin_type=True)
    kind, view, _ = read_frame(_frame_raw(2, marker_body), 0)
    with pytest.raises(FrameError, match="undecodable marker body"):
        decode_body(kind, view)


def test_footer_kind_is_not_a_record() -> None:
    """decode_body refuses a footer body: footers are not records."""
    with pytest.raises(FrameError, match="footer is not a record"):
        decode_body(Kind.FOOTER, msgpack.packb(()))


# -- markers --------------------------------------------------------------------------------

JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=15,
)


@pytest.mark.parametrize("marker_type", list(MarkerType))
def test_marker_round_trip(marker_type: MarkerType) -> None:
    """Every marker type with nested fields decodes to an equal marker (lists stay lists)."""
    marker = Marker(9, T0, marker_type, {"count": 3, "clean": False, "nested": {"a": [1, "b"]}})
    decoded = _decode(encode_marker(marker))
    assert decoded == marker
    assert isinstance(decoded.fields["nested"]["a"], list)
    assert encode_record(marker) == encode_marker(marker)


@settings(max_examples=60, deadline=None)
@given(U64, I64, st.sampled_from(list(MarkerType)), st.dictionaries(st.text(max_size=10), JSONISH))
def test_marker_framing_round_trips(
    seq: int, time_ns: int, marker_type: MarkerType, fields: dict[str, Any]
) -> None:
    """Markers with arbitrary free-form fields survive framing unchanged."""
    marker = Marker(seq, time_ns, marker_type, fields)
    frame = encode_marker(marker)
    kind, body, _ = read_frame(frame, 0)
    assert kind is Kind.MARKER
    assert decode_body(kind, body) == marker
    assert record_seq_time(kind, body) == (seq, time_ns)


# -- segment header -------------------------------------------------------------------------


def test_header_round_trip_and_layout() -> None:
    """A header is 48 little-endian bytes at the spec's offsets and decodes to what was encoded."""
    header = SegmentHeader(12, T0, INSTANCE)
    data = encode_header(header)
    assert len(data) == HEADER_SIZE == 48
    assert data[:8] == SEGMENT_MAGIC
    assert struct.unpack_from("<HHQq", data, 8) == (FORMAT_VERSION, 0, 12, T0)
    assert data[28:44] == INSTANCE
    assert struct.unpack_from("<I", data, 44)[0] == zlib.crc32(data[:44])
    assert decode_header(data) == header
    assert decode_header(data + b"trailing records") == header


def test_header_needs_a_16_byte_instance_id() -> None:
    """encode_header refuses an instance id of the wrong length."""
    with pytest.raises(ValueError, match="16 bytes"):
        encode_header(SegmentHeader(1, 0, b"short"))


def test_every_bit_flip_in_a_header_is_detected() -> None:
    """Flipping any bit of a header makes decode_header raise a non-torn FrameError."""
    data = encode_header(SegmentHeader(3, T0, INSTANCE))
    for position in range(HEADER_SIZE):
        for bit in range(8):
            damaged = bytearray(data)
            damaged[position] ^= 1 << bit
            with pytest.raises(FrameError) as caught:
                decode_header(bytes(damaged))
            assert not caught.value.torn
            assert caught.value.offset == 0


def test_short_header_is_torn() -> None:
    """A header cut short at any length is reported torn."""
    data = encode_header(SegmentHeader(3, T0, INSTANCE))
    for cut in range(HEADER_SIZE):
        with pytest.raises(FrameError) as caught:
            decode_header(data[:cut])
        assert caught.value.torn


def test_unknown_format_version_is_refused() -> None:
    """A well-formed header of another format version is refused by name."""
    data = bytearray(encode_header(SegmentHeader(3, T0, INSTANCE)))
    struct.pack_into("<H", data, 8, 2)
    struct.pack_into("<I", data, 44, zlib.crc32(bytes(data[:44])))
    with pytest.raises(FrameError, match="unsupported format version 2"):
        decode_header(bytes(data))


def test_bad_magic_is_not_a_segment() -> None:
    """Bytes that do not start with the magic are not a segment."""
    with pytest.raises(FrameError, match="bad magic"):
        decode_header(b"x" * HEADER_SIZE)


# -- footer ---------------------------------------------------------------------------------

FOOTER = Footer(
    first_seq=5, last_seq=9, first_time_ns=T0, last_time_ns=T0 + 4, records=5, messages=3
)


def _sealed_bytes(footer: Footer = FOOTER) -> bytes:
    records = b"".join(
        encode_message(Message(seq, T0, "s", "", None, b"p", None)) for seq in range(5, 10)
    )
    return encode_header(SegmentHeader(1, T0, INSTANCE)) + records + encode_footer(footer)


def test_footer_layout() -> None:
    """A footer is a 61-byte kind-3 frame plus an 8-byte tail: its length and the magic MSJE."""
    data = encode_footer(FOOTER)
    assert len(data) == FOOTER_SIZE == 69
    assert data[-4:] == TAIL_MAGIC
    assert struct.unpack_from("<I", data, 61)[0] == 61
    kind, body, end = read_frame(data, 0)
    assert (kind, end) == (Kind.FOOTER, 61)
    assert decode_footer(body) == FOOTER
    assert struct.unpack("<QQqqQQ", body) == (5, 9, T0, T0 + 4, 5, 3)


def test_find_footer_reads_a_sealed_segment_from_its_end() -> None:
    """find_footer recovers the footer of a sealed segment from its last bytes."""
    data = _sealed_bytes()
    assert find_footer(data) == FOOTER
    assert find_footer(data[:HEADER_SIZE] + data[-FOOTER_SIZE:]) == FOOTER


def test_find_footer_is_none_for_unsealed_or_damaged_ends() -> None:
    """find_footer says None for an unsealed segment, a short file, or any damaged footer byte."""
    data = _sealed_bytes()
    assert find_footer(data[:-FOOTER_SIZE]) is None
    assert find_footer(data[:-1]) is None
    assert find_footer(b"") is None
    assert find_footer(data[: HEADER_SIZE + FOOTER_SIZE - 1]) is None
    for position in range(len(data) - FOOTER_SIZE, len(data)):
        damaged = bytearray(data)
        damaged[position] ^= 0x04
        assert find_footer(bytes(damaged)) is None, position


def test_decode_footer_refuses_a_wrong_size() -> None:
    """A footer body of the wrong size is damage."""
    with pytest.raises(FrameError, match="footer body is 47 bytes"):
        decode_footer(b"\x00" * 47)


# -- read_frame errors ----------------------------------------------------------------------

FRAME = encode_message(Message(1, T0, "a.b", "", None, b"payload", None))


def test_bad_sync_marker() -> None:
    """A frame whose sync marker is damaged is refused (not torn) at its offset."""
    for position in range(len(SYNC)):
        damaged = bytearray(b"\x00\x00" + FRAME)
        damaged[2 + position] ^= 0x01
        with pytest.raises(FrameError, match="bad sync marker") as caught:
            read_frame(bytes(damaged), 2)
        assert (caught.value.offset, caught.value.torn) == (2, False)


def test_short_garbage_is_a_bad_sync_not_a_torn_frame() -> None:
    """A few trailing bytes that are not the start of a sync marker are not a torn record."""
    with pytest.raises(FrameError, match="bad sync marker") as caught:
        read_frame(b"abc", 0)
    assert not caught.value.torn


def test_length_over_the_bound_is_refused_before_reading() -> None:
    """A length above MAX_BODY_SIZE is refused even though the bytes are not there to read."""
    header = SYNC + struct.pack("<II", MAX_BODY_SIZE + 1, 0) + bytes([1])
    with pytest.raises(FrameError, match="exceeds the bound") as caught:
        read_frame(header + b"x" * 10, 0)
    assert not caught.value.torn
    with pytest.raises(FrameError, match="exceeds the bound"):
        read_frame(SYNC + struct.pack("<II", 2**32 - 1, 0) + bytes([1]), 0)


def test_unknown_kind_is_refused() -> None:
    """A frame with an unknown kind byte is refused."""
    damaged = bytearray(FRAME)
    damaged[12] = 9
    with pytest.raises(FrameError, match="unknown record kind 9"):
        read_frame(bytes(damaged), 0)


def test_frame_cut_anywhere_is_torn() -> None:
    """A frame cut at any byte, inside its 13-byte header or its body, is reported torn."""
    for cut in range(1, len(FRAME)):
        with pytest.raises(FrameError) as caught:
            read_frame(FRAME[:cut], 0)
        assert caught.value.torn, (cut, caught.value.reason)
        assert caught.value.offset == 0


def test_checksum_mismatch_anywhere_in_the_body_or_crc() -> None:
    """A flipped bit in the CRC, kind or body fails the checksum (never decodes to a record)."""
    for position in list(range(8, 12)) + list(range(FRAME_OVERHEAD, len(FRAME))):
        damaged = bytearray(FRAME)
        damaged[position] ^= 0x10
        with pytest.raises(FrameError, match="checksum mismatch") as caught:
            read_frame(bytes(damaged), 0)
        assert not caught.value.torn


def test_kind_flipped_to_another_kind_fails_the_checksum() -> None:
    """The kind byte is covered by the CRC, so a message cannot turn into a footer or marker."""
    for kind in (Kind.MARKER, Kind.FOOTER):
        damaged = bytearray(FRAME)
        damaged[12] = kind
        with pytest.raises(FrameError, match="checksum mismatch"):
            read_frame(bytes(damaged), 0)


def test_length_damage_is_detected() -> None:
    """A changed length either runs past the data (torn) or fails the checksum."""
    for position in range(4, 8):
        damaged = bytearray(FRAME + FRAME)
        damaged[position] ^= 0x01
        with pytest.raises(FrameError):
            read_frame(bytes(damaged), 0)
