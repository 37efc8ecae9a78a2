"""The journal's filesystem turning read-only under a running recorder, as ext4 does on an error.

A real ext4 image on a loop device, mounted `errors=remount-ro`, is made to hit an error
through the kernel's own `trigger_fs_error` switch. (A plain `mount -o remount,ro` is refused
while the recorder holds its segment open for writing, EBUSY, so that cannot be the test.) Such
a filesystem stays read-only until it is unmounted and checked: recovery is the operator's
umount, fsck and mount, then a restart that finds and marks the gap.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from broker import NatsServer
from hostile_report import report
from polling import wait_until
from run_helpers import (
    Outgoing,
    Recorders,
    markers_of,
    messages_of,
    publish,
    read_records,
)

from recorder.journal.maintenance import verify_journal
from recorder.journal.record import MarkerType
from recorder.meshsync import CORE_SUBJECT

DROPPED = "meshsync_recorder_messages_dropped_total"
WRITTEN = "meshsync_recorder_messages_written_total"


class Ext4Image:
    """An ext4 filesystem in a file, loop-mounted with errors=remount-ro."""

    def __init__(self, image: Path, where: Path) -> None:
        self.image = image
        self.where = where

    def mount(self) -> None:
        where = str(self.where)
        result = subprocess.run(
            ["mount", "-o", "loop,errors=remount-ro", str(self.image), where],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            pytest.skip(f"cannot loop-mount an ext4 image here: {result.stderr.strip()}")

    def trigger_error(self) -> None:
        """Make the kernel record an ext4 error, which remounts the filesystem read-only."""
        source = subprocess.run(
            ["findmnt", "-no", "SOURCE", str(self.where)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        switch = Path("/sys/fs/ext4") / Path(source).name / "trigger_fs_error"
        if not switch.exists():
            pytest.skip(f"{switch} is missing: this kernel cannot inject an ext4 error")
        switch.write_text("meshsync-recorder test\n")

    def repair(self) -> None:
        """What an operator does: unmount, check, mount again read-write."""
        subprocess.run(["umount", str(self.where)], check=True, capture_output=True)
        subprocess.run(["e2fsck", "-fy", str(self.image)], check=False, capture_output=True)
        self.mount()

    def close(self) -> None:
        subprocess.run(["umount", "-l", str(self.where)], capture_output=True, check=False)


@pytest.fixture
def ext4(tmp_path: Path) -> Iterator[Ext4Image]:
    if shutil.which("mkfs.ext4") is None or shutil.which("e2fsck") is None:
        pytest.skip("needs mkfs.ext4 and e2fsck")
    image = tmp_path / "fs.img"
    with image.open("wb") as handle:
        handle.truncate(32 * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
    where = tmp_path / "mnt"
    where.mkdir()
    filesystem = Ext4Image(image, where)
    filesystem.mount()
    try:
        yield filesystem
    finally:
        filesystem.close()


def _sum(samples: dict[str, float], name: str) -> int:
    return int(sum(value for key, value in samples.items() if key.startswith(name + "{")))


def _batch(start: int, count: int) -> list[Outgoing]:
    return [
        Outgoing(CORE_SUBJECT, f"{n:08d}".encode().ljust(300, b"."))
        for n in range(start, start + count)
    ]


def test_filesystem_turning_read_only_keeps_the_daemon_up_and_the_restart_marks_the_gap(
    ext4: Ext4Image,
    nats_server_factory: type[NatsServer],
    recorders: Recorders,
    figures: object,
) -> None:
    """When the journal's filesystem turns read-only the daemon stays up, answers 503 on /readyz, counts every message it cannot write and never crashes a thread; after the operator's fsck and remount a restart records again, with the interruption marked by an unclean STOPPED marker and nothing written before it lost."""
    server = nats_server_factory()
    journal = ext4.where / "journal"
    env = {"RECORDER_JOURNAL_SEGMENT_MAX_BYTES": "8KiB"}  # rotations run into it too
    recorder = recorders.start(
        journal, server.url, subjects=[CORE_SUBJECT], fsync="always", env=env
    )
    recorder.wait_ready()
    publish(server.url, _batch(0, 20))
    recorder.wait_written(20)
    before = recorder.written()

    ext4.trigger_error()
    sent = 20

    def not_ready() -> bool:
        nonlocal sent
        publish(server.url, _batch(sent, 10))
        sent += 10
        response = recorder.get("/readyz")
        return response is not None and response[0] == 503

    wait_until(not_ready, 20, "/readyz to answer 503")
    response = recorder.get("/readyz")
    assert response is not None and "journal not writable" in response[1], response
    wait_until(
        lambda: (
            _sum(m := recorder.metrics(), WRITTEN)
            + _sum(m, DROPPED)
            + int(m["meshsync_recorder_queue_depth"])
            == sent
        ),
        15,
        "every message written, dropped or queued",
    )
    errors = recorder.metrics()["meshsync_recorder_write_errors_total"]
    assert errors > 0
    # The writer keeps retrying against the read-only filesystem, and stays up doing so.
    wait_until(
        lambda: recorder.metrics()["meshsync_recorder_write_errors_total"] >= errors + 2,
        20,
        "two more failed attempts",
    )
    assert recorder.alive()
    assert "writer_thread_failed" not in recorder.event_names()
    written_before_stop = recorder.written()
    recorder.stop()  # whatever it returns, the stop marker cannot reach a read-only disk

    ext4.repair()
    restarted = recorders.start(
        journal, server.url, subjects=[CORE_SUBJECT], fsync="always", env=env
    )
    restarted.wait_ready()
    publish(server.url, _batch(sent, 10))
    restarted.wait_written(10)
    assert restarted.stop() == 0

    assert verify_journal(journal).clean
    records = read_records(journal)
    counters = [int(message.payload[:8]) for message in messages_of(records)]
    assert counters[:before] == list(range(before)), "something written before the error is lost"
    assert counters[-10:] == list(range(sent, sent + 10))
    started = markers_of(records, MarkerType.STARTED)
    unclean = [m for m in markers_of(records, MarkerType.STOPPED) if not m.fields["clean"]]
    assert len(started) == 2 and unclean, [m.fields for m in markers_of(records)]
    assert unclean[0].seq < started[1].seq
    measured = {
        "published": sent + 10,
        "journaled": len(counters),
        "written_before_read_only": before,
        "lost_while_read_only": sent - written_before_stop,
        "unclean_stop_markers": len(unclean),
        "verify_clean": True,
    }
    figures(**measured)  # type: ignore[operator]
    report("filesystem turned read-only (ext4 errors=remount-ro)", **measured)
