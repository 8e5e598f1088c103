"""The kustomize install against a real API server: every overlay builds and is accepted by a
server-side dry run; the namespace guard holds; a missing permission is reported, not hidden.

That the granted RBAC is enough is proven by the rest of the suite: every test that starts
``lazarus run`` runs it as the install's ServiceAccount (``tests.integration.install``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from lazarus import namespaceguard
from lazarus.kube.client import Rest, new_api_client
from tests.integration.conftest import delete_namespace_and_wait
from tests.integration.install import (
    ROOT,
    SERVICE_ACCOUNT,
    access_objects,
    apply,
    cached_component_dir,
    kubectl,
    kustomize,
    operator_kubeconfig,
    token_kubeconfig,
)
from tests.integration.kube import VELERO_NAMESPACE, unique_name, wait_until
from tests.integration.operator_process import start_operator

pytestmark = pytest.mark.integration

MANIFESTS = ROOT / "manifests"
# Namespaces each kustomization's namespaced objects live in (they must exist for a dry run).
TARGETS = {
    "manifests/base": ["lazarus-system", "velero"],
    "manifests/overlays/example": ["lazarus-system", "velero-system"],
    "manifests/overlays/cluster-resources": ["lazarus-system", "velero"],
    "manifests/overlays/monitoring": ["lazarus-system", "velero"],
    "e2e/kind": ["lazarus-system", "velero"],
}
PROMETHEUS_OPERATOR_CRDS = ("servicemonitors", "prometheusrules")


def _ensure_namespace(core: client.CoreV1Api, name: str) -> bool:
    """Create ``name`` unless it exists; True if this call created it."""
    try:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    except client.ApiException as exc:
        if exc.status != 409:
            raise
        return False
    return True


@pytest.fixture(scope="module")
def prometheus_operator_crds() -> None:
    """The monitoring.coreos.com CRDs the monitoring overlay uses, from e2e/testbed/build.sh's cache."""
    directory = cached_component_dir("prometheus-operator-crds", "PROMETHEUS_OPERATOR_VERSION")
    if not directory.is_dir():
        pytest.fail(f"{directory} is missing: run e2e/testbed/build.sh prometheus-operator-crds")
    for plural in PROMETHEUS_OPERATOR_CRDS:
        kubectl("apply", "--server-side", "-f", str(directory / f"monitoring.coreos.com_{plural}.yaml"))
        kubectl("wait", "--for", "condition=established", "--timeout", "60s", f"crd/{plural}.monitoring.coreos.com")


@pytest.mark.parametrize("kustomization", sorted(TARGETS))
def test_kustomization_builds_and_the_api_server_accepts_it(
    kustomization: str, core: client.CoreV1Api, request: pytest.FixtureRequest
) -> None:
    if kustomization.endswith("monitoring"):
        request.getfixturevalue("prometheus_operator_crds")
    objects = kustomize(ROOT / kustomization)
    created = [ns for ns in TARGETS[kustomization] if _ensure_namespace(core, ns)]
    try:
        namespaces = {o["metadata"].get("namespace") for o in objects} - {None}
        assert namespaces == set(TARGETS[kustomization])
        output = apply(objects, "--dry-run=server").splitlines()
    finally:
        for name in created:
            delete_namespace_and_wait(core, name)
    assert len(output) == len(objects)
    assert all(line.endswith("serverside-applied (server dry run)") for line in output), output
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "ClusterRole", "Role", "ServiceAccount", "CustomResourceDefinition"} <= kinds
    if kustomization.endswith("monitoring"):
        assert {"ServiceMonitor", "PrometheusRule"} <= kinds


def test_example_overlay_moves_the_velero_role_with_the_setting() -> None:
    objects = kustomize(MANIFESTS / "overlays" / "example")
    named = {(o["kind"], o["metadata"]["name"].split("-")[1]): o for o in objects if "-" in o["metadata"]["name"]}
    settings = named["ConfigMap", "settings"]
    velero_roles = [named["Role", "velero"], named["RoleBinding", "velero"]]
    assert settings["data"]["LAZARUS_VELERO_NAMESPACE"] == "velero-system"
    assert [o["metadata"]["namespace"] for o in velero_roles] == ["velero-system", "velero-system"]
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example.com/platform/lazarus:0.1.0"
    assert container["envFrom"][0]["configMapRef"]["name"] == settings["metadata"]["name"]


