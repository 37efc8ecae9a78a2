"""The event loop's per-message work, counted in CPU instructions, against a baseline checkout.

    .venv/bin/python bench/hot_path.py --baseline-src DIR [--messages N]

What the NATS callback does for each message (bridge.on_direct): stamp it, build the message
handed to the writer and put it on the intake. Run under `valgrind --tool=callgrind` twice per
tree (a few and N + a few messages), the difference divided by N is the instructions one message
costs, start-up excluded. Instruction counts do not move with the load of a shared machine, so
this separates a change's cost from noise, where wall time cannot. The baseline's Incoming may be
a plain tuple (before it had names) or the named one; the loop builds whichever the tree has.
Exits 1 when valgrind is missing.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FEW = 1_000
_LOOP = """
import sys, time
from recorder.journal import record
from recorder.recording.intake import Intake
count = int(sys.argv[1])
try:
    intake = Intake(10**9, 1 << 40)  # a byte bound too, since queue_max_bytes
except TypeError:
    intake = Intake(10**9)
put, now, data = intake.put, time.time_ns, b"x" * 1024
if hasattr(record.Incoming, "_fields"):
    Incoming, new = record.Incoming, tuple.__new__
    for _ in range(count):
        put(new(Incoming, (now(), "meshery.meshsync.core", "", None, data, None)))
else:
    for _ in range(count):
        put((now(), "meshery.meshsync.core", "", None, data, None))
"""


def instructions(source: Path, count: int) -> int:
    """Instructions callgrind counts for the loop over `count` messages, from tree `source`."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable]
    done = subprocess.run(
        [*command, "-c", _LOOP, str(count)],
        env=env,
        cwd="/",  # `-c` puts the working directory first on sys.path: never a checkout
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from callgrind: {done.stderr[-500:]}")
    return int(found.group(1))


def per_message(source: Path, messages: int) -> float:
    return (instructions(source, FEW + messages) - instructions(source, FEW)) / messages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--baseline-src", type=Path, required=True, help="checkout to compare")
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 1
    baseline = per_message(args.baseline_src, args.messages)
    this = per_message(ROOT, args.messages)
    print(f"instructions per message on the event loop ({args.messages:,} messages, callgrind)")
    print(f"  baseline {args.baseline_src}: {baseline:,.0f}")
    print(f"  this tree {ROOT}: {this:,.0f}")
    print(f"  ratio this/baseline: {this / baseline:.2f} ({this - baseline:+,.0f} per message)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
