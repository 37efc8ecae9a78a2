"""Realistic Kubernetes manifests for the MeshSync simulator, one builder per kind.

Each builder returns a manifest (the form `recorder.manifest.to_meshsync` takes) whose size is
close to what WIRE.md measured for that kind; the values are invented but shaped like a real
cluster's (kind-style nodes, kubectl annotations, projected service-account volumes).
"""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime
from typing import Any, Final

import orjson

NODES: Final = ("kind-control-plane", "kind-worker", "kind-worker2", "kind-worker3")
IMAGES: Final = (
    "nginx:1.27",
    "redis:7.2",
    "ghcr.io/acme/shop-api:2.14.1",
    "envoyproxy/envoy:v1.30",
)
_ALPHABET: Final = "bcdfghjklmnpqrstvwxz2456789"


def rfc3339(time_ns: int) -> str:
    """Kubernetes' timestamp format, to the second."""
    return datetime.fromtimestamp(time_ns // 1_000_000_000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def suffix(rng: random.Random, length: int) -> str:
    """A name suffix drawn like Kubernetes' generated names."""
    return "".join(rng.choice(_ALPHABET) for _ in range(length))


def _owner(kind: str, api_version: str, name: str, uid: str) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": api_version,
            "blockOwnerDeletion": True,
            "controller": True,
            "kind": kind,
            "name": name,
            "uid": uid,
        }
    ]


def _last_applied(manifest: dict[str, Any]) -> str:
    return orjson.dumps(manifest, option=orjson.OPT_SORT_KEYS).decode() + "\n"


def namespace(name: str, uid: str, created: str) -> dict[str, Any]:
    """A Namespace (kube-system's uid is the cluster id)."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "uid": uid,
            "creationTimestamp": created,
            "labels": {"kubernetes.io/metadata.name": name},
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def container(app: str, image: str, index: int) -> dict[str, Any]:
    """One application container with env, probes and resources."""
    probe = {
        "failureThreshold": 3,
        "httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
        "periodSeconds": 10,
        "successThreshold": 1,
        "timeoutSeconds": 1,
    }
    return {
        "env": [
            {"name": "APP_NAME", "value": app},
            {"name": "LOG_LEVEL", "value": "info"},
            {"name": "FEATURES", "value": "search&cart<beta>"},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        ],
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "livenessProbe": probe,
        "name": app if index == 0 else f"{app}-sidecar",
        "ports": [{"containerPort": 8080 + index, "name": "http", "protocol": "TCP"}],
        "readinessProbe": probe,
        "resources": {
            "limits": {"cpu": "500m", "memory": "256Mi"},
            "requests": {"cpu": "100m", "memory": "128Mi"},
        },
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "volumeMounts": [
            {"mountPath": "/etc/app", "name": "config"},
            {
                "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                "name": "kube-api-access",
                "readOnly": True,
            },
        ],
    }


def pod_spec(app: str, image: str, node: str) -> dict[str, Any]:
    """A pod spec like the ones a Deployment stamps out."""
    return {
        "containers": [container(app, image, 0)],
        "dnsPolicy": "ClusterFirst",
        "enableServiceLinks": True,
        "nodeName": node,
        "preemptionPolicy": "PreemptLowerPriority",
        "priority": 0,
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "securityContext": {},
        "serviceAccount": "default",
        "serviceAccountName": "default",
        "terminationGracePeriodSeconds": 30,
        "tolerations": [
            {
                "effect": "NoExecute",
                "key": f"node.kubernetes.io/{taint}",
                "operator": "Exists",
                "tolerationSeconds": 300,
            }
            for taint in ("not-ready", "unreachable")
        ],
        "volumes": [
            {"configMap": {"defaultMode": 420, "name": f"{app}-config"}, "name": "config"},
            {
                "name": "kube-api-access",
                "projected": {
                    "defaultMode": 420,
                    "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {
                            "configMap": {
                                "items": [{"key": "ca.crt", "path": "ca.crt"}],
                                "name": "kube-root-ca.crt",
                            }
                        },
                    ],
                },
            },
        ],
    }


def pod(
    ns: str,
    app: str,
    rs_name: str,
    rs_uid: str,
    pod_hash: str,
    name: str,
    uid: str,
    ip: str,
    node: str,
    image: str,
    created: str,
) -> dict[str, Any]:
    """A running Pod owned by a ReplicaSet."""
    conditions = [
        {"lastProbeTime": None, "lastTransitionTime": created, "status": "True", "type": kind}
        for kind in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady")
    ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "generateName": f"{rs_name}-",
            "namespace": ns,
            "uid": uid,
            "creationTimestamp": created,
            "labels": {"app": app, "pod-template-hash": pod_hash},
            "ownerReferences": _owner("ReplicaSet", "apps/v1", rs_name, rs_uid),
        },
        "spec": pod_spec(app, image, node),
        "status": {
            "conditions": conditions,
            "containerStatuses": [
                {
                    "containerID": f"containerd://{uid.replace('-', '')}",
                    "image": f"docker.io/library/{image}",
                    "imageID": f"docker.io/library/{image}@sha256:{pod_hash}9c2a7e1f",
                    "lastState": {},
                    "name": app,
                    "ready": True,
                    "restartCount": 0,
                    "started": True,
                    "state": {"running": {"startedAt": created}},
                }
            ],
            "hostIP": "172.18.0.3",
            "hostIPs": [{"ip": "172.18.0.3"}],
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "qosClass": "Burstable",
            "startTime": created,
        },
    }


def _selector_spec(app: str, replicas: int, image: str, pod_hash: str | None) -> dict[str, Any]:
    labels = {"app": app} if pod_hash is None else {"app": app, "pod-template-hash": pod_hash}
    return {
        "replicas": replicas,
        "selector": {"matchLabels": labels},
        "template": {
            "metadata": {"creationTimestamp": None, "labels": labels},
            "spec": {
                key: value for key, value in pod_spec(app, image, "").items() if key != "nodeName"
            },
        },
    }


def deployment(
    ns: str, app: str, uid: str, replicas: int, image: str, created: str
) -> dict[str, Any]:
    """A Deployment applied with kubectl (so it carries last-applied-configuration)."""
    applied = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"annotations": {}, "labels": {"app": app}, "name": app, "namespace": ns},
        "spec": _selector_spec(app, replicas, image, None),
    }
    spec = _selector_spec(app, replicas, image, None)
    spec |= {"progressDeadlineSeconds": 600, "revisionHistoryLimit": 10}
    spec["strategy"] = {
        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
        "type": "RollingUpdate",
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": app,
            "namespace": ns,
            "uid": uid,
            "generation": 1,
            "creationTimestamp": created,
            "labels": {"app": app},
            "annotations": {
                "deployment.kubernetes.io/revision": "1",
                "kubectl.kubernetes.io/last-applied-configuration": _last_applied(applied),
            },
        },
        "spec": spec,
        "status": {
            "availableReplicas": replicas,
            "conditions": [
                {
                    "lastTransitionTime": created,
                    "lastUpdateTime": created,
                    "message": f'ReplicaSet "{app}" has successfully progressed.',
                    "reason": "NewReplicaSetAvailable",
                    "status": "True",
                    "type": "Progressing",
                }
            ],
            "observedGeneration": 1,
            "readyReplicas": replicas,
            "replicas": replicas,
            "updatedReplicas": replicas,
        },
    }


def replicaset(
    ns: str,
    app: str,
    name: str,
    uid: str,
    pod_hash: str,
    dep_uid: str,
    replicas: int,
    image: str,
    created: str,
) -> dict[str, Any]:
    """The ReplicaSet of a Deployment's current revision."""
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": uid,
            "generation": 1,
            "creationTimestamp": created,
            "labels": {"app": app, "pod-template-hash": pod_hash},
            "annotations": {
                "deployment.kubernetes.io/desired-replicas": str(replicas),
                "deployment.kubernetes.io/max-replicas": str(replicas + 1),
                "deployment.kubernetes.io/revision": "1",
            },
            "ownerReferences": _owner("Deployment", "apps/v1", app, dep_uid),
        },
        "spec": _selector_spec(app, replicas, image, pod_hash),
        "status": {
            "availableReplicas": replicas,
            "fullyLabeledReplicas": replicas,
            "observedGeneration": 1,
            "readyReplicas": replicas,
            "replicas": replicas,
        },
    }


