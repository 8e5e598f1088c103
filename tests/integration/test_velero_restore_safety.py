"""lazarus.velero against the real test bed: Velero v1.17 backs up a namespace full of side effects,
Lazarus reads the backup's resource list, restores it with its Restore spec and resource modifiers
into a sandbox, and reads the restore's results.

Proves: the DownloadRequest round trip works for both artefacts; the resource-modifier YAML is
accepted by Velero and does what the rules say (CronJob suspended, LoadBalancer and NodePort
Services turned into ClusterIP even with explicitly set node ports, externalIPs dropped, everything
labelled); the Ingress is not restored; a plain ClusterIP Service is restored unchanged; the source
namespace is untouched; the restore has no errors.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
from kubernetes import client

from lazarus.kube.client import ApiError, Rest
from lazarus.velero.backup_contents import BackupContents, backup_resource_list
from lazarus.velero.downloads import DownloadError, TargetKind, download
from lazarus.velero.resource_modifiers import SANDBOX_LABEL, resource_modifiers_configmap
from lazarus.velero.restore_results import restore_results
from lazarus.velero.restore_spec import restore_body
from tests.integration.kube import (
    ON_KWOK,
    VELERO_NAMESPACE,
    create_velero_object,
    unique_name,
    wait_backup_completed,
    wait_until,
    wait_velero_phase,
)

pytestmark = pytest.mark.integration

APP = {"app": "shop"}
VELERO_API = f"/apis/velero.io/v1/namespaces/{VELERO_NAMESPACE}"
# Everything in the source namespace a restore could conceivably touch, compared by resourceVersion.
# (Pods, Endpoints, EndpointSlices and Events are left out: their controllers update them anyway.)
SNAPSHOT_COLLECTIONS = (
    "/apis/apps/v1/namespaces/{ns}/deployments",
    "/apis/apps/v1/namespaces/{ns}/replicasets",
    "/apis/batch/v1/namespaces/{ns}/cronjobs",
    "/api/v1/namespaces/{ns}/services",
    "/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses",
    "/api/v1/namespaces/{ns}/configmaps",
    "/api/v1/namespaces/{ns}/serviceaccounts",
)
EXPOSURE_FIELDS = {"externalIPs", "externalTrafficPolicy", "healthCheckNodePort", "allocateLoadBalancerNodePorts",
                   "loadBalancerSourceRanges", "loadBalancerClass", "loadBalancerIP"}


@pytest.fixture(scope="module")
def rest(api_client: client.ApiClient) -> Rest:
    return Rest(api_client)


def _create(rest: Rest, path: str, body: dict[str, Any]) -> dict[str, Any]:
    return rest.request("POST", path, body=body)


def _delete(rest: Rest, path: str) -> None:
    try:
        rest.request("DELETE", path)
    except ApiError as exc:
        if not exc.not_found:
            raise


def _gone(rest: Rest, path: str) -> bool:
    try:
        rest.request("GET", path)
    except ApiError as exc:
        return exc.not_found
    return False


def _create_with_node_ports(rest: Rest, namespace: str, body: dict[str, Any], explicit: list[int]) -> dict[str, Any]:
    """Create a Service whose ports at indexes ``explicit`` get node ports chosen here (so they
    are "explicit" to Velero, which keeps them); retry when a port is taken."""
    for _ in range(20):
        ports = [dict(port) for port in body["spec"]["ports"]]
        for index in explicit:
            ports[index]["nodePort"] = random.randint(30000, 32767)
        try:
            return _create(rest, f"/api/v1/namespaces/{namespace}/services",
                           {**body, "spec": {**body["spec"], "ports": ports}})
        except ApiError as exc:
            if exc.status != 422 or "allocated" not in exc.message:
                raise
    raise AssertionError("no free node port found")


def _snapshot(rest: Rest, namespace: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for template in SNAPSHOT_COLLECTIONS:
        path = template.format(ns=namespace)
        for item in rest.request("GET", path)["items"]:
            found[f"{path.rsplit('/', 1)[-1]}/{item['metadata']['name']}"] = item["metadata"]["resourceVersion"]
    return found


def _source_objects(namespace: str) -> list[tuple[str, dict[str, Any]]]:
    meta = {"namespace": namespace, "labels": APP}
    pod_template = {"metadata": {"labels": APP},
                    "spec": {"containers": [{"name": "web", "image": "registry.invalid/shop:1"}], **ON_KWOK}}
    return [
        ("/apis/apps/v1/namespaces/{ns}/deployments", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", **meta},
            "spec": {"replicas": 1, "selector": {"matchLabels": APP}, "template": pod_template}}),
        ("/apis/batch/v1/namespaces/{ns}/cronjobs", {
            "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly", **meta},
            # Once a year, so that the CronJob controller does not touch the source during the test.
            "spec": {"schedule": "0 0 1 1 *", "suspend": False, "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "Never", **ON_KWOK,
                "containers": [{"name": "job", "image": "registry.invalid/job:1"}]}}}}}}),
        ("/api/v1/namespaces/{ns}/services", {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "internal", **meta},
            "spec": {"type": "ClusterIP", "selector": APP,
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}),
        ("/api/v1/namespaces/{ns}/services", {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "pinned", **meta},
            "spec": {"type": "ClusterIP", "selector": APP, "externalIPs": ["192.0.2.10"],
                     "ports": [{"port": 80, "targetPort": 8080}]}}),
        ("/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses", {
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "front", **meta},
            "spec": {"rules": [{"host": "shop.example.com", "http": {"paths": [{
                "path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "internal", "port": {"number": 80}}}}]}}]}}),
        ("/api/v1/namespaces/{ns}/configmaps", {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", **meta},
            "data": {"mode": "production"}}),
    ]


LOAD_BALANCER = {
    "apiVersion": "v1", "kind": "Service", "metadata": {"name": "public", "labels": APP},
    "spec": {"type": "LoadBalancer", "selector": APP, "externalTrafficPolicy": "Local",
             "loadBalancerSourceRanges": ["10.0.0.0/8"],
             "ports": [{"name": "http", "port": 80, "targetPort": 8080},
                       {"name": "https", "port": 443, "targetPort": 8443}]},
}
NODE_PORT = {
    "apiVersion": "v1", "kind": "Service", "metadata": {"name": "debug", "labels": APP},
    "spec": {"type": "NodePort", "selector": APP,
             "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353},
                       {"name": "admin", "port": 9090, "targetPort": 9090}]},
}


@dataclass(frozen=True)
class Restored:
    source: str
    sandbox: str
    backup: str
    restore: dict[str, Any]
    contents: BackupContents
    before: dict[str, str]
    source_services: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def restored(rest: Rest, custom: client.CustomObjectsApi) -> Iterator[Restored]:
    """Build the source namespace, back it up, restore it into a sandbox the Lazarus way."""
    source, sandbox = unique_name("lzsrc"), unique_name("lzsbx")
    backup, restore_name = unique_name("lz-backup"), unique_name("lz-restore")
    created_backup = False
    try:
        _create(rest, "/api/v1/namespaces", {"metadata": {"name": source}})
        for template, body in _source_objects(source):
            _create(rest, template.format(ns=source), body)
        _create_with_node_ports(rest, source, LOAD_BALANCER, explicit=[1])  # https: explicit, http: auto
        _create_with_node_ports(rest, source, NODE_PORT, explicit=[1])  # admin: explicit, dns: auto

        def deployment_available() -> bool:
            status = rest.request("GET", f"/apis/apps/v1/namespaces/{source}/deployments/web").get("status") or {}
            return bool(status.get("availableReplicas") == 1)

        wait_until("the source Deployment to be available", deployment_available, timeout=120)

        create_velero_object(custom, "Backup", "backups", backup,
                             {"includedNamespaces": [source], "snapshotVolumes": False, "ttl": "1h0m0s"})
        created_backup = True
        wait_backup_completed(custom, backup)

        contents = backup_resource_list(rest, backup, VELERO_NAMESPACE)

        # What the operator does: a labelled sandbox, the modifiers ConfigMap, the Restore.
        _create(rest, "/api/v1/namespaces", {"metadata": {"name": sandbox, "labels": {SANDBOX_LABEL: "true"}}})
        owner = {"lazarus.io/test-name": "it-velero", "lazarus.io/test-namespace": "default"}
        configmap = resource_modifiers_configmap(restore_name, VELERO_NAMESPACE, [source], owner)
        _create(rest, f"/api/v1/namespaces/{VELERO_NAMESPACE}/configmaps", configmap)
        before = _snapshot(rest, source)
        source_services = {s["metadata"]["name"]: s for s in
                           rest.request("GET", f"/api/v1/namespaces/{source}/services")["items"]}
        body = restore_body(name=restore_name, namespace=VELERO_NAMESPACE, backup_name=backup,
                            namespace_mapping={source: sandbox}, resource_modifier_configmap=restore_name,
                            labels=owner)
        _create(rest, f"{VELERO_API}/restores", body)
        restore = wait_velero_phase(custom, "restores", restore_name)
        yield Restored(source, sandbox, backup, restore, contents, before, source_services)
    finally:
        _delete(rest, f"{VELERO_API}/restores/{restore_name}")
        _delete(rest, f"/api/v1/namespaces/{VELERO_NAMESPACE}/configmaps/{restore_name}")
        for namespace in (sandbox, source):
            _delete(rest, f"/api/v1/namespaces/{namespace}")
        if created_backup:
            _delete_backup(rest, backup)
        for what, path in [
            (f"restore {restore_name}", f"{VELERO_API}/restores/{restore_name}"),
            (f"namespace {sandbox}", f"/api/v1/namespaces/{sandbox}"),
            (f"namespace {source}", f"/api/v1/namespaces/{source}"),
        ]:
            wait_until(f"{what} to be deleted", partial(_gone, rest, path), timeout=120)


def _delete_backup(rest: Rest, backup: str) -> None:
    """Delete a backup the Velero way (a DeleteBackupRequest also removes its files from the store,
    which a plain delete would not: Velero's sync would bring the Backup back)."""
    request = unique_name("lz-delete")
    _create(rest, f"{VELERO_API}/deletebackuprequests", {
        "apiVersion": "velero.io/v1", "kind": "DeleteBackupRequest",
        "metadata": {"name": request, "namespace": VELERO_NAMESPACE}, "spec": {"backupName": backup}})
    wait_until(f"backup {backup} to be deleted", lambda: _gone(rest, f"{VELERO_API}/backups/{backup}"), timeout=120)
    _delete(rest, f"{VELERO_API}/deletebackuprequests/{request}")


def _sandbox(rest: Rest, restored: Restored, collection: str, name: str) -> dict[str, Any]:
    return rest.request("GET", collection.format(ns=restored.sandbox) + f"/{name}")


def test_backup_resource_list_names_the_namespace_and_kinds(restored: Restored) -> None:
    contents, source = restored.contents, restored.source
    assert contents.namespaces == frozenset({source})
    assert contents.items["v1/Namespace"] == (source,)
    assert contents.items["apps/v1/Deployment"] == (f"{source}/web",)
    assert contents.items["batch/v1/CronJob"] == (f"{source}/nightly",)
    assert contents.items["networking.k8s.io/v1/Ingress"] == (f"{source}/front",)
    assert set(contents.items["v1/Service"]) == {f"{source}/{n}" for n in ("internal", "pinned", "public", "debug")}
    assert f"{source}/settings" in contents.items["v1/ConfigMap"]
    assert not contents.cluster_scoped


def test_restore_completes_without_errors(rest: Rest, restored: Restored) -> None:
    status = restored.restore["status"]
    results = restore_results(rest, restored.restore["metadata"]["name"], VELERO_NAMESPACE)
    print("restore warnings:", *results.warnings, sep="\n  ")  # shown with -s / on failure
    assert results.errors == [], results.errors
    assert status["phase"] == "Completed", (status, results.errors)
    assert int(status.get("errors") or 0) == 0
    assert len(results.warnings) == int(status.get("warnings") or 0), results.warnings
    assert all(w.startswith(("namespace ", "cluster: ", "velero: ")) for w in results.warnings)


def test_cronjob_is_suspended(rest: Rest, restored: Restored) -> None:
    cronjob = _sandbox(rest, restored, "/apis/batch/v1/namespaces/{ns}/cronjobs", "nightly")
    assert cronjob["spec"]["suspend"] is True
    assert cronjob["spec"]["schedule"] == "0 0 1 1 *"
    assert cronjob["metadata"]["labels"][SANDBOX_LABEL] == "true"


@pytest.mark.parametrize("name", ["public", "debug"])
def test_load_balancer_and_node_port_services_become_cluster_ip(rest: Rest, restored: Restored, name: str) -> None:
    source = restored.source_services[name]
    assert source["spec"]["type"] in ("LoadBalancer", "NodePort")
    assert any(port.get("nodePort") for port in source["spec"]["ports"])

    service = _sandbox(rest, restored, "/api/v1/namespaces/{ns}/services", name)
    spec = service["spec"]
    assert spec["type"] == "ClusterIP"
    assert all("nodePort" not in port for port in spec["ports"]), spec["ports"]
    assert not EXPOSURE_FIELDS & set(spec), spec
    assert [p["port"] for p in spec["ports"]] == [p["port"] for p in source["spec"]["ports"]]
    assert service["metadata"]["labels"][SANDBOX_LABEL] == "true"


def test_external_ips_are_dropped(rest: Rest, restored: Restored) -> None:
    assert restored.source_services["pinned"]["spec"]["externalIPs"] == ["192.0.2.10"]
    spec = _sandbox(rest, restored, "/api/v1/namespaces/{ns}/services", "pinned")["spec"]
    assert "externalIPs" not in spec and spec["type"] == "ClusterIP"


def test_cluster_ip_service_is_unchanged(rest: Rest, restored: Restored) -> None:
    restored_spec = _sandbox(rest, restored, "/api/v1/namespaces/{ns}/services", "internal")["spec"]
    source_spec = restored.source_services["internal"]["spec"]
    allocated = {"clusterIP", "clusterIPs"}  # a new Service gets new cluster IPs
    assert {k: v for k, v in restored_spec.items() if k not in allocated} == {
        k: v for k, v in source_spec.items() if k not in allocated
    }


def test_ingress_is_not_restored(rest: Rest, restored: Restored) -> None:
    assert rest.request("GET", f"/apis/networking.k8s.io/v1/namespaces/{restored.sandbox}/ingresses")["items"] == []


def test_workload_and_config_are_restored_and_labelled(rest: Rest, restored: Restored) -> None:
    deployment = _sandbox(rest, restored, "/apis/apps/v1/namespaces/{ns}/deployments", "web")
    assert deployment["metadata"]["labels"] == {**APP, SANDBOX_LABEL: "true",
                                               "velero.io/backup-name": restored.backup,
                                               "velero.io/restore-name": restored.restore["metadata"]["name"]}
    assert _sandbox(rest, restored, "/api/v1/namespaces/{ns}/configmaps", "settings")["data"] == {"mode": "production"}


def test_source_namespace_is_untouched(rest: Rest, restored: Restored) -> None:
    assert _snapshot(rest, restored.source) == restored.before
    public = rest.request("GET", f"/api/v1/namespaces/{restored.source}/services/public")
    assert public["spec"]["type"] == "LoadBalancer"
    nightly = rest.request("GET", f"/apis/batch/v1/namespaces/{restored.source}/cronjobs/nightly")
    assert nightly["spec"]["suspend"] is False


def test_download_of_a_missing_backup_fails_clearly(rest: Rest) -> None:
    missing = unique_name("no-such-backup")
    with pytest.raises(DownloadError, match="Velero saw DownloadRequest .* produced no URL") as info:
        download(rest, TargetKind.BACKUP_RESOURCE_LIST, missing, VELERO_NAMESPACE, timeout=3)
    assert info.value.kind == "BackupResourceList" and info.value.name == missing
    left = rest.request("GET", f"{VELERO_API}/downloadrequests", query={"labelSelector": "lazarus.io/download=true"})
    assert [r for r in left["items"] if r["spec"]["target"]["name"] == missing] == []  # deleted on failure
