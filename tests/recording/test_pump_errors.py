"""The writer thread on a real full file system (a small tmpfs): count, mark, back off, recover."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from filesystems import fill
from polling import wait_until
from structlog.testing import capture_logs

from recorder.journal.maintenance import verify_journal
from recorder.journal.record import Marker, MarkerType
from recorder.recording.pump import PumpOptions

from ._helpers import Rig, incoming, payloads

WAIT_S = 15.0
BIG = 16 * 1024  # larger than the slack in a tmpfs page, so a full disk refuses it
JETSTREAM = PumpOptions(batch_max=1, drop_on_write_error=False)


@pytest.fixture
def mount(tiny_tmpfs: Callable[[str], Path]) -> Path:
    return tiny_tmpfs("1m")


@pytest.fixture
def events() -> Iterator[list[dict[str, Any]]]:
    with capture_logs() as captured:
        yield captured


def failures(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event for event in events if event["event"] == "journal_write_failed"]


def test_core_mode_drops_what_a_full_disk_refuses_and_marks_it_once_space_returns(
    make_rig: Callable[..., Rig], mount: Path
) -> None:
    """ENOSPC: the batch is counted as dropped (write_error), the journal is not writable, no
    torn record stays; once space is freed a DROPPED marker says how many, and writing resumes."""
    rig = make_rig(mount / "journal")
    filler = mount / "filler"
    fill(filler)
    rig.put(*(incoming(n, size=BIG) for n in range(3)))
    rig.pump.start()
    wait_until(
        lambda: rig.metrics.dropped.get("write_error") == 3, WAIT_S, "three write_error drops"
    )
    assert rig.metrics.write_errors >= 1
    assert rig.metrics.dropped_by_subject == {"meshery.meshsync.core": 3}
    filler.unlink()
    rig.put(incoming(3), incoming(4))
    wait_until(lambda: rig.written() == 2, WAIT_S, "the messages after the freed space")
    assert rig.metrics.journal_writable
    found = rig.finish()
    drops = [r for r in found if isinstance(r, Marker) and r.type is MarkerType.DROPPED]
    # A small marker may fit where a big message did not, so the count can be split.
    assert sum(drop.fields["count"] for drop in drops) == 3
    assert drops[-1].fields["write_error_total"] == 3
    assert payloads(found) == [b"3", b"4"]
    last = found[-1]
    assert isinstance(last, Marker) and last.fields["clean"] is True
    assert verify_journal(rig.directory).clean


def test_without_dropping_a_barrier_waits_for_the_write_that_failed(
    make_rig: Callable[..., Rig], mount: Path, events: list[dict[str, Any]]
) -> None:
    """JetStream mode keeps what it could not write in memory and retries it: the barrier that
    covers it answers only once it is on disk (True), never acknowledging a message not written."""
    rig = make_rig(mount / "journal", options=JETSTREAM)
    filler = mount / "filler"
    fill(filler)
    outcomes: list[bool] = []
    rig.put(incoming(0, size=BIG))
    rig.intake.barrier(outcomes.append)
    rig.pump.start()
    wait_until(lambda: len(failures(events)) >= 2, WAIT_S, "two failed writes")
    assert outcomes == []  # nothing acknowledged while the message is not on disk
    assert rig.metrics.dropped == {}  # kept for the retry, not counted as dropped
    filler.unlink()
    wait_until(lambda: outcomes, WAIT_S, "the barrier")
    assert outcomes == [True]
    assert payloads(rig.finish()) == [b"0".ljust(BIG, b".")]


def test_write_error_retries_back_off_doubling_and_start_over_after_recovery(
    make_rig: Callable[..., Rig], mount: Path, events: list[dict[str, Any]]
) -> None:
    """Each failed write waits twice as long as the one before; a write that succeeds resets
    the wait, so the next failure is retried quickly again."""
    rig = make_rig(mount / "journal", options=JETSTREAM)
    fill(mount / "filler")
    rig.put(*(incoming(n, size=BIG) for n in range(4)))
    rig.pump.start()
    wait_until(lambda: len(failures(events)) == 4, WAIT_S, "four failed writes")
    assert [event["retry_in_s"] for event in failures(events)] == [0.1, 0.2, 0.4, 0.8]
    assert {event["errno"] for event in failures(events)} == {28}  # ENOSPC
    assert not rig.metrics.journal_writable
    assert any(r.startswith("journal not writable") for r in rig.metrics.not_ready_reasons())
    (mount / "filler").unlink()
    rig.put(incoming(4))
    # The four kept in memory through the fault come first, then the new one.
    wait_until(lambda: rig.written() == 5, WAIT_S, "the writes after space returned")
    assert rig.metrics.journal_writable
    assert any(event["event"] == "journal_writable_again" for event in events)
    fill(mount / "filler-again")
    rig.put(incoming(5, size=BIG))
    wait_until(lambda: len(failures(events)) == 5, WAIT_S, "the next failed write")
    assert failures(events)[-1]["retry_in_s"] == 0.1
    (mount / "filler-again").unlink()
    rig.finish()
