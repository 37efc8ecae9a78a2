"""Bit flips and truncations at random positions of a real recorded journal.

Each corruption is applied to a fresh copy of a journal the daemon wrote (sealed segments, and
an unsealed newest one left by a SIGKILL, which is what an active segment looks like on disk).
Every command then runs against it in-process (fast enough for many cases; a sample also runs
as a real `recorder` process): nothing may crash, `verify` must point at the damaged segment and
offset, and salvage must give back exactly the records whose bytes were not hit.
"""

from __future__ import annotations

import contextlib
import io
import random
import shutil
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from broker import NatsServer
from faults import default_and_long, env_int, flip_bits, truncate
from run_helpers import Outgoing, Recorders, publish, read_records, run_cli

from recorder.cli import main
from recorder.demo.simulator import Simulator
from recorder.journal.frames import walk_frames
from recorder.journal.reader import JournalReader
from recorder.journal.record import FRAME_OVERHEAD, HEADER_SIZE, Record
from recorder.journal.segment import list_segments
from recorder.log import reset_logging
from recorder.meshsync import CORE_SUBJECT, REQUEST_SUBJECT, STORE_SUBJECT

SEED = env_int("RELIABILITY_SEED", 20260101)
# The long variants: `--run-slow`, sizes from RELIABILITY_* variables, no 300 s cap.
SUBJECTS = [CORE_SUBJECT, REQUEST_SUBJECT, STORE_SUBJECT]


@dataclass(frozen=True)
class Frame:
    start: int
    end: int
    record: Record | None  # None for the footer frame (its 8-byte tail included in the span)


@dataclass(frozen=True)
class Layout:
    """Where every frame of every segment of the original journal lies."""

    frames: dict[str, list[Frame]]
    sizes: dict[str, int]
    sealed: list[str]
    active: str

    def unit_start(self, segment: str, position: int) -> int:
        """Start of the frame holding `position` (0 inside the header): where damage shows."""
        if position < HEADER_SIZE:
            return 0
        return next(f.start for f in self.frames[segment] if f.start <= position < f.end)

    def boundaries(self, segment: str) -> set[int]:
        return {HEADER_SIZE, *(f.start for f in self.frames[segment])}


def _layout(journal: Path) -> Layout:
    by_position = {
        (position.segment, position.offset): record
        for position, record in JournalReader(journal, markers=True)
    }
    frames: dict[str, list[Frame]] = {}
    sizes: dict[str, int] = {}
    segments = list_segments(journal)
    for segment in segments:
        data = segment.path.read_bytes()
        sizes[segment.name] = len(data)
        damages: list = []
        spans = []
        for offset, _kind, body in walk_frames(segment.name, data, salvage=False, damages=damages):
            end = offset + FRAME_OVERHEAD + len(body)
            record = by_position.get((segment.number, offset))
            spans.append(Frame(offset, end if record is not None else len(data), record))
        assert damages == [], damages
        frames[segment.name] = spans
    names = [segment.name for segment in segments]
    return Layout(frames, sizes, names[:-1], names[-1])


@dataclass
class Outcome:
    code: int
    stdout: bytes
    stderr: bytes
    crash: str | None = None


