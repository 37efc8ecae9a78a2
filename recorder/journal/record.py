"""Pure framing of journal records: bytes <-> records, no files, no clock, no asyncio.

The byte format is specified in docs/journal-format.md; keep the two in step.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

import msgpack

# zlib-ng computes the same CRC-32 as zlib, 6-10x faster: it is most of the per-record cost.
from zlib_ng.zlib_ng import crc32

# -- segment header -------------------------------------------------------------------------

SEGMENT_MAGIC: Final = b"\x89MSJ\r\n\x1a\n"
FORMAT_VERSION: Final = 1
# magic, version, flags, segment number, created (UTC ns), instance id, CRC-32 of the preceding bytes
_HEADER: Final = struct.Struct("<8sHHQq16sI")
HEADER_SIZE: Final = _HEADER.size  # 48

# -- record frame ---------------------------------------------------------------------------

# 0xFF and 0xFE never occur in UTF-8, so MeshSync's JSON payloads can never imitate a sync marker.
SYNC: Final = b"\xff\xfeMR"
# sync marker, body length, CRC-32 of (kind byte + body), kind
FRAME: Final = struct.Struct("<4sIIB")
FRAME_OVERHEAD: Final = FRAME.size  # 13
# Larger than NATS' largest configurable max_payload (64 MiB) plus subject, headers and framing.
MAX_BODY_SIZE: Final = 64 * 1024 * 1024 + 1024 * 1024


class Kind(enum.IntEnum):
    MESSAGE = 1
    MARKER = 2
    FOOTER = 3


_KINDS: Final = {int(kind): kind for kind in Kind}
# Seeding each CRC with its kind byte covers the kind without concatenating bytes.
KIND_CRC: Final = {kind: crc32(bytes([kind])) for kind in Kind}

# -- footer (seals a segment) ---------------------------------------------------------------

# first seq, last seq, first time, last time, records, messages
_FOOTER_BODY: Final = struct.Struct("<QQqqQQ")
_TAIL: Final = struct.Struct("<I4s")
TAIL_MAGIC: Final = b"MSJE"
FOOTER_SIZE: Final = FRAME_OVERHEAD + _FOOTER_BODY.size + _TAIL.size  # 69


class MarkerType(enum.StrEnum):
    """What a marker record says about the capture around it."""

    STARTED = "started"
    STOPPED = "stopped"
    DISCONNECTED = "disconnected"
    RECONNECTED = "reconnected"
    DROPPED = "dropped"
    NOTE = "note"


Headers = tuple[tuple[str, str], ...]


class Message(NamedTuple):
    """One NATS message exactly as it was received.

    A NamedTuple rather than a frozen dataclass: reading builds one per record, and a tuple is
    built three times faster.
    """

    seq: int
    time_ns: int
    subject: str
    reply: str
    headers: Headers | None
    payload: bytes
    stream_seq: int | None = None


@dataclass(frozen=True, slots=True)
class Marker:
    """A record about the capture itself: a start, a stop, a gap, a drop or a note."""

    seq: int
    time_ns: int
    type: MarkerType
    fields: dict[str, Any] = field(default_factory=dict)


Record = Message | Marker


@dataclass(frozen=True, slots=True)
class SegmentHeader:
    number: int
    created_ns: int
    instance_id: bytes
    version: int = FORMAT_VERSION
    flags: int = 0


@dataclass(frozen=True, slots=True)
class Footer:
    """Summary written when a segment is sealed, so filters can skip it unread."""

    first_seq: int
    last_seq: int
    first_time_ns: int
    last_time_ns: int
    records: int
    messages: int


class FrameError(Exception):
    """A frame that cannot be decoded at a given offset; `torn` when the bytes just run out."""

    def __init__(self, offset: int, reason: str, *, torn: bool = False) -> None:
        super().__init__(reason)
        self.offset = offset
        self.reason = reason
        self.torn = torn


# -- header ---------------------------------------------------------------------------------


def encode_header(header: SegmentHeader) -> bytes:
    if len(header.instance_id) != 16:
        raise ValueError("instance id must be 16 bytes")
    without_crc = _HEADER.pack(
        SEGMENT_MAGIC,
        header.version,
        header.flags,
        header.number,
        header.created_ns,
        header.instance_id,
        0,
    )[:-4]
    return without_crc + struct.pack("<I", crc32(without_crc))


def decode_header(data: bytes | memoryview) -> SegmentHeader:
    """Decode a segment header; raises FrameError (torn when too short) on any damage."""
    if len(data) < HEADER_SIZE:
        raise FrameError(0, f"segment header is {len(data)} of {HEADER_SIZE} bytes", torn=True)
    magic, version, flags, number, created_ns, instance_id, crc = _HEADER.unpack_from(data, 0)
    if magic != SEGMENT_MAGIC:
        raise FrameError(0, "not a journal segment (bad magic)")
    if crc32(data[: HEADER_SIZE - 4]) != crc:
        raise FrameError(0, "segment header checksum mismatch")
    if version != FORMAT_VERSION:
        raise FrameError(0, f"unsupported format version {version}")
    return SegmentHeader(number, created_ns, bytes(instance_id), version, flags)


# -- records --------------------------------------------------------------------------------


def _frame(kind: Kind, body: bytes) -> bytes:
    return FRAME.pack(SYNC, len(body), crc32(body, KIND_CRC[kind]), kind) + body


def encode_message(message: Message) -> bytes:
    body = msgpack.packb(
        (
            message.seq,
            message.time_ns,
            message.subject,
            message.reply,
            message.headers,
            message.payload,
            message.stream_seq,
        ),
        use_bin_type=True,
    )
    return _frame(Kind.MESSAGE, body)


def encode_marker(marker: Marker) -> bytes:
    body = msgpack.packb(
        (marker.seq, marker.time_ns, str(marker.type), marker.fields), use_bin_type=True
    )
    return _frame(Kind.MARKER, body)


def encode_record(record: Record) -> bytes:
    if isinstance(record, Message):
        return encode_message(record)
    return encode_marker(record)


def encode_footer(footer: Footer) -> bytes:
    """The sealing footer frame followed by the fixed tail that points back at it."""
    body = _FOOTER_BODY.pack(
        footer.first_seq,
        footer.last_seq,
        footer.first_time_ns,
        footer.last_time_ns,
        footer.records,
        footer.messages,
    )
    frame = _frame(Kind.FOOTER, body)
    return frame + _TAIL.pack(len(frame), TAIL_MAGIC)


def read_frame(
    data: bytes | memoryview, offset: int, base: int = 0
) -> tuple[Kind, memoryview, int]:
    """Check the frame at `offset`: returns (kind, body, next offset) or raises FrameError.

    The length is checked against its bound and the remaining bytes before anything is read,
    and the checksum before anything is decoded. `base` is the file offset of data[0], for
    messages that name a position in the file.
    """
    end = len(data)
    if end - offset < FRAME_OVERHEAD:
        present = min(end - offset, len(SYNC))
        if bytes(data[offset : offset + present]) != SYNC[:present]:
            raise FrameError(offset, "bad sync marker")
        raise FrameError(offset, "record header cut short", torn=True)
    sync, length, crc, kind_byte = FRAME.unpack_from(data, offset)
    if sync != SYNC:
        raise FrameError(offset, "bad sync marker")
    if kind_byte not in KIND_CRC:
        raise FrameError(offset, f"unknown record kind {kind_byte}")
    if length > MAX_BODY_SIZE:
        raise FrameError(offset, f"record length {length} exceeds the bound {MAX_BODY_SIZE}")
    start = offset + FRAME_OVERHEAD
    if start + length > end:
        raise FrameError(offset, f"record of {length} bytes cut short at {base + end}", torn=True)
    body = memoryview(data)[start : start + length]
    if crc32(body, KIND_CRC[kind_byte]) != crc:
        raise FrameError(offset, "checksum mismatch")
    return _KINDS[kind_byte], body, start + length


def decode_body(kind: Kind, body: bytes | memoryview, offset: int = 0) -> Record:
    """Decode a checksummed body; a body that passed its CRC but does not decode is damage."""
    try:
        fields = msgpack.unpackb(body, use_list=False, raw=False, strict_map_key=True)
        if kind is Kind.MESSAGE:
            message = message_of(fields[:7])
            if message is not None:
                return message
            raise FrameError(offset, "message body has a field of the wrong type")
        if kind is Kind.MARKER:
            seq, time_ns, marker_type, marker_fields = fields[:4]
            if type(seq) is int and type(time_ns) is int and type(marker_fields) is dict:
                return Marker(seq, time_ns, MarkerType(marker_type), _thaw(marker_fields))
            raise FrameError(offset, "marker body has a field of the wrong type")
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise FrameError(offset, f"undecodable {kind.name.lower()} body: {exc}") from None
    raise FrameError(offset, f"{kind.name.lower()} is not a record")


def message_of(fields: tuple[Any, ...]) -> Message | None:
    """The Message that a message body's seven decoded fields make; None if a type is wrong.

    A body can pass its CRC and still hold other types (CRC-32 is no signature): what readers
    and the compactor rely on is checked here, for every reader.
    """
    seq, time_ns, subject, reply, headers, payload, stream_seq = fields
    if (
        type(seq) is int
        and type(time_ns) is int
        and type(subject) is str
        and type(reply) is str
        and type(payload) is bytes
        and (stream_seq is None or type(stream_seq) is int)
        and (headers is None or valid_headers(headers))
    ):
        return _new_tuple(Message, fields)
    return None


_new_tuple = tuple.__new__


def valid_headers(headers: object) -> bool:
    return type(headers) is tuple and all(
        type(pair) is tuple and len(pair) == 2 and type(pair[0]) is str and type(pair[1]) is str
        for pair in headers
    )


def record_seq_time(kind: Kind, body: bytes | memoryview) -> tuple[int, int]:
    """Sequence and time of a record without decoding its payload (both lead the array).

    Raises FrameError (offset 0: the caller knows the frame's) when the body does not start so.
    """
    try:
        unpacker = msgpack.Unpacker(raw=False, max_buffer_size=64)
        unpacker.feed(body[:32])
        unpacker.read_array_header()
        seq, time_ns = unpacker.unpack(), unpacker.unpack()
    except (ValueError, msgpack.UnpackException) as exc:
        raise FrameError(0, f"undecodable {kind.name.lower()} body: {exc}") from None
    if type(seq) is not int or type(time_ns) is not int:
        raise FrameError(0, f"{kind.name.lower()} body does not start with a sequence and time")
    return seq, time_ns


def _thaw(value: Any) -> Any:
    """Markers' free-form fields come back as tuples (use_list=False); give back lists."""
    if isinstance(value, dict):
        return {key: _thaw(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [_thaw(item) for item in value]
    return value


def decode_footer(body: bytes | memoryview) -> Footer:
    if len(body) != _FOOTER_BODY.size:
        raise FrameError(0, f"footer body is {len(body)} bytes, expected {_FOOTER_BODY.size}")
    return Footer(*_FOOTER_BODY.unpack(body))


def find_footer(data: bytes | memoryview) -> Footer | None:
    """The footer of a sealed segment from its last bytes, or None when it is not sealed."""
    size = len(data)
    if size < HEADER_SIZE + FOOTER_SIZE:
        return None
    frame_len, magic = _TAIL.unpack_from(data, size - _TAIL.size)
    if magic != TAIL_MAGIC or frame_len != FOOTER_SIZE - _TAIL.size:
        return None
    try:
        kind, body, end = read_frame(data, size - FOOTER_SIZE)
    except FrameError:
        return None
    if kind is not Kind.FOOTER or end != size - _TAIL.size:
        return None
    return decode_footer(body)


_MESSAGE_CRC: Final = KIND_CRC[Kind.MESSAGE]
_pack_frame_header = FRAME.pack


class Incoming(NamedTuple):
    """One received message as the bridge hands it to the writer, before it has a sequence.

    A NamedTuple, not a dataclass: it is built once per message on the hot path, and a tuple is
    the cheapest object Python makes; it unpacks positionally where the encoder needs speed.
    """

    time_ns: int  # wall-clock receive time: a stamp only, never used to measure intervals
    subject: str
    reply: str
    headers: Headers | None  # every header line in order, repeated names kept
    payload: bytes
    stream_seq: int | None  # the JetStream stream sequence, None in core NATS mode


def encode_message_parts(first_seq: int, items: list[Incoming]) -> list[bytes]:
    """Frame header and body, alternating, for a batch numbered from `first_seq`.

    This is the writer's hot path: the parts are joined once for the whole batch, so no
    per-record concatenation is made.
    """
    pack = msgpack.Packer(use_bin_type=True).pack
    parts: list[bytes] = []
    append = parts.append
    seq = first_seq
    for time_ns, subject, reply, headers, payload, stream_seq in items:
        body = pack((seq, time_ns, subject, reply, headers, payload, stream_seq))
        append(_pack_frame_header(SYNC, len(body), crc32(body, _MESSAGE_CRC), 1))
        append(body)
        seq += 1
    return parts


def join_parts(parts: list[bytes]) -> list[bytes]:
    """The complete frames of `encode_message_parts`'s alternating headers and bodies."""
    return [parts[index] + parts[index + 1] for index in range(0, len(parts), 2)]


def encode_messages(first_seq: int, items: list[Incoming]) -> list[bytes]:
    """One complete frame per incoming message, numbered from `first_seq`."""
    return join_parts(encode_message_parts(first_seq, items))
