"""The journal reader on arbitrary bytes: no crash, no hang, no allocation a length field asks for.

Three kinds of input: raw bytes, bytes dense in the format's own markers, and frames whose
checksums are valid but whose kinds and bodies are anything (CRC-32 is no signature, so a body
that passes it may still hold any msgpack). Strict reads may only raise JournalError (its
CorruptionError subclass included); salvage reads, verify, inspect and repair never raise.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
import zstandard
from fuzz_support import BODIES, FRAMES, MARKERISH, crc_valid_frame, fuzz_pair
from hypothesis import strategies as st

from recorder.errors import CorruptionError, JournalError
from recorder.journal.frames import walk_frames
from recorder.journal.maintenance import inspect_journal, verify_journal
from recorder.journal.query import Query
from recorder.journal.reader import JournalReader
from recorder.journal.record import (
    FOOTER_SIZE,
    HEADER_SIZE,
    MAX_BODY_SIZE,
    SYNC,
    TAIL_MAGIC,
    Footer,
    FrameError,
    Incoming,
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
    encode_messages,
    find_footer,
    read_frame,
    record_seq_time,
)
from recorder.journal.repair import repair_journal

T0 = 1_700_000_000 * 10**9
HEADER = encode_header(SegmentHeader(1, T0, bytes(range(16))))


def _template(*, sealed: bool, first_seq: int = 1) -> bytes:
    """A valid segment: a started marker, eight varied messages, a note, and maybe a footer."""
    payloads = [b"", b"{}", b"\xff\xfeMR", b"x" * 300, b'{"a":1}', b"\x00", SYNC * 3, b"z"]
    items = [
        Incoming(
            T0 + i, f"s.{i}", "r" if i % 3 else "", (("h", str(i)),) if i % 2 else None, p, None
        )
        for i, p in enumerate(payloads)
    ]
    parts = [HEADER, encode_marker(Marker(first_seq, T0, MarkerType.STARTED, {"pid": 1}))]
    parts += encode_messages(first_seq + 1, items)
    last = first_seq + 1 + len(items)
    parts.append(encode_marker(Marker(last, T0 + 99, MarkerType.NOTE, {"text": "n"})))
    if sealed:
        parts.append(
            encode_footer(Footer(first_seq, last, T0, T0 + 99, len(items) + 2, len(items)))
        )
    return b"".join(parts)


SEALED = _template(sealed=True)
UNSEALED = _template(sealed=False)


def _records_of(data: bytes) -> list[Record]:
    damages: list = []
    return [
        decode_body(kind, body)
        for _offset, kind, body in walk_frames("t", data, salvage=True, damages=damages)
        if kind is not Kind.FOOTER
    ]


TEMPLATE_RECORDS = _records_of(SEALED)
assert len(TEMPLATE_RECORDS) == 10


@st.composite
def mutated_segments(draw: st.DrawFn) -> bytes:
    """A valid segment after a few random edits: flips, overwrites, cuts, inserts, copies."""
    data = bytearray(draw(st.sampled_from([SEALED, UNSEALED])))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete", "copy"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[at : at + 4] = draw(st.binary(min_size=1, max_size=4))
        elif op == "truncate":
            del data[at:]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16) | st.just(SYNC))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        else:
            start = draw(st.integers(0, max(0, len(data) - 1)))
            data[at:at] = data[start : start + draw(st.integers(1, 200))]
        if not data:
            break
    return bytes(data)


@st.composite
def crafted_segments(draw: st.DrawFn) -> bytes:
    """A valid or damaged header, then checksum-valid frames of any kind and body, maybe a tail."""
    header = draw(
        st.sampled_from([HEADER, HEADER[:20], b"", HEADER[:-1] + b"\0"]) | st.binary(max_size=48)
    )
    frames = draw(st.lists(FRAMES, max_size=6))
    ending = draw(st.sampled_from(["none", "footer", "tail", "crafted-footer"]))
    data = header + b"".join(frames)
    if ending == "footer":
        data += encode_footer(Footer(1, 2, T0, T0, 2, 1))
    elif ending == "tail":
        data += draw(st.integers(0, 2**32 - 1)).to_bytes(4, "little") + TAIL_MAGIC
    elif ending == "crafted-footer":
        # A footer frame of any body that its tail points back at: the reader must check its size.
        frame = crc_valid_frame(Kind.FOOTER, draw(BODIES))
        data += frame + len(frame).to_bytes(4, "little") + TAIL_MAGIC
    return data


ANY_SEGMENT = (
    st.binary(max_size=2048)
    | MARKERISH
    | MARKERISH.map(lambda tail: HEADER + tail)
    | mutated_segments()
    | crafted_segments()
)


# -- record level ---------------------------------------------------------------------------


# msgpack's Unpacker (record_seq_time) takes a 1 MiB buffer up front; a constant, so allowed.
_FIXED_ALLOWANCE = 2 * 1024 * 1024


def _bounded_allocation(data: bytes) -> int:
    """What reading `data` may allocate at most: a few copies of it, never a declared length."""
    return 4 * len(data) + _FIXED_ALLOWANCE


def _read_everything(data: bytes) -> None:
    try:
        header = decode_header(data)
        assert header.version == 1
    except FrameError as exc:
        assert exc.offset == 0
    footer = find_footer(data)
    assert footer is None or isinstance(footer, Footer)
    for offset in {0, HEADER_SIZE, *range(0, len(data), 97)} | {max(0, len(data) - FOOTER_SIZE)}:
        try:
            kind, body, following = read_frame(data, offset)
        except FrameError as exc:
            assert exc.offset == offset
            continue
        assert len(body) <= MAX_BODY_SIZE and following <= len(data)
        _decode_checked(kind, body)
    for salvage in (True, False):
        damages: list = []
        last = -1
        try:
            for offset, kind, body in walk_frames("f.seg", data, salvage=salvage, damages=damages):
                assert offset > last
                last = offset
                _decode_checked(kind, body)
        except CorruptionError as exc:
            assert not salvage and exc.segment == "f.seg"
        for damage in damages:
            assert 0 <= damage.offset <= len(data) and damage.length >= 0


def _decode_checked(kind: Kind, body: memoryview) -> None:
    if kind is Kind.FOOTER:
        with contextlib.suppress(FrameError):
            decode_footer(body)
        return
    try:
        record = decode_body(kind, body)
    except FrameError:
        return
    # What passes decoding has the types every consumer relies on.
    assert type(record.seq) is int and type(record.time_ns) is int
    if isinstance(record, Message):
        assert type(record.subject) is str and type(record.payload) is bytes
        assert type(record.reply) is str
    else:
        assert type(record.fields) is dict
    assert record_seq_time(kind, body) == (record.seq, record.time_ns)


@fuzz_pair(ANY_SEGMENT, quick=1_000, long=20_000)
def check_record_layer(data: bytes) -> None:
    """read_frame, decode_body, decode_header, find_footer and walk_frames on any bytes: only FrameError, or CorruptionError from a strict walk, and memory bounded by the input."""
    tracemalloc.start()
    try:
        _read_everything(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= _bounded_allocation(data), f"{peak} bytes allocated reading {len(data)}"


test_record_layer_survives_any_bytes, test_record_layer_survives_any_bytes_long = check_record_layer


@fuzz_pair(st.tuples(st.sampled_from([1, 2, 3]), BODIES), quick=600, long=20_000)
def check_checksum_valid_bodies(case: tuple[int, bytes]) -> None:
    """A checksum-valid body of any msgpack decodes to a well-typed record or raises FrameError."""
    kind, body = case
    _, view, _ = read_frame(crc_valid_frame(kind, body), 0)
    _decode_checked(Kind(kind), view)
    with contextlib.suppress(FrameError):
        record_seq_time(Kind(kind), view)


test_checksum_valid_bodies, test_checksum_valid_bodies_long = check_checksum_valid_bodies


@pytest.mark.parametrize(
    "length",
    [2**32 - 1, MAX_BODY_SIZE, MAX_BODY_SIZE + 1, 1 << 30],
    ids=["4GiB", "bound", "bound+1", "1GiB"],
)
def test_a_huge_declared_length_allocates_nothing(tmp_path: Path, length: int) -> None:
    """A frame declaring up to 4 GiB over a few real bytes is refused without allocating it."""
    data = HEADER + SYNC + length.to_bytes(4, "little") + b"\0\0\0\0\x01" + b"tiny"
    (tmp_path / "00000001.seg").write_bytes(data)
    tracemalloc.start()
    try:
        with pytest.raises(FrameError):
            read_frame(data, HEADER_SIZE)
        list(JournalReader(tmp_path, salvage=True))
        assert verify_journal(tmp_path).problems
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < _FIXED_ALLOWANCE


def test_a_msgpack_bomb_in_a_checksum_valid_body_allocates_nothing() -> None:
    """Array and map headers declaring 4 billion entries in a short body are damage, not a 32 GB list."""
    for bomb in (b"\xdd\xff\xff\xff\xff", b"\xdf\xff\xff\xff\xff", b"\x91" * 100_000):
        _, view, _ = read_frame(crc_valid_frame(Kind.MESSAGE, bomb), 0)
        tracemalloc.start()
        try:
            with pytest.raises(FrameError):
                decode_body(Kind.MESSAGE, view)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < _bounded_allocation(bomb)


# Regressions: found by check_checksum_valid_bodies, fixed in recorder/journal/record.py.
@pytest.mark.parametrize(
    "fields",
    [
        "abcdefg",  # a 7-character string unpacks into seven one-character "fields"
        (None,) * 7,
        ("1", 2, "s", "", None, b"", None),
        (1, 2, 3, "", None, b"", None),
        (1, 2, "s", "", 5, b"", None),
        (1, 2, "s", "", (("h",),), b"", None),
        (1, 2, "s", "", None, "text, not bytes", None),
        (1, 2, "s", "", None, b"", "7"),
        (True, 2, "s", "", None, b"", None),
    ],
)
def test_a_checksum_valid_message_with_wrong_field_types_is_damage(
    tmp_path: Path, fields: object
) -> None:
    """Wrong field types in a CRC-valid message are reported as damage by every reader, never a TypeError."""
    body = bytes(msgpack.packb(fields, use_bin_type=True))
    frame = crc_valid_frame(Kind.MESSAGE, body)
    with pytest.raises(FrameError):
        decode_body(Kind.MESSAGE, read_frame(frame, 0)[1])
    good = encode_messages(1, [Incoming(T0, "a", "", None, b"ok", None)])[0]
    (tmp_path / "00000001.seg").write_bytes(HEADER + good + frame)
    assert [r.seq for _, r in JournalReader(tmp_path, salvage=True)] == [1]
    for query in (Query(), Query(from_seq=1), Query(until_ns=T0 + 1)):
        with pytest.raises(CorruptionError):
            list(JournalReader(tmp_path, query=query))
    assert any("damage" in p.reason for p in verify_journal(tmp_path).problems)
    assert inspect_journal(tmp_path)[0].state == "corrupt"


def test_a_footer_frame_of_the_wrong_size_is_damage(tmp_path: Path) -> None:
    """A checksum-valid footer frame with a tail pointing at it but a short body does not crash verify."""
    frame = crc_valid_frame(Kind.FOOTER, b"short")
    data = UNSEALED + frame + len(frame).to_bytes(4, "little") + TAIL_MAGIC
    (tmp_path / "00000001.seg").write_bytes(data)
    report = verify_journal(tmp_path)
    assert report.problems
    inspect_journal(tmp_path)
    repair_journal(tmp_path)
    assert verify_journal(tmp_path).clean


# -- whole directories ----------------------------------------------------------------------


def _segment_files(draw: st.DrawFn) -> dict[str, bytes]:
    first = draw(ANY_SEGMENT)
    files = {"00000001.seg": first}
    extra = draw(st.sampled_from(["none", "second", "compressed", "junk-zst", "gap"]))
    if extra == "second":
        files["00000002.seg"] = draw(ANY_SEGMENT)
    elif extra == "compressed":
        # A compressed copy of arbitrary bytes, maybe cut short: decompression damage too.
        packed = zstandard.ZstdCompressor().compress(draw(ANY_SEGMENT))
        files["00000002.seg.zst"] = packed[: draw(st.integers(0, len(packed)))]
    elif extra == "junk-zst":
        files["00000002.seg.zst"] = draw(st.binary(max_size=200))
    elif extra == "gap":
        files["00000004.seg"] = _template(sealed=True, first_seq=100)
    return files


DIRECTORIES = st.composite(_segment_files)()


@pytest.fixture(scope="module", autouse=True)
def _scratch() -> Iterator[None]:
    """One parent for every example's journal (a function fixture would not reset per example)."""
    shm = Path("/dev/shm")  # tmpfs when there is one: repair fsyncs, and examples are many
    _SCRATCH[:] = [
        Path(tempfile.mkdtemp(prefix="fuzz-journal-", dir=shm if shm.is_dir() else None))
    ]
    yield
    shutil.rmtree(_SCRATCH[0], ignore_errors=True)