def test_namespace_guard_limits_the_operator_to_sandbox_namespaces(namespace: str) -> None:
    as_operator = operator_kubeconfig(())  # applies the base's admission policy too
    plain = unique_name("not-a-sandbox")

    def refusal(*args: str) -> str:
        with pytest.raises(AssertionError) as refused:
            kubectl(*args, kubeconfig=as_operator)
        return str(refused.value)

    # The policy takes a moment to be enforced after it is created.
    wait_until("the namespace guard", lambda: "Forbidden" in _try_create(plain, as_operator), timeout=30)
    assert "may only delete sandbox namespaces" in refusal("delete", "namespace", namespace)
    sandbox = unique_name("lazarus-sbx-guard")
    kubectl("create", "-f", "-", kubeconfig=as_operator, stdin=_namespace_yaml(sandbox, sandbox="true"))
    kubectl("delete", "namespace", sandbox, "--wait=false", kubeconfig=as_operator)


@pytest.mark.parametrize(("account", "covered"), [("lazarus", True), ("lazarus-renamed", False)])
def test_the_guard_proof_covers_an_install_in_any_namespace_and_fails_closed_for_a_renamed_account(
    namespace: str, tmp_path: Path, account: str, covered: bool
) -> None:
    """A ServiceAccount ``lazarus`` in another namespace (an overlay's ``namespace:``), with the
    base's cluster-wide RBAC, is under the guard and its proof holds; one of another name is not,
    and the proof says so (the operator then stays unready: tests/unit/test_operator.py)."""
    operator_kubeconfig(())  # the base's admission policy and ClusterRole
    binding = unique_name("lazarus-guard")
    kubectl("create", "serviceaccount", account, "-n", namespace)
    kubectl("create", "clusterrolebinding", binding, "--clusterrole=lazarus", f"--serviceaccount={namespace}:{account}")
    try:
        rest = Rest(new_api_client(str(token_kubeconfig(namespace, account, tmp_path / "kubeconfig"))))
        refused_by_policy = "Lazarus may only create sandbox namespaces"

        def proof() -> namespaceguard.GuardCheck | None:
            # Until the new binding is in effect RBAC refuses too: wait for the policy's answer.
            result = namespaceguard.check(rest)
            return result if (refused_by_policy in result.detail) == covered == result.in_effect else None

        result = wait_until("the guard's proof", proof, timeout=30)
        assert result.applies
        if not covered:
            assert f"system:serviceaccount:{namespace}:{account}" in result.detail
    finally:
        kubectl("delete", "clusterrolebinding", binding)


def _namespace_yaml(name: str, **labels: str) -> str:
    label_lines = "".join(f"\n    lazarus.io/{k}: \"{v}\"" for k, v in labels.items())
    return f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels:{label_lines or ' {}'}\n"


def _try_create(name: str, kubeconfig: str) -> str:
    """Create namespace ``name`` without the sandbox label; the refusal ("" if it was created)."""
    try:
        kubectl("create", "-f", "-", kubeconfig=kubeconfig, stdin=_namespace_yaml(name))
    except AssertionError as exc:
        return str(exc)
    kubectl("delete", "namespace", name, "--wait=false")
    return ""


# ---------------------------------------------------------------------------------------- 403


RESTRICTED = "lazarus-restricted"


