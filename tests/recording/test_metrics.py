"""The /metrics exposition: one sample per series."""

from __future__ import annotations

from recorder.recording.metrics import Metrics


def test_each_drop_reason_is_one_series_even_once_counted() -> None:
    """A reason with drops is rendered once, beside the known reasons at 0 and any other one."""
    metrics = Metrics()
    metrics.dropped.update({"queue_full": 3, "disk_full": 1})
    prefix = "meshsync_recorder_messages_dropped_total{"
    samples = [line for line in metrics.render().splitlines() if line.startswith(prefix)]
    assert samples == [
        f'{prefix}reason="queue_full"}} 3',
        f'{prefix}reason="write_error"}} 0',
        f'{prefix}reason="slow_consumer"}} 0',
        f'{prefix}reason="disk_full"}} 1',
    ]