_SCRATCH: list[Path] = []


def _strict(directory: Path, **options: object) -> list[Record] | JournalError:
    try:
        return [record for _, record in JournalReader(directory, **options)]  # type: ignore[arg-type]
    except JournalError as exc:
        return exc


def check_directory(files: dict[str, bytes]) -> None:
    directory = Path(tempfile.mkdtemp(prefix="j-", dir=_SCRATCH[0]))
    try:
        for name, data in files.items():
            (directory / name).write_bytes(data)
        for query in (Query(), Query(from_seq=3, to_seq=7), Query(since_ns=T0 + 2)):
            strict = _strict(directory, markers=True, query=query)
            salvaged = [
                r for _, r in JournalReader(directory, markers=True, salvage=True, query=query)
            ]
            if not isinstance(strict, JournalError):
                # A strict read that succeeds sees what salvage sees: only torn tails were skipped.
                assert strict == salvaged
        report = verify_journal(directory)
        assert report.segments == len(files)
        inspect_journal(directory)
        repaired = repair_journal(directory)
        assert repaired.records_kept >= 0
        # After repair every segment is sealed and a strict read no longer finds damage.
        for info in inspect_journal(directory):
            assert info.state == "sealed", info
        after = _strict(directory, markers=True)
        assert not isinstance(after, JournalError), after
        for path in directory.glob("*.quarantine"):
            assert path.stat().st_mode & 0o777 == 0o600, path
    finally:
        shutil.rmtree(directory, ignore_errors=True)


