"""Atheris harness: the journal's framing and walk on arbitrary bytes raise only FrameError/CorruptionError.

    .venv/bin/python fuzz/fuzz_reader.py -atheris_runs=100000 [-max_len=8192] [corpus_dir]

Each input is read three ways: as a whole segment (strict and salvage walks), as a checksum-valid
frame whose kind and body come from the input (CRC-32 is no signature), and at every offset.
"""

from __future__ import annotations

import contextlib
import sys
import zlib

import atheris

with atheris.instrument_imports():
    from recorder.errors import CorruptionError
    from recorder.journal.frames import walk_frames
    from recorder.journal.record import (
        HEADER_SIZE,
        SYNC,
        FrameError,
        Kind,
        SegmentHeader,
        decode_body,
        decode_footer,
        decode_header,
        encode_header,
        find_footer,
        read_frame,
        record_seq_time,
    )

HEADER = encode_header(SegmentHeader(1, 0, bytes(16)))


def _frame(kind: int, body: bytes) -> bytes:
    crc = zlib.crc32(body, zlib.crc32(bytes([kind])))
    return SYNC + len(body).to_bytes(4, "little") + crc.to_bytes(4, "little") + bytes([kind]) + body


def _decode(kind: Kind, body: memoryview) -> None:
    with contextlib.suppress(FrameError):
        if kind is Kind.FOOTER:
            decode_footer(body)
            return
        record = decode_body(kind, body)
        if record_seq_time(kind, body) != (record.seq, record.time_ns):
            raise AssertionError("record_seq_time disagrees with decode_body")


def _walk(data: bytes) -> None:
    for salvage in (False, True):
        try:
            for _offset, kind, body in walk_frames("f.seg", data, salvage=salvage, damages=[]):
                _decode(kind, body)
        except CorruptionError:
            if salvage:
                raise


def TestOneInput(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    mode = provider.ConsumeIntInRange(0, 3)
    rest = provider.ConsumeBytes(len(data))
    if mode == 0:  # a segment as it is
        segment = rest
    elif mode == 1:  # a valid header, then whatever follows
        segment = HEADER + rest
    else:  # a valid header, then checksum-valid frames cut from the input
        parts = [HEADER]
        view = rest
        while view:
            size = view[0] % 64
            parts.append(_frame(Kind.MESSAGE if mode == 2 else view[0] % 4, view[1 : 1 + size]))
            view = view[1 + size :]
        segment = b"".join(parts)
    with contextlib.suppress(FrameError):
        decode_header(segment)
    find_footer(segment)
    for offset in range(HEADER_SIZE, min(len(segment), HEADER_SIZE + 256)):
        try:
            kind, body, _ = read_frame(segment, offset)
        except FrameError:
            continue
        _decode(kind, body)
    _walk(segment)


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