def service(ns: str, app: str, uid: str, ip: str, created: str) -> dict[str, Any]:
    """A ClusterIP Service applied with kubectl."""
    applied = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"annotations": {}, "labels": {"app": app}, "name": app, "namespace": ns},
        "spec": {"ports": [{"port": 80, "targetPort": 8080}], "selector": {"app": app}},
    }
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": app,
            "namespace": ns,
            "uid": uid,
            "creationTimestamp": created,
            "labels": {"app": app},
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": _last_applied(applied)
            },
        },
        "spec": {
            "clusterIP": ip,
            "clusterIPs": [ip],
            "internalTrafficPolicy": "Cluster",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}],
            "selector": {"app": app},
            "sessionAffinity": "None",
            "type": "ClusterIP",
        },
        "status": {"loadBalancer": {}},
    }


def configmap(ns: str, name: str, uid: str, created: str) -> dict[str, Any]:
    """A ConfigMap with a small properties file (newlines, quotes and <, >, & to escape)."""
    properties = "".join(f"key{i}=value {i} <b>&amp;</b>\n" for i in range(12))
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "uid": uid, "creationTimestamp": created},
        "data": {"LOG_LEVEL": "info", "app.properties": properties, "motd": 'say "hi"'},
    }


def secret(ns: str, name: str, uid: str, created: str, rng: random.Random) -> dict[str, Any]:
    """An Opaque Secret with base64 values, as MeshSync ships them without redaction."""
    values = {"username": b"admin", "password": rng.randbytes(18), "token": rng.randbytes(48)}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns, "uid": uid, "creationTimestamp": created},
        "data": {key: base64.b64encode(value).decode() for key, value in values.items()},
        "type": "Opaque",
    }