check_directory.__doc__ = (
    "A journal directory of arbitrary segments: strict reads raise only JournalError, salvage "
    "reads, verify, inspect and repair never raise, and repair leaves every segment sealed."
)
test_directory_of_any_segments, test_directory_of_any_segments_long = fuzz_pair(
    DIRECTORIES, quick=250, long=3_000
)(check_directory)


@fuzz_pair(mutated_segments(), quick=300, long=5_000)
def check_salvage_invents_nothing(data: bytes) -> None:
    """Salvage of a damaged valid segment returns only records the segment held, in their order."""
    directory = Path(tempfile.mkdtemp(prefix="s-", dir=_SCRATCH[0]))
    try:
        (directory / "00000001.seg").write_bytes(data)
        salvaged = [r for _, r in JournalReader(directory, markers=True, salvage=True)]
        assert all(record in TEMPLATE_RECORDS for record in salvaged)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


test_salvage_invents_nothing, test_salvage_invents_nothing_long = check_salvage_invents_nothing


def test_fuzz_inputs_include_the_hard_cases() -> None:
    """The templates really are valid, so mutations start from a journal that reads clean."""
    for data in (SEALED, UNSEALED):
        damages: list = []
        frames = list(walk_frames("t", data, salvage=False, damages=damages))
        assert not damages and len(frames) == 10 + (data is SEALED)
    assert find_footer(SEALED) is not None and find_footer(UNSEALED) is None
