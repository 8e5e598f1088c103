"""The restore-test lifecycle end to end: a real ``lazarus run``, a real Velero, real namespaces.

Every test checks that the source ("production") namespace is untouched and that nothing the
test created is left behind.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.integration.conftest import delete_namespace_and_wait
from tests.integration.kube import (
    KWOK_TAINT,
    ON_KWOK,
    create_velero_object,
    unique_name,
    wait_backup_completed,
    wait_until,
    wait_velero_phase,
)
from tests.integration.operator_process import OperatorProcess, start_operator
from tests.integration.restores_created import RestoresCreated
from tests.receivers import HttpReceiver

pytestmark = pytest.mark.integration

GROUP, VERSION, PLURAL = "lazarus.io", "v1alpha1", "lazarusrestoretests"
# Failed tests keep their sandbox this long here (the default is 15 minutes).
FAILURE_RETENTION = 3


def lifecycle_operator(
    identity: str, tmp_path_factory: pytest.TempPathFactory, *flags: str
) -> Iterator[OperatorProcess]:
    """A ready ``lazarus run`` (leader election off: the only replica; short failure retention)."""
    process = start_operator(
        identity, tmp_path_factory.mktemp("operator"), "--no-leader-elect",
        "--failure-retention", str(FAILURE_RETENTION), *flags,
    )  # fmt: skip
    wait_until("operator readiness", lambda: process.get("/readyz").status_code == 200, timeout=60)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def operator(lazarus_crds: list[str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """One operator for the module."""
    yield from lifecycle_operator("lifecycle", tmp_path_factory)


def _snapshot(core: client.CoreV1Api, apps: client.AppsV1Api, namespace: str) -> dict[str, str]:
    objects: list[Any] = [
        *apps.list_namespaced_deployment(namespace).items,
        *core.list_namespaced_config_map(namespace).items,
        *core.list_namespaced_secret(namespace).items,
        *core.list_namespaced_service(namespace).items,
    ]
    return {f"{type(o).__name__}/{o.metadata.name}": o.metadata.resource_version for o in objects}


@pytest.fixture
def production(core: client.CoreV1Api, apps: client.AppsV1Api) -> Iterator[dict[str, Any]]:
    """A 'production' namespace with an application; asserts afterwards that nothing changed."""
    name = unique_name("prod")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    apps.create_namespaced_deployment(name, _deployment("shop"))
    core.create_namespaced_config_map(
        name, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cfg"), data={"a": "b"})
    )
    state: dict[str, Any] = {"namespace": name}
    yield state
    if "before" in state:
        assert _snapshot(core, apps, name) == state["before"], "the source namespace was changed"
    delete_namespace_and_wait(core, name)


def _deployment(name: str, node_selector: dict[str, str] | None = None) -> client.V1Deployment:
    """A one-replica Deployment on the kwok node, which makes its pod Ready (unless ``node_selector``
    adds labels that node does not have)."""
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=1,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    node_selector={**ON_KWOK["nodeSelector"], **(node_selector or {})},
                    tolerations=[KWOK_TAINT],
                    containers=[client.V1Container(name=name, image=f"registry.invalid/{name}:1")],
                ),
            ),
        ),
    )


def _create_stuck_deployment(apps: client.AppsV1Api, namespace: str) -> None:
    """A Deployment whose pods can never be scheduled (no node has the label it selects)."""
    apps.create_namespaced_deployment(namespace, _deployment("stuck", {"lazarus.io/no-such-node": "x"}))


@pytest.fixture
def stuck_backup(
    core: client.CoreV1Api, apps: client.AppsV1Api, custom: client.CustomObjectsApi, production: dict[str, Any]
) -> str:
    """A completed backup of production after adding a Deployment that can never become ready."""
    source = production["namespace"]
    _create_stuck_deployment(apps, source)
    backup = _backup(custom, source)
    wait_backup_completed(custom, backup)
    production["before"] = _snapshot(core, apps, source)
    return backup


def _backup(custom: client.CustomObjectsApi, namespace: str, **spec: Any) -> str:
    name = unique_name("bk")
    create_velero_object(
        custom, "Backup", "backups", name, {"includedNamespaces": [namespace], "ttl": "2h0m0s", **spec}
    )
    return name


def _create_test(custom: client.CustomObjectsApi, namespace: str, backup: str, **spec: Any) -> str:
    name = unique_name("lrt")
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "LazarusRestoreTest",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"backupName": backup, **spec},
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    return name


def _test_of_fresh_backup(
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    apps: client.AppsV1Api,
    production: dict[str, Any],
    namespace: str,
    **spec: Any,
) -> tuple[str, dict[str, Any]]:
    """Back up production (Completed), note its state, run a test of that backup to its end."""
    backup = _backup(custom, production["namespace"])
    wait_backup_completed(custom, backup)
    production["before"] = _snapshot(core, apps, production["namespace"])
    name = _create_test(custom, namespace, backup, **spec)
    return backup, _wait_phase(custom, namespace, name, {"Succeeded", "Failed"})


def _get_test(custom: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        obj: dict[str, Any] = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        return obj
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _wait_phase(custom: client.CustomObjectsApi, namespace: str, name: str, phases: set[str], timeout: float = 120):
    def probe() -> dict[str, Any] | None:
        test = _get_test(custom, namespace, name) or {}
        return test if (test.get("status") or {}).get("phase") in phases else None

    return wait_until(f"test {name} to reach {sorted(phases)}", probe, timeout=timeout)


def _condition(test: dict[str, Any], type_: str) -> str | None:
    return next((c["status"] for c in test["status"].get("conditions", []) if c["type"] == type_), None)


def _gone(core: client.CoreV1Api, namespaces: list[str]) -> bool:
    names = {ns.metadata.name for ns in core.list_namespace().items}
    return not names & set(namespaces)


def _restores_of(custom: client.CustomObjectsApi, uid: str) -> list[dict[str, Any]]:
    listed = custom.list_namespaced_custom_object(
        "velero.io", "v1", "velero", "restores", label_selector=f"lazarus.io/test-uid={uid}"
    )
    return list(listed["items"])


def test_happy_path_restores_verifies_measures_and_cleans_up(
    operator: OperatorProcess,
    core: client.CoreV1Api,
    apps: client.AppsV1Api,
    custom: client.CustomObjectsApi,
    production: dict[str, Any],
    namespace: str,
    restores_created: RestoresCreated,
) -> None:
    source = production["namespace"]
    _, test = _test_of_fresh_backup(custom, core, apps, production, namespace)
    name = test["metadata"]["name"]
    status = test["status"]
    assert status["phase"] == "Succeeded", status
    sandbox = status["namespaceMapping"][source]
    assert sandbox.startswith("lazarus-sbx-") and sandbox != source
    assert status["restore"]["veleroPhase"] == "Completed"
    assert "cluster-scoped resources are not restored (not allowed by the test)" in status["restore"]["safety"]
    assert status["result"]["success"] is True
    assert status["result"]["rto"] > 0 and status["result"]["rpo"] > 0
    assert status["result"]["resourcesRecovered"] > 0
    assert status["workloads"]["expected"] == 1 and status["workloads"]["ready"] == 1
    assert status["parity"]["enforced"] is True and status["parity"]["missing"] == {}
    assert status["parity"]["restored"]["apps/Deployment"] == status["parity"]["expected"]["apps/Deployment"] == 1
    for condition in ("RestoreCompleted", "WorkloadsReady", "HealthChecksCompleted"):
        assert _condition(test, condition) == "True", condition
    assert len(restores_created.of(test["metadata"]["uid"])) == 1

    cleaned = wait_until(
        "cleanup",
        lambda: (t := _get_test(custom, namespace, name)) and _condition(t, "CleanupCompleted") == "True" and t,
    )
    assert cleaned["status"]["phase"] == "Succeeded"
    wait_until("the sandbox namespace to be deleted", lambda: _gone(core, [sandbox]), timeout=120)
    wait_until("the Velero restore to be deleted", lambda: not _restores_of(custom, test["metadata"]["uid"]))
    events = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
    assert {"RestoreCreated", "RestoreCompleted", "WorkloadsReady", "Succeeded"} <= {e.reason for e in events}


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    server = HttpReceiver()
    yield server
    server.close()


def test_a_finished_test_is_reported_once_by_metrics_events_and_its_notifications(
    operator: OperatorProcess,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    production: dict[str, Any],
    receiver: HttpReceiver,
    namespace: str,
) -> None:
    url = receiver.url("/hooks/restore-tests?token=s3cr3t-hook-token")
    core.create_namespaced_secret(
        namespace, client.V1Secret(metadata=client.V1ObjectMeta(name="hooks"), string_data={"url": url})
    )
    backup = _backup(custom, production["namespace"])
    wait_backup_completed(custom, backup)
    webhook = {"webhook": {"urlSecretRef": {"name": "hooks", "key": "url"}}}
    name = _create_test(custom, namespace, backup, notifications={"onSuccess": webhook, "onFailure": webhook})
    test = wait_until(
        "the notifications to be recorded",
        lambda: (t := _get_test(custom, namespace, name)) and "notifications" in t.get("status", {}) and t,
        timeout=120,
    )
    assert test["status"]["phase"] == "Succeeded", test["status"]
    [entry] = test["status"]["notifications"]
    assert (entry["type"], entry["event"], entry["status"], entry["attempts"]) == ("webhook", "onSuccess", "Sent", 1)
    assert "s3cr3t" not in json.dumps(test["status"])
    [request] = receiver.requests
    assert request.path == "/hooks/restore-tests?token=s3cr3t-hook-token"
    assert request.body["test"] == {"namespace": namespace, "name": name}
    assert (request.body["backup"], request.body["success"], request.body["event"]) == (backup, True, "onSuccess")

    metrics = operator.get("/metrics").text
    assert 'lazarus_test_success_total{source="manual"}' in metrics
    events = core.list_namespaced_event("velero", field_selector=f"involvedObject.name={backup}").items
    assert [e.reason for e in events] == ["RestoreTestSucceeded"]
    # Cleanup and later syncs do not report it again.
    wait_until("cleanup", lambda: _condition(_get_test(custom, namespace, name) or {"status": {}}, "CleanupCompleted"))
    assert len(receiver.requests) == 1


def test_missing_backup_fails_without_creating_anything(
    operator: OperatorProcess, core: client.CoreV1Api, custom: client.CustomObjectsApi, namespace: str
) -> None:
    name = _create_test(custom, namespace, "no-such-backup")
    test = _wait_phase(custom, namespace, name, {"Failed"})
    assert test["status"]["reason"] == "BackupNotFound"
    assert "velero/no-such-backup does not exist" in test["status"]["message"]
    assert not test["status"].get("sandboxNamespaces")
    assert not _restores_of(custom, test["metadata"]["uid"])


def test_backup_that_did_not_complete_fails(
    operator: OperatorProcess, custom: client.CustomObjectsApi, production: dict[str, Any], namespace: str
) -> None:
    backup = _backup(custom, production["namespace"], storageLocation="no-such-location")
    assert wait_velero_phase(custom, "backups", backup)["status"]["phase"] == "FailedValidation"
    name = _create_test(custom, namespace, backup)
    test = _wait_phase(custom, namespace, name, {"Failed"})
    assert test["status"]["reason"] == "BackupNotCompleted"
    assert "FailedValidation" in test["status"]["message"]
    assert "no-such-location" in test["status"]["message"]  # Velero's validation error, quoted


def test_workloads_that_never_become_ready_fail_the_test_and_are_cleaned_up(
    operator: OperatorProcess,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    production: dict[str, Any],
    stuck_backup: str,
    namespace: str,
) -> None:
    source = production["namespace"]
    name = _create_test(custom, namespace, stuck_backup, workloads={"readyTimeout": "5s"})
    test = _wait_phase(custom, namespace, name, {"Succeeded", "Failed"})
    assert test["status"]["phase"] == "Failed", json.dumps(test["status"], indent=1)
    assert test["status"]["reason"] == "WorkloadsNotReady"
    sandbox = test["status"]["namespaceMapping"][source]
    assert f"Deployment {sandbox}/stuck" in test["status"]["message"]
    assert f"Deployment {sandbox}/shop" not in test["status"]["message"]
    assert _condition(test, "WorkloadsReady") == "False"
    diagnostics = "\n".join(test["status"]["diagnostics"])
    assert f"{sandbox}: Pod stuck-" in diagnostics and "Unschedulable" in diagnostics, diagnostics
    # Kept for debugging for FAILURE_RETENTION seconds, then removed.
    wait_until(
        "the failed test's sandbox to be removed", lambda: _gone(core, [sandbox]), timeout=FAILURE_RETENTION + 90
    )


def test_deleting_a_test_mid_run_cleans_everything_up(
    operator: OperatorProcess,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    production: dict[str, Any],
    stuck_backup: str,
    namespace: str,
) -> None:
    source = production["namespace"]
    name = _create_test(custom, namespace, stuck_backup)  # waits 10 minutes for the workload by default
    test = _wait_phase(custom, namespace, name, {"Verifying"})
    sandbox = test["status"]["namespaceMapping"][source]
    uid = test["metadata"]["uid"]

    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    wait_until(
        "the test to be gone (finalizer released)", lambda: _get_test(custom, namespace, name) is None, timeout=120
    )
    assert _gone(core, [sandbox]) or core.read_namespace(sandbox).metadata.deletion_timestamp
    wait_until("the sandbox to be deleted", lambda: _gone(core, [sandbox]), timeout=120)
    assert not _restores_of(custom, uid)


REFUSED_LABEL = "lazarus-test/refused"


def _refused_config_map(name: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels={REFUSED_LABEL: "true"}))


@pytest.fixture
def refusing_admission_policy(
    api_client: client.ApiClient, core: client.CoreV1Api, production: dict[str, Any]
) -> Iterator[str]:
    """Production holds the ConfigMap ``pinned``, and from then on a ValidatingAdmissionPolicy
    refuses to create ConfigMaps labelled like it: a cluster whose policies reject some restored
    objects (Velero then ends ``PartiallyFailed``). Removes the policy afterwards."""
    core.create_namespaced_config_map(production["namespace"], _refused_config_map("pinned"))
    name = unique_name("refuse")
    admission = client.AdmissionregistrationV1Api(api_client)
    rules = [client.V1NamedRuleWithOperations(api_groups=[""], api_versions=["v1"], operations=["CREATE"],
                                              resources=["configmaps"])]  # fmt: skip
    admission.create_validating_admission_policy(
        client.V1ValidatingAdmissionPolicy(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1ValidatingAdmissionPolicySpec(
                failure_policy="Fail",
                match_constraints=client.V1MatchResources(
                    resource_rules=rules,
                    object_selector=client.V1LabelSelector(match_labels={REFUSED_LABEL: "true"}),
                ),
                validations=[client.V1Validation(expression="false", message="refused by the cluster's policy")],
            ),
        )
    )
    admission.create_validating_admission_policy_binding(
        client.V1ValidatingAdmissionPolicyBinding(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1ValidatingAdmissionPolicyBindingSpec(policy_name=name, validation_actions=["Deny"]),
        )
    )

    def enforced() -> bool:  # the API server loads policies asynchronously
        try:
            core.create_namespaced_config_map(production["namespace"], _refused_config_map("probe"), dry_run="All")
        except client.ApiException as exc:
            return exc.status in (403, 422)
        return False

    wait_until("the admission policy to be enforced", enforced)
    yield name
    admission.delete_validating_admission_policy_binding(name)
    admission.delete_validating_admission_policy(name)


def test_a_partially_failed_restore_fails_the_test_with_velero_s_errors(
    operator: OperatorProcess,
    core: client.CoreV1Api,
    apps: client.AppsV1Api,
    custom: client.CustomObjectsApi,
    production: dict[str, Any],
    refusing_admission_policy: str,
    namespace: str,
) -> None:
    source = production["namespace"]
    _, test = _test_of_fresh_backup(custom, core, apps, production, namespace)
    status = test["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "RestorePartiallyFailed"), status
    assert status["restore"]["veleroPhase"] == "PartiallyFailed" and status["restore"]["errors"] >= 1
    refused = [m for m in status["restore"]["errorMessages"] if "pinned" in m]
    assert refused and "refused by the cluster's policy" in refused[0], status["restore"]["errorMessages"]
    assert "refused by the cluster's policy" in status["message"]
    assert _condition(test, "RestoreCompleted") == "False"
    sandbox = status["namespaceMapping"][source]
    wait_until("the sandbox to be removed", lambda: _gone(core, [sandbox]), timeout=FAILURE_RETENTION + 120)


def test_cluster_scoped_objects_the_restore_created_are_deleted_and_existing_ones_kept(
    operator: OperatorProcess,
    cluster_resources_grant: None,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    api_client: client.ApiClient,
    production: dict[str, Any],
    namespace: str,
) -> None:
    rbac = client.RbacAuthorizationV1Api(api_client)
    lost, kept = unique_name("lost-role"), unique_name("kept-role")
    for role in (lost, kept):
        rbac.create_cluster_role(client.V1ClusterRole(metadata=client.V1ObjectMeta(name=role)))
    try:
        backup = _backup(custom, production["namespace"], includedClusterScopedResources=["clusterroles"])
        wait_backup_completed(custom, backup)
        rbac.delete_cluster_role(lost)  # lost after the backup: the restore brings it back

        name = _create_test(custom, namespace, backup, restore={"includeClusterResources": True},
                            cleanup={"enabled": False})  # fmt: skip
        test = _wait_phase(custom, namespace, name, {"Succeeded", "Failed"})
        assert test["status"]["phase"] == "Succeeded", test["status"]
        restore_name = test["status"]["restore"]["restoreName"]
        assert any("persistent volumes are not restored" in r for r in test["status"]["restore"]["safety"])
        assert rbac.read_cluster_role(lost).metadata.labels["velero.io/restore-name"] == restore_name
        assert "velero.io/restore-name" not in (rbac.read_cluster_role(kept).metadata.labels or {})

        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        wait_until("the test to be cleaned up and gone", lambda: _get_test(custom, namespace, name) is None,
                   timeout=120)  # fmt: skip
        wait_until("the restored ClusterRole to be deleted",
                   lambda: lost not in {r.metadata.name for r in rbac.list_cluster_role().items})  # fmt: skip
        assert rbac.read_cluster_role(kept).metadata.name == kept  # production's own object stays
    finally:
        for role in (lost, kept):
            try:
                rbac.delete_cluster_role(role)
            except client.ApiException as exc:
                if exc.status != 404:
                    raise


def test_side_effects_are_neutralised(
    operator: OperatorProcess,
    core: client.CoreV1Api,
    apps: client.AppsV1Api,
    batch: client.BatchV1Api,
    custom: client.CustomObjectsApi,
    api_client: client.ApiClient,
    production: dict[str, Any],
    namespace: str,
) -> None:
    source = production["namespace"]
    batch.create_namespaced_cron_job(
        source,
        client.V1CronJob(
            metadata=client.V1ObjectMeta(name="mailer"),
            spec=client.V1CronJobSpec(
                schedule="* * * * *",
                job_template=client.V1JobTemplateSpec(
                    spec=client.V1JobSpec(
                        template=client.V1PodTemplateSpec(
                            spec=client.V1PodSpec(
                                restart_policy="Never",
                                node_selector=ON_KWOK["nodeSelector"],
                                tolerations=[KWOK_TAINT],
                                containers=[client.V1Container(name="m", image="registry.invalid/m:1")],
                            )
                        )
                    )
                ),
            ),
        ),
    )
    core.create_namespaced_service(
        source,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="public"),
            spec=client.V1ServiceSpec(
                type="LoadBalancer", selector={"app": "shop"}, ports=[client.V1ServicePort(port=443)]
            ),
        ),
    )
    client.NetworkingV1Api(api_client).create_namespaced_ingress(
        source,
        client.V1Ingress(
            metadata=client.V1ObjectMeta(name="www"),
            spec=client.V1IngressSpec(
                rules=[
                    client.V1IngressRule(
                        host="shop.example.com",
                        http=client.V1HTTPIngressRuleValue(
                            paths=[
                                client.V1HTTPIngressPath(
                                    path="/",
                                    path_type="Prefix",
                                    backend=client.V1IngressBackend(
                                        service=client.V1IngressServiceBackend(
                                            name="public", port=client.V1ServiceBackendPort(number=443)
                                        )
                                    ),
                                )
                            ]
                        ),
                    )
                ]
            ),
        ),
    )
    backup = _backup(custom, source)
    wait_backup_completed(custom, backup)
    production["before"] = _snapshot(core, apps, source)

    name = _create_test(custom, namespace, backup, cleanup={"enabled": False})
    test = _wait_phase(custom, namespace, name, {"Succeeded", "Failed"})
    assert test["status"]["phase"] == "Succeeded", test["status"]
    sandbox = test["status"]["namespaceMapping"][source]
    assert batch.read_namespaced_cron_job("mailer", sandbox).spec.suspend is True
    assert core.read_namespaced_service("public", sandbox).spec.type == "ClusterIP"
    assert not client.NetworkingV1Api(api_client).list_namespaced_ingress(sandbox).items
    policies = client.NetworkingV1Api(api_client).list_namespaced_network_policy(sandbox).items
    assert [p.metadata.name for p in policies] == ["lazarus-sandbox-isolation"]
    # Production still has its Ingress and LoadBalancer.
    assert core.read_namespaced_service("public", source).spec.type == "LoadBalancer"
    assert batch.read_namespaced_cron_job("mailer", source).spec.suspend in (None, False)

    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    wait_until("the sandbox to be deleted with the test", lambda: _gone(core, [sandbox]), timeout=120)


def test_orphaned_sandboxes_are_removed_but_a_mislabelled_namespace_is_not(
    operator: OperatorProcess, core: client.CoreV1Api, namespace: str
) -> None:
    from lazarus.controllers.restoretest.sandboxkey import SandboxKey
    from lazarus.kube.client import Rest
    from lazarus.sandbox import namespace_body, sandbox_name, sandbox_proof

    key = SandboxKey(Rest(core.api_client), "lazarus-system").value()  # made by the operator (or here, if first)
    ghost = {"metadata": {"name": "ghost", "namespace": namespace, "uid": "0000-gone"}, "spec": {"backupName": "b"}}
    orphan_name = sandbox_name("lazarus-sbx-", "0000-gone", "shop")
    orphan = namespace_body(ghost, orphan_name, "shop", {}, sandbox_proof(key, "0000-gone", orphan_name))
    mislabelled = namespace_body(ghost, unique_name("precious"), "shop", {}, "")  # the label without a proof
    for body in (orphan, mislabelled):
        core.create_namespace(body)
    try:
        wait_until("the orphaned sandbox to be deleted", lambda: _gone(core, [orphan["metadata"]["name"]]), timeout=90)
        assert core.read_namespace(mislabelled["metadata"]["name"]).metadata.deletion_timestamp is None
    finally:
        delete_namespace_and_wait(core, mislabelled["metadata"]["name"])
