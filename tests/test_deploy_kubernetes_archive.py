"""The Kubernetes archive example: an emptyDir journal that archiving makes durable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from recorder.config import ENV_VARS, load_config
from recorder.units import parse_size

EXAMPLE = Path(__file__).resolve().parents[1] / "deploy" / "kubernetes" / "archive"


def _docs() -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted(EXAMPLE.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc is not None
    ]


def test_the_example_validates_against_the_kubernetes_schemas() -> None:
    validator = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate missing")
    for doc in _docs():
        validator.validate(doc, validator.latest_version(), strict=True)


def test_the_journal_is_an_empty_dir_and_archiving_is_on() -> None:
    """Settings load; the journal volume is an emptyDir bigger than retention keeps."""
    (deployment,) = [doc for doc in _docs() if doc["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e["value"] for e in container["env"] if e["name"].startswith("RECORDER_")}
    assert set(env) <= set(ENV_VARS)
    cfg = load_config(None, env, {})
    assert cfg.archive.url.startswith("s3://")
    assert not any(name.startswith("AWS_SECRET") for name in (e["name"] for e in container["env"]))
    (volume,) = pod["volumes"]
    (mount,) = container["volumeMounts"]
    assert mount["mountPath"] == str(cfg.journal.dir)
    limit = volume["emptyDir"]["sizeLimit"]  # a Kubernetes quantity: Gi, not GiB
    assert parse_size(limit.replace("i", "iB")) > cfg.journal.retention.max_bytes
