"""The compaction checkpoint's container: what makes a file a compaction state we can resume.

The state itself is written and read by `Compactor.to_bytes` / `Compactor.from_bytes`; this
module owns the format's identity, its version and the checks a resume must pass first.
"""

from __future__ import annotations

from typing import Any, Final

import msgpack

from recorder.compact.model import CompactOptions
from recorder.errors import UsageError

CHECKPOINT_FORMAT: Final = "meshsync-recorder-compact-state"
CHECKPOINT_VERSION: Final = 1


def parse_checkpoint(data: bytes, options: CompactOptions) -> dict[str, Any]:
    """The checkpoint's fields, once it is known to be ours, current, and made like this run."""
    try:
        state = msgpack.unpackb(data, raw=False, strict_map_key=False)
        ok = isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT
    except (ValueError, msgpack.UnpackException):
        ok = False
    if not ok:
        raise UsageError("the checkpoint is not a compaction state", hint="delete it")
    if state["version"] != CHECKPOINT_VERSION:
        raise UsageError(f"checkpoint version {state['version']} is not supported")
    if (state["prune_ghosts"], state["idle_ns"]) != (options.prune_ghosts, options.idle_ns):
        raise UsageError(
            f"the checkpoint was made with prune_ghosts={state['prune_ghosts']}, "
            f"idle_ns={state['idle_ns']}; this run has prune_ghosts={options.prune_ghosts}, "
            f"idle_ns={options.idle_ns}",
            hint="compact with the checkpoint's ghost-pruning settings, or without it",
        )
    return state  # type: ignore[no-any-return]