@pytest.fixture
def restricted_kubeconfig(tmp_path: Path) -> Iterator[str]:
    """A ServiceAccount with the base's RBAC minus ``create`` on Velero Restores: ``lazarus`` in the
    namespace ``lazarus-restricted``, so the namespace guard covers it (its proof must hold)."""
    namespace, base_namespace = RESTRICTED, SERVICE_ACCOUNT[0]
    objects = []
    for obj in copy.deepcopy(access_objects()):
        kind, metadata = obj["kind"], obj["metadata"]
        if "Role" not in kind or metadata["name"] == "lazarus-leader-election":
            continue
        if kind in ("ClusterRoleBinding", "RoleBinding"):
            obj["subjects"] = [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT[1], "namespace": namespace}]
            if kind == "RoleBinding":
                obj["roleRef"]["name"] = f"{RESTRICTED}-{obj['roleRef']['name']}"
        if kind == "Role":
            for rule in obj["rules"]:
                if rule["resources"] == ["restores"]:
                    rule["verbs"].remove("create")
        # One copy of each (the base has several Roles in a namespace); the ClusterRole is shared.
        metadata["name"] = f"{RESTRICTED}-{metadata['name']}" if kind != "ClusterRole" else metadata["name"]
        objects.append(obj)
    home = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    account = {"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": SERVICE_ACCOUNT[1], "namespace": namespace}}  # fmt: skip
    operator_kubeconfig(())  # the base RBAC (the ClusterRole bound here) and lazarus-system exist
    apply([home, account, *objects])
    yield str(token_kubeconfig(namespace, SERVICE_ACCOUNT[1], tmp_path / "restricted-kubeconfig"))
    for obj in objects:
        if obj["kind"] != "ClusterRole":
            metadata = obj["metadata"]
            kubectl("delete", obj["kind"], metadata["name"], "-n", metadata.get("namespace", base_namespace))
    kubectl("delete", "namespace", namespace)


def test_a_missing_permission_is_reported_on_the_test(
    lazarus_crds: list[str],
    restricted_kubeconfig: str,
    namespace: str,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    tmp_path: Path,
) -> None:
    backup, test = unique_name("rbac-backup"), unique_name("rbac-test")
    now = datetime.now(UTC)
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    custom.create_namespaced_custom_object("velero.io", "v1", VELERO_NAMESPACE, "backups", {
        "apiVersion": "velero.io/v1", "kind": "Backup", "metadata": {"name": backup, "namespace": VELERO_NAMESPACE},
        "spec": {"includedNamespaces": [namespace]},
        "status": {"phase": "Completed", "startTimestamp": (now - timedelta(seconds=5)).strftime(stamp),
                   "completionTimestamp": now.strftime(stamp), "expiration": (now + timedelta(days=1)).strftime(stamp)},
    })  # fmt: skip
    operator = start_operator("restricted", tmp_path, "--no-leader-elect", kubeconfig=restricted_kubeconfig)
    lrt = {"apiVersion": "lazarus.io/v1alpha1", "kind": "LazarusRestoreTest",
           "metadata": {"name": test, "namespace": namespace}, "spec": {"backupName": backup}}  # fmt: skip
    try:
        custom.create_namespaced_custom_object("lazarus.io", "v1alpha1", namespace, "lazarusrestoretests", lrt)

        def forbidden_event() -> Any:
            events = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={test}").items
            return next((e for e in events if e.reason == "Forbidden"), None)

        event = wait_until("a Forbidden event on the test", forbidden_event, timeout=60)
        assert event.type == "Warning"
        for named in ("cannot create", '"restores"', "velero.io", f"system:serviceaccount:{RESTRICTED}:lazarus"):
            assert named in event.message, event.message
        status = custom.get_namespaced_custom_object("lazarus.io", "v1alpha1", namespace, "lazarusrestoretests", test)
        assert (status.get("status") or {}).get("phase") in (None, "", "Pending")  # retried, not failed
        assert "sync forbidden by the API server" in operator.log.read_text()
        # Cleanup still works with the rest of the RBAC: the finalizer is removed, the sandbox deleted.
        custom.delete_namespaced_custom_object("lazarus.io", "v1alpha1", namespace, "lazarusrestoretests", test)
        wait_until("the test to be finalized", lambda: not _exists(custom, namespace, test), timeout=60)
        # The resource-modifier ConfigMap was created just before the refused Restore: it goes too.
        assert not [
            cm
            for cm in core.list_namespaced_config_map(VELERO_NAMESPACE, label_selector="lazarus.io/test-uid").items
            if cm.metadata.labels.get("lazarus.io/test-name") == test
        ]
    finally:
        operator.stop()
        custom.delete_namespaced_custom_object("velero.io", "v1", VELERO_NAMESPACE, "backups", backup)


def _exists(custom: client.CustomObjectsApi, namespace: str, name: str) -> bool:
    try:
        custom.get_namespaced_custom_object("lazarus.io", "v1alpha1", namespace, "lazarusrestoretests", name)
    except client.ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True
