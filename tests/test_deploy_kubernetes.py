"""The Kubernetes example matches the daemon (settings, probes, port) and the image (uid)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from recorder.config import ENV_VARS, Config, load_config
from recorder.recording.daemon import DRAIN_TIMEOUT_S
from recorder.recording.http import HealthServer
from recorder.recording.metrics import Metrics

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "deploy" / "kubernetes"

Doc = dict[str, Any]


@pytest.fixture(scope="module")
def docs() -> list[Doc]:
    found = [
        doc
        for path in sorted(MANIFESTS.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc is not None
    ]
    assert found, f"no manifests in {MANIFESTS}"
    return found


def one(docs: list[Doc], kind: str) -> Doc:
    matches = [d for d in docs if d["kind"] == kind]
    assert len(matches) == 1, f"expected one {kind}, found {len(matches)}"
    return matches[0]


@pytest.fixture(scope="module")
def deployment(docs: list[Doc]) -> Doc:
    return one(docs, "Deployment")


@pytest.fixture(scope="module")
def pod(deployment: Doc) -> Doc:
    return dict(deployment["spec"]["template"]["spec"])


@pytest.fixture(scope="module")
def container(pod: Doc) -> Doc:
    (recorder,) = [c for c in pod["containers"] if c["name"] == "recorder"]
    return dict(recorder)


@pytest.fixture(scope="module")
def cfg(container: Doc) -> Config:
    env = {e["name"]: e["value"] for e in container["env"]}
    assert set(env) <= set(ENV_VARS), set(env) - set(ENV_VARS)
    return load_config(None, env, {})


def container_port(container: Doc, port: int | str) -> int:
    """A probe's or Service's port, by number or by the container port's name."""
    if isinstance(port, int):
        return port
    (named,) = [p["containerPort"] for p in container["ports"] if p.get("name") == port]
    return int(named)


def test_every_object_is_named_in_the_meshery_namespace(docs: list[Doc]) -> None:
    """Each document has apiVersion, kind and a name, and lives next to MeshSync in `meshery`."""
    for doc in docs:
        assert doc["apiVersion"] and doc["kind"]
        assert doc["metadata"]["name"]
        assert doc["metadata"]["namespace"] == "meshery", doc["metadata"]["name"]
    assert {d["kind"] for d in docs} == {"PersistentVolumeClaim", "Deployment", "Service"}


def test_objects_validate_against_the_kubernetes_schemas(docs: list[Doc]) -> None:
    """Strict OpenAPI validation: no unknown or misspelled field (pip install kubernetes-validate)."""
    validator = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate missing")
    for doc in docs:
        validator.validate(doc, validator.latest_version(), strict=True)


def test_environment_points_the_recorder_at_meshery_nats(cfg: Config) -> None:
    """The RECORDER_* variables are real settings that load: Meshery's broker, probe-able listener."""
    assert cfg.nats.urls == ("nats://meshery-nats.meshery:4222",)
    assert cfg.http.listen == "0.0.0.0:9464", "the kubelet probes from outside the container"
    assert cfg.log.format == "json"


def test_probes_ask_the_daemons_paths_on_its_port(
    container: Doc, cfg: Config, docs: list[Doc]
) -> None:
    """Liveness asks /healthz and readiness /readyz, on the port the daemon listens on."""
    assert cfg.http.address is not None
    port = cfg.http.address[1]
    server = HealthServer(Metrics(), "127.0.0.1", 0)
    for probe, path in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")]:
        get = container[probe]["httpGet"]
        assert get["path"] == path
        assert container_port(container, get["port"]) == port
        assert server.respond("GET", path)[0] != 404
    service = one(docs, "Service")
    assert [container_port(container, p["targetPort"]) for p in service["spec"]["ports"]] == [port]


def test_service_selects_the_recorder_pods(deployment: Doc, docs: list[Doc]) -> None:
    """The Deployment's selector and the Service's both match the pod template's labels."""
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for selector in (
        deployment["spec"]["selector"]["matchLabels"],
        one(docs, "Service")["spec"]["selector"],
    ):
        assert selector.items() <= labels.items()


