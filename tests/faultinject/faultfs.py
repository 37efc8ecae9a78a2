"""Build the fault-injection shim (faultfs.c) and switch its faults on and off at run time."""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

SHIM_SOURCE = Path(__file__).with_name("faultfs.c")
SEGMENTS = "*.seg"


def build_shim(out_dir: Path) -> Path:
    """Compile the shim into `out_dir` and return the library's path."""
    library = out_dir / "libfaultfs.so"
    subprocess.run(
        [
            "cc",
            "-shared",
            "-fPIC",
            "-O2",
            "-o",
            str(library),
            str(SHIM_SOURCE),
            "-ldl",
            "-lpthread",
        ],
        check=True,
        capture_output=True,
    )
    return library


@dataclass(frozen=True)
class FaultyDisk:
    """The shim's settings for one test: which files fail, the control file, the error log."""

    library: Path
    journal: Path
    control: Path
    counts: Path

    def env(self) -> dict[str, str]:
        """Environment that puts a child process's calls on the journal's segments under the shim."""
        return {
            "LD_PRELOAD": str(self.library),
            "FAULTFS_MATCH": f"{os.path.realpath(self.journal)}/{SEGMENTS}",
            "FAULTFS_CONTROL": str(self.control),
            "FAULTFS_COUNTS": str(self.counts),
        }

    def inject(self, **settings: str | int) -> None:
        """Switch faults on, e.g. inject(fsync="EIO") or inject(fsync_delay_ms=200); replaces
        what was set. Written by rename, so the shim never reads half a file."""
        text = " ".join(f"{key}={value}" for key, value in settings.items())
        tmp = self.control.with_suffix(".tmp")
        tmp.write_text(text + "\n")
        tmp.replace(self.control)

    def clear(self) -> None:
        self.inject()

    def injected(self) -> Counter[str]:
        """Errors injected so far, by call class: {"fsync": n, "write": n, "writev": n}."""
        if not self.counts.exists():
            return Counter()
        return Counter(line.split("\t")[1] for line in self.counts.read_text().splitlines())
