"""The state builder's model of a power loss, checked on generated operation logs."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from crashsim.oplog import Op
from crashsim.states import SECTOR, Model, crash_points, explore

ROOT = "/r"
FILE = "/r/f"
O_CREAT_WRONLY = 0o101


def _log(writes: list[bytes], synced_after: int) -> list[Op]:
    """Create FILE (directory fsynced), append `writes`, fsync after the first `synced_after`."""
    ops = [
        Op("open", 1, 3, FILE, flags=O_CREAT_WRONLY, created=True),
        Op("open", 1, 4, ROOT, flags=0o200000),
        Op("sync_begin", 1, 4, ROOT),
        Op("sync_end", 1, 4, ROOT),
    ]
    offset = 0
    for index, data in enumerate(writes):
        ops.append(Op("write", 1, 3, FILE, flags=offset, data=data))
        offset += len(data)
        if index + 1 == synced_after:
            ops += [Op("sync_begin", 1, 3, FILE), Op("sync_end", 1, 3, FILE)]
    return ops


@settings(max_examples=200, deadline=None)
@given(
    writes=st.lists(st.binary(min_size=1, max_size=1500), min_size=1, max_size=6),
    synced_after=st.integers(0, 6),
    seed=st.integers(0, 2**32 - 1),
)
def test_states_keep_the_synced_prefix_and_tear_only_at_sectors(
    writes: list[bytes], synced_after: int, seed: int
) -> None:
    """Every state holds what the fsync covered and is a prefix of the writes, cut at a sector."""
    ops = _log(writes, synced_after)
    synced = b"".join(writes[:synced_after]) if synced_after <= len(writes) else b""
    everything = b"".join(writes)
    rng = random.Random(seed)
    for _model, state in explore(ROOT, ops, [len(ops)], rng, per_point=8):
        data = state.files[FILE]
        assert data.startswith(synced)
        assert everything.startswith(data)
        ends = {sum(map(len, writes[:count])) for count in range(len(writes) + 1)}
        assert len(data) in ends or len(data) % SECTOR == 0


def test_an_unsynced_create_may_vanish_and_a_synced_one_stays() -> None:
    """A file whose directory was never fsynced is sometimes absent; after the fsync, never."""
    ops = [Op("open", 1, 3, FILE, flags=O_CREAT_WRONLY, created=True)]
    states = [state for _model, state in explore(ROOT, ops, [1], random.Random(1), per_point=6)]
    assert any(FILE not in state.files for state in states)
    assert any(FILE in state.files for state in states)
    synced = _log([b"x"], 1)
    states = [state for _model, state in explore(ROOT, synced, [4], random.Random(1), per_point=6)]
    assert all(FILE in state.files for state in states)


def test_an_unlink_depending_on_a_lost_create_is_lost_with_it() -> None:
    """A rename whose source was never durably created never brings the target into being."""
    ops = [
        Op("open", 1, 3, "/r/tmp", flags=O_CREAT_WRONLY, created=True),
        Op("rename", 1, -1, "/r/tmp", target=FILE),
    ]
    model = Model(ROOT)
    for op in ops:
        model.apply(op)
    for seed in range(20):
        state = model.sample(2, random.Random(seed))
        assert not ("/r/tmp" in state.files and FILE in state.files)


def test_crash_points_include_both_sides_of_every_fsync() -> None:
    """Crash points hold the index before each fsync began and after each one returned."""
    ops = _log([b"a", b"b"], 1)
    points = crash_points(ops, random.Random(0), between=0)
    begins = [index for index, op in enumerate(ops) if op.kind == "sync_begin"]
    ends = [index + 1 for index, op in enumerate(ops) if op.kind == "sync_end"]
    assert set(begins) | set(ends) <= set(points)
