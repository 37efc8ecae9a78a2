"""Every reader against a journal `recorder run` is writing, rotating, compressing and cutting.

A real nats-server, a real recorder with small segments, zstd and retention, a publisher at a
steady rate, and `dump`, `inspect`, `verify`, `compact` (with and without `--checkpoint`) and
`replay` run again and again as processes, with the reader API in-process between them. Never
a traceback; every record read agrees with every other read of the same sequence number; runs
are contiguous unless a gap is reported, and every gap reported is real.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from broker import Broker
from run_helpers import BackgroundPublisher, RecorderProcess, recorders_for, run_cli, wait_until
from test_replay_support import Collector, sent_count

from recorder.cli.journal_commands import record_to_json
from recorder.journal.query import Query
from recorder.journal.reader import JournalReader
from recorder.journal.segment import SegmentFile, list_segments, segment_name

SUBJECT = "meshery.meshsync.core"
LIVE_ENV = {
    # Small segments rotate about every second at the publisher's rate, and a short maximum
    # age rotates them on a quiet moment too; retention keeps a few seconds' worth.
    "RECORDER_JOURNAL_SEGMENT_MAX_BYTES": "24KiB",
    "RECORDER_JOURNAL_SEGMENT_MAX_AGE": "2s",
    "RECORDER_JOURNAL_COMPRESSION": "zstd",
    "RECORDER_JOURNAL_RETENTION_MAX_SEGMENTS": "8",
}
RATE_PER_S = 500.0
REPORT_ENV = "LIVE_READERS_REPORT"
_REMOVED = re.compile(r"segments? (\d+)(?:\.\.(\d+))? removed while being read")
_AFTER_CHECKPOINT = re.compile(r"seq (\d+)\.\.(\d+) missing after the checkpoint")
_NUMBERING_GAP = re.compile(r"segments? \d+(?:\.\.\d+)?(?: seq \S+)? missing")


@dataclass
class Reads:
    """Every record any read returned, by seq, as JSON: each later read must agree."""

    directory: Path
    seen: dict[int, dict[str, Any]] = field(default_factory=dict)
    reads: int = 0
    gaps: int = 0  # reads that reported a gap (each checked to be real)
    commands: int = 0
    refusals: int = 0  # commands that exited 1 for records truly gone under them

    def agree(self, records: list[dict[str, Any]], *, gapped: bool, what: str) -> None:
        seqs = [record["seq"] for record in records]
        assert seqs == sorted(set(seqs)), f"{what}: sequence numbers out of order"
        if not gapped and seqs:
            assert seqs == list(range(seqs[0], seqs[-1] + 1)), f"{what}: a silent hole"
        for record in records:
            known = self.seen.setdefault(record["seq"], record)
            assert known == record, f"{what}: seq {record['seq']} read differently"
        self.reads += 1
        self.gaps += gapped

    def in_process(self, query: Query | None = None) -> None:
        """The reader API on the live journal (markers too, so sequence numbers are contiguous)."""
        reader = JournalReader(self.directory, query=query, markers=True)
        records = [record_to_json(record) for _, record in reader]
        assert reader.stats.damages == [], reader.stats.damages
        assert all(gap.cause != "missing" for gap in reader.stats.gaps), reader.stats.gaps
        for gap in reader.stats.gaps:
            self.assert_gone(gap.first_segment or 0, gap.last_segment or 0)
        gapped = any(gap.inside for gap in reader.stats.gaps)
        self.agree(records, gapped=gapped, what=f"reader {query}")

    def assert_gone(self, first: int, last: int) -> None:
        for number in range(first, last + 1):
            name = segment_name(number)
            assert not (self.directory / name).exists(), name
            assert not (self.directory / f"{name}.zst").exists(), name

    def assert_gaps_real(self, stderr: str) -> bool:
        """Every gap a command reported is there; returns whether it reported any."""
        assert not _NUMBERING_GAP.search(stderr), stderr  # retention never punches holes
        for match in _REMOVED.finditer(stderr):
            self.assert_gone(int(match[1]), int(match[2] or match[1]))
        for match in _AFTER_CHECKPOINT.finditer(stderr):
            oldest = next(iter(JournalReader(self.directory, markers=True)))[1].seq
            assert oldest > int(match[2]), f"seq {match[2]} is still there: {stderr}"
        return bool(_REMOVED.search(stderr) or _AFTER_CHECKPOINT.search(stderr))


def _cli(reads: Reads, *args: str | Path) -> tuple[int, str, str]:
    reads.commands += 1
    result = run_cli(*(str(arg) for arg in args), timeout=120)
    stderr = result.stderr.decode()
    assert "Traceback" not in stderr, stderr
    return result.returncode, result.stdout.decode(), stderr


def _gap_refusal(code: int, stderr: str, reads: Reads) -> bool:
    """Exit 0, or exit 1 for records that truly went missing under the command."""
    if code == 0:
        return False
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert code == 1 and len(errors) == 1 and "records missing" in errors[0], stderr
    assert reads.assert_gaps_real(stderr), stderr
    reads.refusals += 1
    return True


def _round(recorder: RecorderProcess, reads: Reads, collector: Collector, url: str) -> None:
    """Each reader command once, with in-process reads between them."""
    journal, work = recorder.journal_dir, recorder.stderr_path.parent
    code, out, err = _cli(reads, "dump", journal, "--markers")
    assert code == 0, err
    gapped = reads.assert_gaps_real(err)
    assert "torn tail" not in err and "skipped damage" not in err, err
    reads.agree([json.loads(line) for line in out.splitlines()], gapped=gapped, what="dump")
    reads.in_process()
    code, out, err = _cli(reads, "inspect", journal)
    assert code == 0, err
    assert not re.search(r"\b(torn|corrupt|unsealed)\b", out), out
    code, out, err = _cli(reads, "verify", journal)
    assert code == 0 and ": clean" in out, out + err
    reads.in_process()
    for extra in ((), ("--checkpoint",)):
        code, _, err = _cli(reads, "compact", journal, "--out", work / "snapshot.yaml", *extra)
        if _gap_refusal(code, err, reads):
            code, _, err = _cli(
                reads, "compact", journal, "--out", work / "snapshot.yaml", "--allow-gaps", *extra
            )
            assert code == 0, err
    seen = sorted(reads.seen)
    reads.in_process(Query(from_seq=seen[len(seen) // 2], to_seq=seen[-1]))
    before = len(collector.sync())
    args = ("--nats-url", url, "--subject-prefix", "replayed", "--speed", "max")
    code, _, err = _cli(reads, "replay", journal, *args)
    if not _gap_refusal(code, err, reads):
        got = [int(m.payload) for m in collector.sync()[before:]]
        assert len(got) == sent_count(err)
        assert got == sorted(set(got)), "replayed out of order"
        if got and not reads.assert_gaps_real(err):
            assert got == list(range(got[0], got[-1] + 1)), "a silent hole in the replay"


def _live_readers(nats_server: Broker, tmp_path: Path, rounds: int) -> Reads:
    journal = tmp_path / "journal"
    reads = Reads(journal)
    with (
        recorders_for(tmp_path) as recorders,
        Collector(nats_server.url, "replayed.>") as collector,
        BackgroundPublisher(nats_server.url, SUBJECT, rate_per_s=RATE_PER_S) as publisher,
    ):
        recorder = recorders.start(journal, nats_server.url, subjects=[SUBJECT], env=LIVE_ENV)
        recorder.wait_ready()
        # Under way: rotated, compressed, and retention at work, before the first read.
        wait_until(
            lambda: (
                (journal / f"{segment_name(9)}.zst").exists()
                and not any(journal.glob(f"{segment_name(1)}*"))
            ),
            60,
            "compressed segments and retention",
        )
        for _ in range(rounds):
            _round(recorder, reads, collector, nats_server.url)
            assert recorder.alive(), recorder.stderr()
        publisher.stop()
        assert recorder.stop() == 0, recorder.stderr()
    reads.in_process()  # the closed journal agrees with everything read while it was live
    code, out, err = _cli(reads, "verify", journal)
    assert code == 0 and ": clean" in out, out + err
    assert list_segments(journal)[0].number > 1  # retention ran
    _report(reads, rounds, list_segments(journal))
    return reads


def _report(reads: Reads, rounds: int, segments: list[SegmentFile]) -> None:
    """Merge this run's figures into the JSON report the README's figures come from."""
    path = Path(os.environ.get(REPORT_ENV, "build/reliability/live-readers.json"))
    path.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(path.read_text()) if path.exists() else {}
    results[f"rounds_{rounds}"] = {
        "rounds": rounds,
        "commands_run": reads.commands,
        "tracebacks": 0,  # any would have failed the run
        "reads_compared": reads.reads,
        "records_compared": len(reads.seen),
        "reads_reporting_a_gap": reads.gaps,
        "commands_refusing_a_real_gap": reads.refusals,
        "segments_written": segments[-1].number,
        "segments_removed_by_retention": segments[0].number - 1,
        "segments_compressed": sum(segment.compressed for segment in segments),
    }
    path.write_text(json.dumps(results, indent=2) + "\n")


def test_every_reader_agrees_with_itself_on_a_live_journal(
    nats_server: Broker, tmp_path: Path
) -> None:
    """Two rounds of every reader command against a recorder rotating, compressing, cutting."""
    reads = _live_readers(nats_server, tmp_path, rounds=2)
    assert reads.reads == 2 * 4 + 1


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_every_reader_agrees_with_itself_on_a_live_journal_for_long(
    nats_server: Broker, tmp_path: Path
) -> None:
    """The same for twenty rounds: races between a reader and compression or retention are rare."""
    reads = _live_readers(nats_server, tmp_path, rounds=20)
    assert reads.reads == 20 * 4 + 1
