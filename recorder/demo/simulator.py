"""A simulated MeshSync: realistic cluster churn in the exact wire format, deterministic by seed.

Each simulated cluster (its id is its kube-system Namespace uid) holds namespaces and, per app, a
ConfigMap, a Deployment, its ReplicaSet, a Service and pods, plus a Secret per namespace. The
stream starts with the initial list (ADDED), then churns: MODIFIED with a new resourceVersion,
pod restarts (DELETED + ADDED of a new uid), app redeploys, periodic `resync-discovery` requests
followed by an ADDED re-list, and `informer-store` requests followed by dump replies of at most five
objects. With `ghost_rate`, some pod deletions are never published (as while a recorder is down),
which only a re-list can reveal.

Speed: every object is encoded once (via `recorder.manifest.to_meshsync`, so the wire form has
one implementation) and kept as the bytes around its resourceVersion; an event is a concatenation.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from typing import Any, Final, NamedTuple

import orjson

from recorder.demo import sim_objects as k8s
from recorder.journal.record import Message
from recorder.manifest import go_json, to_meshsync
from recorder.meshsync import (
    CORE_SUBJECT,
    INFORMER_STORE,
    REQUEST_SUBJECT,
    RESYNC_DISCOVERY,
    STORE_SUBJECT,
    request_payload,
)

Key = tuple[str, str]
_RV: Final = b'"resourceVersion":"@@RV@@"'
_ENVELOPES: Final = {
    kind: b'{"ObjectType":"meshsync-data","EventType":"' + kind + b'","Request":null,"Object":'
    for kind in (b"ADDED", b"MODIFIED", b"DELETED")
}
_DUMP_HEAD: Final = b'{"ObjectType":"","EventType":"","Request":null,"Object":['
_RESYNC: Final = request_payload(RESYNC_DISCOVERY)
_STORE: Final = request_payload(INFORMER_STORE, STORE_SUBJECT)
SECOND_NS: Final = 1_000_000_000


class SimMessage(NamedTuple):
    """One published message and the simulated time it was received."""

    time_ns: int
    subject: str
    payload: bytes


class _Obj:
    """A live object: its encoded bytes around the resourceVersion, and where it belongs."""

    __slots__ = ("app", "cluster", "head", "index", "rv", "tail", "uid")

    def __init__(self, cluster: _Cluster, uid: str, head: bytes, tail: bytes, app: _App | None):
        self.cluster = cluster
        self.uid = uid
        self.head = head
        self.tail = tail
        self.app = app
        self.rv = b""
        self.index = -1

    def body(self) -> bytes:
        return self.head + self.rv + self.tail


class _Cluster:
    __slots__ = ("id", "version")

    def __init__(self, cluster_id: str, version: int) -> None:
        self.id = cluster_id
        self.version = version


class _App:
    __slots__ = (
        "cluster",
        "name",
        "namespace",
        "objects",
        "pod_hash",
        "pods",
        "rs_name",
        "template",
    )

    def __init__(self, cluster: _Cluster, namespace: str, name: str) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.name = name
        self.objects: list[_Obj] = []
        self.pods: list[_Obj] = []
        self.pod_hash = ""
        self.rs_name = ""
        self.template = b""


def _split(body: bytes) -> tuple[bytes, bytes]:
    head, _, tail = body.partition(_RV)
    return head + b'"resourceVersion":"', b'"' + tail


class Simulator:
    """Deterministic MeshSync traffic for `clusters` clusters; see the module docstring."""

    def __init__(
        self,
        seed: int = 0,
        *,
        clusters: int = 1,
        namespaces: int = 3,
        apps_per_namespace: int = 4,
        pods_per_app: int = 3,
        start_ns: int = 1_741_944_000 * SECOND_NS,
        gap_ns: int = 2_000_000,
        resync_every: int = 20_000,
        store_every: int = 30_000,
        ghost_rate: float = 0.0,
        idle_after_ns: int = 12 * SECOND_NS,
    ) -> None:
        self._rng = random.Random(seed)
        self._now = start_ns
        self._gap = gap_ns
        self._resync_every = resync_every
        self._store_every = store_every
        self._ghost_rate = ghost_rate
        self._idle_after = idle_after_ns
        self._pods_per_app = pods_per_app
        self._objects: list[_Obj] = []
        self._apps: list[_App] = []
        # Queued (kind, object, raw payload); churn runs only once the queue is drained, so an
        # object's resourceVersion cannot change between queueing and emitting.
        self._pending: list[tuple[bytes, _Obj | None, bytes]] = []
        self._emitted: dict[Key, tuple[_Obj, bytes]] = {}  # ground truth: what was published
        self._after_idle = False
        self._since_resync = self._since_store = 0
        self._seq = 0
        self.ghosts: set[Key] = set()
        self._ghosts_open: set[Key] = set()
        self._ghosts_closing: set[Key] = set()
        self._ghosts_pruned: set[Key] = set()
        self.clusters = [
            _Cluster(self._uid(), self._rng.randrange(1000, 90000)) for _ in range(clusters)
        ]
        for cluster in self.clusters:
            self._populate(cluster, namespaces, apps_per_namespace)

    # -- building objects ------------------------------------------------------------------

    def _uid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _created(self) -> str:
        return k8s.rfc3339(self._now - self._rng.randrange(3600, 30 * 86400) * SECOND_NS)

    def _add(self, cluster: _Cluster, manifest: dict[str, Any], app: _App | None) -> _Obj:
        manifest["metadata"]["resourceVersion"] = "@@RV@@"
        obj = to_meshsync(manifest)
        obj["cluster_id"] = cluster.id
        head, tail = _split(go_json(obj))
        return self._track(_Obj(cluster, manifest["metadata"]["uid"], head, tail, app))

    def _track(self, obj: _Obj) -> _Obj:
        obj.rv = self._next_rv(obj.cluster)
        obj.index = len(self._objects)
        self._objects.append(obj)
        if obj.app is not None:
            obj.app.objects.append(obj)
        self._pending.append((b"ADDED", obj, b""))
        return obj

    def _next_rv(self, cluster: _Cluster) -> bytes:
        cluster.version += self._rng.randrange(1, 8)
        return str(cluster.version).encode()

    def _populate(self, cluster: _Cluster, namespaces: int, apps: int) -> None:
        self._add(cluster, k8s.namespace("kube-system", cluster.id, self._created()), None)
        for n in range(namespaces):
            ns = f"team-{n:03d}"
            self._add(cluster, k8s.namespace(ns, self._uid(), self._created()), None)
            self._add(
                cluster,
                k8s.secret(ns, "db-credentials", self._uid(), self._created(), self._rng),
                None,
            )
            for a in range(apps):
                self._deploy(_App(cluster, ns, f"svc-{a:03d}"))

    def _deploy(self, app: _App) -> None:
        cluster, ns, name, rng = app.cluster, app.namespace, app.name, self._rng
        image = rng.choice(k8s.IMAGES)
        replicas = self._pods_per_app
        created = self._created()
        dep_uid, rs_uid = self._uid(), self._uid()
        app.pod_hash = k8s.suffix(rng, 10)
        app.rs_name = f"{name}-{app.pod_hash}"
        self._apps.append(app)
        self._add(cluster, k8s.configmap(ns, f"{name}-config", self._uid(), created), app)
        self._add(cluster, k8s.deployment(ns, name, dep_uid, replicas, image, created), app)
        rs = k8s.replicaset(
            ns, name, app.rs_name, rs_uid, app.pod_hash, dep_uid, replicas, image, created
        )
        self._add(cluster, rs, app)
        ip = f"10.96.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        self._add(cluster, k8s.service(ns, name, self._uid(), ip, created), app)
        node = rng.choice(k8s.NODES)
        pod = k8s.pod(
            ns,
            name,
            app.rs_name,
            rs_uid,
            app.pod_hash,
            "@@NAME@@",
            "@@UID@@",
            "@@IP@@",
            node,
            image,
            "@@TS@@",
        )
        pod["metadata"]["resourceVersion"] = "@@RV@@"
        obj = to_meshsync(pod)
        obj["cluster_id"] = cluster.id
        app.template = go_json(obj)
        for _ in range(replicas):
            self._new_pod(app)

    def _new_pod(self, app: _App) -> _Obj:
        rng, uid = self._rng, self._uid()
        body = (
            app.template.replace(b"@@NAME@@", f"{app.rs_name}-{k8s.suffix(rng, 5)}".encode())
            .replace(b"@@UID@@", uid.encode())
            .replace(b"@@IP@@", f"10.244.{rng.randrange(256)}.{rng.randrange(1, 255)}".encode())
            .replace(b"@@TS@@", k8s.rfc3339(self._now).encode())
        )
        head, tail = _split(body)
        obj = self._track(_Obj(app.cluster, uid, head, tail, app))
        app.pods.append(obj)
        return obj

    def _remove(self, obj: _Obj) -> None:
        last = self._objects.pop()
        if last is not obj:
            last.index = obj.index
            self._objects[obj.index] = last
        if obj.app is not None:
            obj.app.objects.remove(obj)
            if obj in obj.app.pods:
                obj.app.pods.remove(obj)

    # -- emitting --------------------------------------------------------------------------

    def _tick(self) -> int:
        self._now += self._gap // 2 + self._rng.randrange(self._gap)
        if self._after_idle:  # the first record after a re-list's idle gap closes its epoch
            self._after_idle = False
            self._ghosts_pruned |= self._ghosts_closing
            self._ghosts_closing = set()
        return self._now

    def _emit(self, kind: bytes, obj: _Obj | None, raw: bytes) -> SimMessage | None:
        if obj is None:
            if kind == b"IDLE":
                self._now += self._idle_after
                self._after_idle = True
                return None
            subject = REQUEST_SUBJECT if kind == b"REQUEST" else STORE_SUBJECT
            return SimMessage(self._tick(), subject, raw)
        key = (obj.cluster.id, obj.uid)
        if kind == b"DELETED":
            self._emitted.pop(key, None)
        else:
            self._emitted[key] = (obj, obj.rv)
        return SimMessage(self._tick(), CORE_SUBJECT, _ENVELOPES[kind] + obj.body() + b"}")

    def events(self, count: int) -> Iterator[SimMessage]:
        """The next `count` messages: the initial list first, then churn and re-lists."""
        produced = 0
        while produced < count:
            if not self._pending:
                self._churn()
            batch, self._pending = self._pending, []
            for index, (kind, obj, raw) in enumerate(batch):
                if produced >= count:
                    self._pending = batch[index:]
                    return
                message = self._emit(kind, obj, raw)
                if message is not None:
                    produced += 1
                    yield message

    def stream(self, count: int) -> Iterator[tuple[str, bytes]]:
        """The next `count` messages as (subject, payload) pairs."""
        for message in self.events(count):
            yield message.subject, message.payload

    def messages(self, count: int) -> Iterator[Message]:
        """The next `count` messages as journal records with increasing sequence numbers."""
        for time_ns, subject, payload in self.events(count):
            self._seq += 1
            yield Message(self._seq, time_ns, subject, "", None, payload)

    def _churn(self) -> None:
        rng = self._rng
        self._since_resync += 1
        self._since_store += 1
        if self._since_resync >= self._resync_every:
            self._since_resync = 0
            self._relist(store=False)
            return
        if self._since_store >= self._store_every:
            self._since_store = 0
            self._relist(store=True)
            return
        roll = rng.random()
        if roll < 0.80 or not self._apps:
            obj = self._objects[rng.randrange(len(self._objects))]
            obj.rv = self._next_rv(obj.cluster)
            self._pending.append((b"MODIFIED", obj, b""))
        elif roll < 0.997:
            app = rng.choice(self._apps)
            if not app.pods:
                return
            old = app.pods[rng.randrange(len(app.pods))]
            self._remove(old)
            old.rv = self._next_rv(old.cluster)
            if rng.random() < self._ghost_rate:
                key = (old.cluster.id, old.uid)
                self._emitted.pop(key, None)
                self.ghosts.add(key)
                self._ghosts_open.add(key)
            else:
                self._pending.append((b"DELETED", old, b""))
            self._new_pod(app)
        else:
            app = rng.choice(self._apps)
            self._apps.remove(app)
            for obj in list(app.objects):
                self._remove(obj)
                obj.rv = self._next_rv(obj.cluster)
                self._pending.append((b"DELETED", obj, b""))
            self._deploy(_App(app.cluster, app.namespace, app.name))

    def _relist(self, *, store: bool) -> None:
        """A request, then every live object again, then an idle gap that closes the re-list."""
        self._pending.append((b"REQUEST", None, _STORE if store else _RESYNC))
        # MeshSync debounces a resync by 5 s; a dump starts at once.
        self._now += 50_000_000 if store else 5 * SECOND_NS
        if store:
            for cluster in self.clusters:
                objects = [obj for obj in self._objects if obj.cluster is cluster]
                for start in range(0, len(objects), 5):
                    items = b",".join(obj.body() for obj in objects[start : start + 5])
                    self._pending.append((b"DUMP", None, _DUMP_HEAD + items + b"]}"))
        else:
            self._pending.extend((b"ADDED", obj, b"") for obj in self._objects)
        self._ghosts_closing |= self._ghosts_open
        self._ghosts_open = set()
        self._pending.append((b"IDLE", None, b""))

    # -- ground truth ----------------------------------------------------------------------

    def truth(self) -> dict[Key, str]:
        """The live set as (cluster id, uid) -> resourceVersion, as of the last message emitted."""
        return {key: rv.decode() for key, (_, rv) in self._emitted.items()}

    def live_objects(self) -> dict[Key, dict[str, Any]]:
        """The live objects as last published, in MeshSync form, keyed like `truth`."""
        return {
            key: orjson.loads(obj.head + rv + obj.tail) for key, (obj, rv) in self._emitted.items()
        }

    @property
    def cluster_ids(self) -> tuple[str, ...]:
        """The simulated clusters' ids (their kube-system Namespace uids)."""
        return tuple(cluster.id for cluster in self.clusters)

    def unpruned_ghosts(self) -> set[Key]:
        """Silently deleted objects that a ghost-pruning compaction of the stream so far still holds."""
        return self.ghosts - self._ghosts_pruned
