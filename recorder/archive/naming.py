"""The name a journal's objects live under in an archive, stable across restarts."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Final

from recorder.errors import ArchiveError
from recorder.fsutil import read_file, write_atomic

ID_FILE: Final = "archive.id"


def journal_name(directory: Path, configured: str = "") -> str:
    """`configured` when set; else an id made once and kept in the journal directory.

    The writer's instance id changes with every start, so it cannot name a journal; a random
    id kept beside the segments can, and two recorders sharing a prefix never pick the same.
    """
    if configured:
        return configured
    path = directory / ID_FILE
    try:
        name = read_file(path).decode("ascii", "replace").strip()
    except FileNotFoundError:
        name = ""
    except OSError as exc:
        raise ArchiveError(str(path), "bad_config", f"cannot read: {exc.strerror}") from None
    if name:
        return name
    name = uuid.uuid4().hex
    write_atomic(path, [name.encode() + b"\n"])
    return name
