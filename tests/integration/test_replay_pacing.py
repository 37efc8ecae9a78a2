"""`recorder replay` pacing on a real broker: recorded gaps, faster, flat out, and a rate cap.

Receive times are taken in a subscriber's callback in this process, so each measured gap also
carries the broker hop and both processes' scheduling jitter; the tolerances below allow for a
shared, noisy machine while still telling the paces apart.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from broker import Broker
from run_helpers import RECORDER, clean_env
from test_replay_support import Collector, build_journal, elapsed_s, replay_cli, sent_count

T0 = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z
MS = 1_000_000
GAP_TOLERANCE_S = 0.040  # each inter-arrival gap within ±40 ms of the scaled recorded gap
TOTAL_TOLERANCE = 0.15  # first-to-last arrival within 15% of the scaled recorded span ...
TOTAL_SLACK_S = 0.030  # ... plus this much, which only matters for the short speed-10 span


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


@pytest.mark.parametrize("speed", [1, 10])
def test_recorded_gaps_are_kept_scaled_by_speed(
    nats_server: Broker, tmp_path: Path, speed: int
) -> None:
    """Twenty messages recorded 100 ms apart arrive 100/speed ms apart, each gap within ±40 ms and the whole span within 15%."""
    directory = tmp_path / "journal"
    build_journal(directory, [(T0 + i * 100 * MS, "paced.x", b"%d" % i) for i in range(20)])
    with Collector(nats_server.url, "paced.x") as collector:
        result = replay_cli(directory, "--nats-url", nats_server.url, "--speed", str(speed))
        assert result.returncode == 0, result.stderr
        got = collector.sync()
    assert [m.payload for m in got] == [b"%d" % i for i in range(20)]
    times = [m.at for m in got]
    gap = 0.1 / speed
    assert all(abs(g - gap) <= GAP_TOLERANCE_S for g in gaps(times)), gaps(times)
    span = times[-1] - times[0]
    expected = 19 * gap
    assert abs(span - expected) <= expected * TOTAL_TOLERANCE + TOTAL_SLACK_S, span
    # No drift: every arrival is near its own deadline from the start, not just each gap.
    offsets = [t - times[0] - i * gap for i, t in enumerate(times)]
    assert max(abs(o) for o in offsets) <= GAP_TOLERANCE_S, offsets


# A bare nats-py publish loop in a process of its own: the same payloads (message i is i as
# four bytes, repeated to 1 KiB), the same subject and subscriber, a flush every 1024 like
# `--speed max`; prints the seconds from the first publish to the last flush.
BARE_LOOP = """
import asyncio, sys, time
import nats

async def main(url, count):
    nc = await nats.connect(url, connect_timeout=2)
    payloads = [i.to_bytes(4, "big") * 256 for i in range(count)]
    started = time.perf_counter()
    for i, payload in enumerate(payloads, start=1):
        await nc.publish("fast.x", payload)
        if i % 1024 == 0:
            await nc.flush(timeout=10)
    await nc.flush(timeout=10)
    print(time.perf_counter() - started)
    await nc.close()

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""
SANITY_FACTOR = 3  # today within 1.3x (bench/replay.py: 75-90%); a flush per message is 20x+


def test_speed_max_keeps_up_with_a_bare_publish_loop(nats_server: Broker, tmp_path: Path) -> None:
    """`--speed max` delivers every message, ignoring recorded gaps, and publishes no more than 3x slower than a bare nats-py loop (a sanity bound against gross regressions; bench/replay.py measures the 70% target)."""
    count = 40_000
    payloads = [i.to_bytes(4, "big") * 256 for i in range(count)]
    directory = tmp_path / "journal"
    # Recorded over a minute: flat out must ignore the recorded gaps entirely.
    build_journal(directory, [(T0 + i * 3 * MS, "fast.x", p) for i, p in enumerate(payloads)])
    bare_s, replay_s = [], []
    with Collector(nats_server.url, "fast.x") as collector:
        # Alternating, best of two each: one hiccup on a shared machine must not decide it.
        for _ in range(2):
            bare = subprocess.run(
                [sys.executable, "-c", BARE_LOOP, nats_server.url, str(count)],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            bare_s.append(float(bare.stdout))
            started = time.monotonic()
            result = replay_cli(directory, "--nats-url", nats_server.url, "--speed", "max")
            wall_s = time.monotonic() - started
            assert result.returncode == 0, result.stderr
            assert sent_count(result.stderr) == count
            assert wall_s < 15, wall_s  # start-up included; at the recorded pace: a minute
            replay_s.append(elapsed_s(result.stderr))
        got = collector.sync()
    assert [m.payload for m in got] == payloads * 4
    assert min(replay_s) <= SANITY_FACTOR * min(bare_s) + 0.05, (replay_s, bare_s)


def test_rate_caps_flat_out_and_bursts_after_a_quiet_stretch(
    nats_server: Broker, tmp_path: Path
) -> None:
    """`--rate 50` spaces messages at least ~20 ms apart, both flat out and for a burst recorded after a long gap."""
    directory = tmp_path / "journal"
    # One message, then 25 recorded in the same instant half a second later.
    items = [(T0, "rated.x", b"first")] + [(T0 + 500 * MS, "rated.x", b"%d" % i) for i in range(25)]
    build_journal(directory, items)
    for speed in ("max", "1"):
        with Collector(nats_server.url, "rated.x") as collector:
            result = replay_cli(
                directory, "--nats-url", nats_server.url, "--speed", speed, "--rate", "50"
            )
            assert result.returncode == 0, result.stderr
            got = collector.sync()
        assert len(got) == len(items)
        times = [m.at for m in got]
        burst = times[1:] if speed == "1" else times
        span = burst[-1] - burst[0]
        expected = (len(burst) - 1) / 50
        # Never faster than the cap (less 15% for jitter), and not much slower either.
        assert expected * (1 - TOTAL_TOLERANCE) <= span <= expected + 0.25, (speed, span)
        if speed == "1":
            assert times[1] - times[0] >= 0.5 - GAP_TOLERANCE_S  # the recorded gap is kept


def test_a_terminal_gets_a_progress_line_redrawn_in_place(
    nats_server: Broker, tmp_path: Path
) -> None:
    """On a terminal, replay redraws `sent N of T (seq S), ...` in place (at most ten times a second) and ends the line before its summary; off a terminal there is no progress line."""
    directory = tmp_path / "journal"
    seqs = build_journal(directory, [(T0 + i * MS, "tty.x", b"%d" % i) for i in range(30)])
    args = [str(directory), "--nats-url", nats_server.url, "--rate", "40"]  # about 0.75 s
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [*RECORDER, "replay", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=terminal,
            env=clean_env(),
        )
        os.close(terminal)
        output = b""
        with contextlib.suppress(OSError):  # EIO once the process has closed the terminal
            while chunk := os.read(controller, 4096):
                output += chunk
        assert process.wait(timeout=30) == 0, output
    finally:
        os.close(controller)
    text = output.decode()
    draws = re.findall(r"\rsent (\d+) of 30 \(seq (\d+)\)", text)
    assert 3 <= len(draws) <= 12, text  # 0.75 s at most ten a second, and not once only
    assert all(int(seq) in seqs for _, seq in draws)
    assert [int(sent) for sent, _ in draws] == sorted(int(sent) for sent, _ in draws)
    # The line ended before the summary (a JSON log record here: RECORDER asks for JSON logs).
    assert re.search(r"\x1b\[K\r?\n\{[^\n]*\"event\": \"replay_summary\"", text), text
    piped = replay_cli(*args)
    assert piped.returncode == 0 and "\rsent" not in piped.stderr
