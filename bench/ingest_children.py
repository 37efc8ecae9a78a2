"""The programs ingest.py runs in spawned processes: the paced publisher and the bare subscriber.

Each takes its end of a pipe and the server's URL, sends "ready", then answers commands until
"stop" (see common.Child).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from multiprocessing.connection import Connection
from typing import Any

import nats
from common import SUBJECT

from recorder.config import Config

PAYLOAD_POOL = 64  # distinct payloads cycled through
# The bare client buffers as much as the recorder's intake does by default, so both absorb the
# same burst before they drop.
PENDING_MSGS = Config.queue_max_messages
PENDING_BYTES = Config.queue_max_bytes


# -- payloads -------------------------------------------------------------------------------


def meshsync_payloads(size: int, count: int = PAYLOAD_POOL) -> list[bytes]:
    """Compact JSON like WIRE.md's ADDED Pod envelope, exactly `size` bytes, `count` variants."""
    rng = random.Random(size)
    spec = json.dumps(
        {
            "containers": [{"image": "nginx:1.27", "name": "nginx", "ports": [80]}],
            "dnsPolicy": "ClusterFirst",
            "nodeName": "kind-worker",
            "restartPolicy": "Always",
            "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 30,
        },
        separators=(",", ":"),
        sort_keys=True,
    )
    escaped = json.dumps(spec)[1:-1]  # the attribute is a JSON string holding JSON text
    payloads = []
    for index in range(count):
        suffix = "".join(rng.choices("bcdfghjklmnpqrstvwxz2456789", k=5))
        envelope = {
            "ObjectType": "meshsync-data",
            "EventType": "ADDED",
            "Request": None,
            "Object": {
                "id": "",
                "apiVersion": "v1",
                "kind": "Pod",
                "model": "",
                "metadata": {
                    "id": "",
                    "name": f"nginx-7c5ddbdf54-{suffix}",
                    "generateName": "nginx-7c5ddbdf54-",
                    "namespace": "default",
                    "uid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "resourceVersion": str(48213 + index),
                    "creationTimestamp": "2025-03-14T09:26:51Z",
                    "labels": [
                        {"id": "", "unique_id": "", "kind": "label", "key": "app", "value": "nginx"}
                    ],
                    "cluster_id": "",
                },
                "spec": {"id": "", "attribute": "@FILL@"},
                "cluster_id": "5b1d3c6e-8f2a-4c71-9e0d-3a7b2f4c9d18",
                "pattern_resource": None,
                "component_metadata": None,
            },
        }
        frame = json.dumps(envelope, separators=(",", ":"))
        room = size - (len(frame) - len("@FILL@"))
        if room < 0:  # smaller than an envelope: still `size` bytes, no longer JSON
            payloads.append(frame.encode()[:size])
            continue
        fill = (escaped * (room // len(escaped) + 1))[:room]
        if fill.endswith("\\"):  # never leave a dangling escape before the closing quote
            fill = fill[:-1] + " "
        payload = frame.replace("@FILL@", fill).encode()
        assert len(payload) == size
        payloads.append(payload)
    return payloads


# -- the publisher and the bare subscriber --------------------------------------------------


async def _publish_step(
    nc: Any, payloads: list[bytes], rate: float, seconds: float
) -> dict[str, Any]:
    """Publish rate x seconds messages, each due at start + i/rate; then flush (PING/PONG)."""
    total = max(1, round(rate * seconds))
    publish = nc.publish
    pool = len(payloads)
    clock = time.perf_counter
    sent = 0
    started = clock()
    while sent < total:
        due = min(total, int((clock() - started) * rate) + 1)
        while sent < due:
            await publish(SUBJECT, payloads[sent % pool])
            sent += 1
        # Yield (nats-py's flusher writes now) and sleep until the next message is due.
        await asyncio.sleep(max(0.0, started + sent / rate - clock()))
    published_s = clock() - started
    await nc.flush(timeout=60)
    return {"published": sent, "seconds": published_s, "flushed_s": clock() - started}


async def _publisher(conn: Connection, url: str) -> None:
    nc = await nats.connect(url, name="bench-publisher", pending_size=8 * 1024 * 1024)
    pools: dict[int, list[bytes]] = {}
    conn.send("ready")
    try:
        while True:
            command = await asyncio.to_thread(conn.recv)
            if command == "stop":
                break
            _, size, rate, seconds = command
            payloads = pools.setdefault(size, meshsync_payloads(size))
            conn.send(await _publish_step(nc, payloads, rate, seconds))
    finally:
        await nc.close()


def publisher_main(conn: Connection, url: str) -> None:
    asyncio.run(_publisher(conn, url))


async def _bare(conn: Connection, url: str) -> None:
    state = {"received": 0, "slow": 0, "disconnects": 0}
    stop = asyncio.Event()

    async def on_error(exc: Exception) -> None:
        if isinstance(exc, nats.errors.SlowConsumerError):
            state["slow"] += 1

    async def on_disconnect() -> None:
        state["disconnects"] += 1

    nc = await nats.connect(
        url,
        name="bench-bare",
        error_cb=on_error,
        disconnected_cb=on_disconnect,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.2,
    )
    count = 0

    async def on_message(msg: Any) -> None:
        nonlocal count
        count += 1

    await nc.subscribe(
        SUBJECT,
        cb=on_message,
        pending_msgs_limit=PENDING_MSGS,
        pending_bytes_limit=PENDING_BYTES,
    )
    await nc.flush()

    def on_query() -> None:
        if conn.recv() == "stop":
            stop.set()
        conn.send((count, state["slow"] + state["disconnects"]))

    asyncio.get_running_loop().add_reader(conn.fileno(), on_query)
    conn.send("ready")
    await stop.wait()
    await nc.close()


def bare_main(conn: Connection, url: str) -> None:
    asyncio.run(_bare(conn, url))