def _run(*argv: str) -> Outcome:
    """Run the CLI in this process as `recorder ARGV` would; an exception that escapes main()
    (anything but SystemExit) is a crash."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    code, crash = 0, None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(["--log-format", "json", *argv])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            crash = traceback.format_exc()
    out.flush()
    err.flush()
    return Outcome(code, out.buffer.getvalue(), err.buffer.getvalue(), crash)  # type: ignore[attr-defined]


def _record_journal(server: NatsServer, recorders: Recorders, journal: Path) -> None:
    """A journal written by the daemon: sealed 32 KiB segments and an unsealed newest one."""
    recorder = recorders.start(
        journal,
        server.url,
        subjects=SUBJECTS,
        env={"RECORDER_JOURNAL_SEGMENT_MAX_BYTES": "32KiB"},
    )
    recorder.wait_ready()
    traffic = [Outgoing(subject, payload) for subject, payload in Simulator(SEED).stream(300)]
    publish(server.url, traffic)
    recorder.wait_written(len(traffic))
    recorder.kill()  # quiescent: no record is mid-write, the newest segment is just unsealed


@dataclass
class Corruption:
    kind: str  # flip | truncate
    segment: str
    positions: list[int]  # flipped bytes, or [new size]
    bits: list[int]

    def apply(self, journal: Path) -> None:
        path = journal / self.segment
        if self.kind == "flip":
            for position in self.positions:
                flip_bits(path, position, self.bits)
        else:
            truncate(path, self.positions[0])


def _corruptions(layout: Layout, count: int, rng: random.Random) -> list[Corruption]:
    made = []
    for index in range(count):
        kind = "flip" if index % 2 == 0 else "truncate"
        segment = layout.active if index % 4 in (2, 3) else rng.choice(layout.sealed)
        size = layout.sizes[segment]
        if kind == "flip":
            first = rng.randrange(size)
            spread = sorted(
                {
                    first,
                    *(min(size - 1, first + rng.randrange(32)) for _ in range(rng.randrange(3))),
                }
            )
            bits = rng.sample(range(8), rng.randint(1, 3))
            made.append(Corruption(kind, segment, spread, bits))
        else:
            made.append(Corruption(kind, segment, [rng.randrange(size)], []))
    return made


def _expected(layout: Layout, corruption: Corruption) -> tuple[list[Record], int | None]:
    """(records salvage must return, offset verify must report); the offset is None for a
    truncation at a record boundary, which leaves no damaged byte to point at."""
    lost: set[int] = set()
    frames = layout.frames[corruption.segment]
    if corruption.kind == "flip":
        hit = corruption.positions
        for frame in frames:
            if frame.record is not None and any(frame.start <= p < frame.end for p in hit):
                lost.add(id(frame.record))
        offset: int | None = layout.unit_start(corruption.segment, min(hit))
    else:
        cut = corruption.positions[0]
        for frame in frames:
            if frame.record is not None and (frame.end > cut or cut < HEADER_SIZE):
                lost.add(id(frame.record))
        boundary = cut in layout.boundaries(corruption.segment)
        offset = None if boundary else layout.unit_start(corruption.segment, cut)
    kept = [
        frame.record
        for name in layout.frames
        for frame in layout.frames[name]
        if frame.record is not None and id(frame.record) not in lost
    ]
    return kept, offset


def _problem_lines(outcome: Outcome) -> list[str]:
    return outcome.stdout.decode().splitlines()[:-1]  # the last line is the summary


@pytest.mark.parametrize(
    "count",
    default_and_long("CORRUPTIONS", 60, 1000),
)
def test_random_bit_flips_and_truncations_are_all_found_and_salvage_keeps_every_undamaged_record(
    nats_server_factory: Callable[..., NatsServer],
    recorders: Recorders,
    tmp_path: Path,
    figures: Callable[..., None],
    count: int,
) -> None:
    """For random bit flips and truncations in sealed and active segments of a daemon-written journal, `verify` exits 1 naming the segment and the offset of the damaged record, salvage (reader and `dump --salvage`) returns exactly the records whose bytes were not hit, `repair` leaves a journal that verifies clean with those same records, and no command (inspect, verify, dump, compact, repair) crashes."""
    original = tmp_path / "original"
    _record_journal(nats_server_factory(), recorders, original)
    layout = _layout(original)
    assert len(layout.sealed) >= 5
    baseline = _run("verify", str(original))
    assert baseline.code == 1  # the newest segment was left unsealed by the kill
    assert _problem_lines(baseline) == [f"{layout.active}: not sealed (writer stopped uncleanly)"]

    rng = random.Random(SEED + 5)
    found = boundary_cuts = subprocess_checked = 0
    kinds = {"flip/sealed": 0, "flip/active": 0, "truncate/sealed": 0, "truncate/active": 0}
    failures: list[str] = []
    try:
        for index, corruption in enumerate(_corruptions(layout, count, rng)):
            copy = tmp_path / f"copy-{index}"
            shutil.copytree(original, copy)
            corruption.apply(copy)
            where = "active" if corruption.segment == layout.active else "sealed"
            kinds[f"{corruption.kind}/{where}"] += 1
            kept, offset = _expected(layout, corruption)
            label = f"#{index} {corruption}"

            outcomes = {
                "inspect": _run("inspect", str(copy)),
                "verify": _run("verify", str(copy)),
                "dump": _run("dump", "--markers", str(copy)),
                "dump --salvage": _run("dump", "--markers", "--salvage", str(copy)),
                "compact": _run(
                    "compact", "--format", "json", "--out", str(tmp_path / "snap.json"), str(copy)
                ),
            }
            salvaged = [
                record for _position, record in JournalReader(copy, markers=True, salvage=True)
            ]
            outcomes["repair"] = _run("repair", str(copy))
            outcomes["verify after repair"] = _run("verify", str(copy))
            repaired = [record for _position, record in JournalReader(copy, markers=True)]

            for name, outcome in outcomes.items():
                if outcome.crash or outcome.code not in (0, 1, 2):
                    failures.append(f"{label}: {name} crashed ({outcome.code}):\n{outcome.crash}")
            lines = _problem_lines(outcomes["verify"])
            if offset is not None:
                wanted = f"{corruption.segment} offset {offset}: "
                detected = outcomes["verify"].code == 1 and any(
                    line.startswith(wanted) for line in lines
                )
            elif where == "sealed":
                detected = f"{corruption.segment}: not sealed (writer stopped uncleanly)" in lines
            else:
                # A cut between two records of the newest segment is a crash at that moment: no
                # byte is damaged, so verify reports what it reports for any crash, nothing more.
                detected = lines == _problem_lines(baseline)
                boundary_cuts += 1
            damaging = offset is not None or where == "sealed"
            found += detected and damaging
            if not detected:
                failures.append(f"{label}: verify did not report it as expected:\n{lines}")
            if salvaged != kept:
                failures.append(
                    f"{label}: salvage gave {len(salvaged)} records, expected {len(kept)}"
                )
            dumped = outcomes["dump --salvage"].stdout.splitlines()
            if outcomes["dump --salvage"].code != 0 or [
                orjson.loads(line)["seq"] for line in dumped
            ] != [r.seq for r in kept]:
                failures.append(f"{label}: dump --salvage did not print the undamaged records")
            if outcomes["repair"].code != 0 or outcomes["verify after repair"].code != 0:
                failures.append(
                    f"{label}: repair then verify: {outcomes['verify after repair'].stdout!r}"
                )
            if repaired != kept:
                failures.append(
                    f"{label}: repair kept {len(repaired)} records, expected {len(kept)}"
                )
            if index % 20 == 0:  # the real process too: exit codes and no traceback
                again = tmp_path / f"again-{index}"
                shutil.copytree(original, again)
                corruption.apply(again)
                for argv in (("verify", str(again)), ("dump", "--salvage", str(again))):
                    result = run_cli(*argv)
                    if result.returncode not in (0, 1, 2) or b"Traceback" in result.stderr:
                        failures.append(
                            f"{label}: `recorder {' '.join(argv)}` crashed:\n{result.stderr!r}"
                        )
                subprocess_checked += 1
                shutil.rmtree(again)
            shutil.rmtree(copy)
    finally:
        reset_logging()

    assert failures == [], "\n".join(failures[:20])
    assert found == count - boundary_cuts
    figures(
        corruptions=count,
        **kinds,
        damaging=count - boundary_cuts,
        detected_with_segment_and_offset_or_unsealed=found,
        boundary_cuts_in_active_segment=boundary_cuts,
        records_in_original=len(read_records(original)),
        segments=len(layout.sealed) + 1,
        checked_as_subprocess=subprocess_checked,
        seed=SEED + 5,
    )
