"""The image and the install agree: what can be checked without a container engine.

The Dockerfile's final stage (USER, ENTRYPOINT, CMD, EXPOSE) against the base Deployment, the
Deployment against the Settings defaults and the hardening the install promises, the RBAC against
the least-privilege rules (no wildcards, Secrets read by name only), and the dependency lock
against the runtime dependencies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

import lazarus
from lazarus.cli import build_parser
from lazarus.settings import Settings
from tests.lockfile import runtime_closure

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "manifests" / "base"


def _final_stage() -> dict[str, str]:
    """Instruction → argument text of the Dockerfile's last stage (the last of each kind)."""
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    starts = [i for i, line in enumerate(lines) if line.startswith("FROM ")]
    stage: dict[str, str] = {}
    for line in lines[starts[-1] :]:
        if line and not line.startswith("#"):
            instruction, _, argument = line.partition(" ")
            stage[instruction] = argument
    return stage


def _docs(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((BASE / name).read_text()) if doc]


def _container() -> tuple[dict[str, Any], dict[str, Any]]:
    (deployment,) = _docs("deployment.yaml")
    pod = deployment["spec"]["template"]["spec"]
    return pod, pod["containers"][0]


def test_deployment_runs_the_image_as_built() -> None:
    stage = _final_stage()
    pod, container = _container()
    user, _, group = stage["USER"].partition(":")
    assert pod["securityContext"]["runAsUser"] == int(user) and pod["securityContext"]["runAsGroup"] == int(group)
    assert "command" not in container  # the image's ENTRYPOINT runs
    assert json.loads(stage["ENTRYPOINT"]) == ["lazarus"]
    assert container["args"] == json.loads(stage["CMD"]) == ["run"]
    assert build_parser().parse_args(container["args"]).command == "run"
    assert "lazarus = lazarus.cli:main" in (ROOT / "setup.cfg").read_text()


def test_ports_and_probes_match_the_settings() -> None:
    stage = _final_stage()
    _, container = _container()
    (port,) = container["ports"]
    assert port["containerPort"] == Settings.metrics_port == int(stage["EXPOSE"])
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    (service,) = _docs("service.yaml")
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]


def test_deployment_is_hardened_and_leader_elected() -> None:
    (deployment,) = _docs("deployment.yaml")
    pod, container = _container()
    assert deployment["spec"]["replicas"] == 2 and Settings.leader_elect is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert {"cpu", "memory"} <= set(container["resources"]["requests"]) & set(container["resources"]["limits"])
    assert pod["serviceAccountName"] == "lazarus"


def test_settings_in_the_configmap_are_settings() -> None:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    (generator,) = kustomization["configMapGenerator"]
    names = {literal.split("=", 1)[0] for literal in generator["literals"]}
    _, container = _container()
    names |= {var["name"] for var in container["env"]}
    assert names <= {f"LAZARUS_{name.upper()}" for name in Settings.__dataclass_fields__}
    assert container["envFrom"] == [{"configMapRef": {"name": generator["name"]}}]


def test_no_service_link_variable_can_pass_for_a_setting() -> None:
    """A Service named lazarus-<x> injects LAZARUS_<X>_PORT=tcp://... into pods with service links
    (it broke the first in-cluster start: LAZARUS_METRICS_PORT); the pods have none."""
    pod, _ = _container()
    assert pod["enableServiceLinks"] is False
    (service,) = _docs("service.yaml")
    assert f"LAZARUS_{service['metadata']['name'].removeprefix('lazarus-').upper()}_PORT" in {
        f"LAZARUS_{name.upper()}" for name in Settings.__dataclass_fields__
    }  # the collision this guards against is real


def test_the_testbed_overlay_sets_only_the_image_at_the_package_version() -> None:
    overlay = yaml.safe_load((ROOT / "manifests" / "overlays" / "testbed" / "kustomization.yaml").read_text())
    assert set(overlay) == {"apiVersion", "kind", "resources", "images"} and overlay["resources"] == ["../../base"]
    (image,) = overlay["images"]
    assert image == {"name": "lazarus", "newName": "localhost/lazarus/operator", "newTag": lazarus.__version__}


def test_rbac_has_no_wildcards_and_reads_secrets_by_name_only() -> None:
    """Secrets: get (by name) anywhere; create only in the operator's namespace (the sandbox key)."""
    roles = [
        doc
        for name in ("rbac-cluster.yaml", "rbac-leader-election.yaml", "rbac-velero.yaml", "rbac-baselines.yaml",
                     "rbac-sandbox-key.yaml")
        for doc in _docs(name)
        if doc["kind"] in ("ClusterRole", "Role")
    ]  # fmt: skip
    for role, rule in ((doc, rule) for doc in roles for rule in doc["rules"]):
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], rule
        if "secrets" in rule["resources"]:
            in_operator_namespace = role["kind"] == "Role" and role["metadata"]["namespace"] == "lazarus-system"
            assert rule["verbs"] == ["get"] or (in_operator_namespace and rule["verbs"] == ["create"]), rule
        assert not set(rule["verbs"]) & {"escalate", "bind", "impersonate", "deletecollection"}, rule


def test_lock_pins_exactly_the_runtime_dependencies() -> None:
    lock = ROOT / "manifests" / "image" / "requirements.lock"
    lines = [line for line in lock.read_text().splitlines() if not line.startswith("#")]
    pinned = dict(line.split("==", 1) for line in lines)
    assert set(pinned) == set(runtime_closure()), "requirements.lock is stale: run `make lock`"