def test_journal_is_the_persistent_volume(
    deployment: Doc, pod: Doc, container: Doc, cfg: Config, docs: list[Doc]
) -> None:
    """The claim is mounted at the journal directory; one pod at a time ever writes to it."""
    claim = one(docs, "PersistentVolumeClaim")
    (mount,) = [m for m in container["volumeMounts"] if Path(m["mountPath"]) == cfg.journal.dir]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert not mount.get("readOnly")
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    # Retention keeps sealed segments, the active one and the free-space floor inside the claim.
    journal = cfg.journal
    assert journal.retention.max_bytes > 0
    needed = journal.retention.max_bytes + journal.segment_max_bytes + journal.min_free_bytes
    assert needed <= _bytes(claim["spec"]["resources"]["requests"]["storage"])
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"


def _dockerfile_user() -> tuple[int, int]:
    users = re.findall(r"^USER\s+(\d+):(\d+)\s*$", (ROOT / "Dockerfile").read_text(), re.M)
    assert users, "the Dockerfile has no numeric USER uid:gid"
    uid, gid = users[-1]
    return int(uid), int(gid)


def test_security_context_is_the_images_non_root_user(pod: Doc, container: Doc) -> None:
    """The pod runs as the Dockerfile's uid/gid, owns the volume via fsGroup, and drops all."""
    uid, gid = _dockerfile_user()
    pod_context = pod["securityContext"]
    assert pod_context["runAsUser"] == uid
    assert pod_context["runAsGroup"] == gid
    assert pod_context["fsGroup"] == gid
    assert pod_context["runAsNonRoot"] is True
    assert pod_context["seccompProfile"] == {"type": "RuntimeDefault"}
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"]["drop"] == ["ALL"]
    assert pod["automountServiceAccountToken"] is False


def test_image_runs_the_daemon_with_time_to_stop(pod: Doc, container: Doc) -> None:
    """The container runs `recorder run` and gets at least 20 s to drain, flush and seal."""
    assert container["image"].startswith("meshsync-recorder:")
    assert container["args"] == ["run"]
    assert pod["terminationGracePeriodSeconds"] >= max(20, DRAIN_TIMEOUT_S + 15)


_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def _bytes(quantity: str) -> int:
    match = re.fullmatch(r"(\d+)(Ki|Mi|Gi)", quantity)
    assert match, f"{quantity}: write memory and storage in Ki, Mi or Gi"
    return int(match.group(1)) * _UNITS[match.group(2)]


def test_resources_are_bounded_and_bursts_fit_the_memory_limit(container: Doc, cfg: Config) -> None:
    """Requests and limits are set, and the intake's burst buffer is at most half the limit."""
    resources = container["resources"]
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[bound]), bound
    limit = _bytes(resources["limits"]["memory"])
    assert _bytes(resources["requests"]["memory"]) <= limit
    assert cfg.queue_max_bytes <= limit // 2


PROMETHEUS_OPERATOR = MANIFESTS / "prometheus-operator"


def test_scraped_service_keeps_pods_that_are_not_ready(
    docs: list[Doc], container: Doc, cfg: Config
) -> None:
    """The Service keeps not-ready pods as endpoints, and its annotations name /metrics on the port."""
    service = one(docs, "Service")
    assert service["spec"]["publishNotReadyAddresses"] is True
    annotations = service["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert cfg.http.address is not None
    assert int(annotations["prometheus.io/port"]) == cfg.http.address[1]
    assert container_port(container, "http") == cfg.http.address[1]
    assert annotations["prometheus.io/scheme"] == "http"
    path = annotations["prometheus.io/path"]
    assert HealthServer(Metrics(), "127.0.0.1", 0).respond("GET", path)[0] == 200


def test_pod_monitor_example_scrapes_the_recorder_pods(deployment: Doc, container: Doc) -> None:
    """The PodMonitor selects the pod template's labels and scrapes /metrics on the named port.

    It sits in a directory of its own: `kubectl apply -f deploy/kubernetes/` must work on a
    cluster without the Prometheus Operator's CRDs.
    """
    (monitor,) = [
        doc
        for path in sorted(PROMETHEUS_OPERATOR.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc is not None
    ]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["kind"] == "PodMonitor"
    assert monitor["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert container_port(container, endpoint["port"])  # a named port of the container
    assert endpoint["path"] == "/metrics"
    assert HealthServer(Metrics(), "127.0.0.1", 0).respond("GET", endpoint["path"])[0] == 200
