"""The test bed is real: a kube-apiserver that validates, controllers that act, a Velero that
backs up and restores through a real object store, and kwok nodes that run pods to Ready."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.integration.conftest import delete_namespace_and_wait
from tests.integration.kube import (
    ON_KWOK,
    create_velero_object,
    unique_name,
    wait_backup_completed,
    wait_until,
    wait_velero_phase,
)

pytestmark = pytest.mark.integration

APP_LABELS = {"app": "shop"}


def _app_objects(namespace: str) -> tuple[client.V1Deployment, client.V1ConfigMap, client.V1Secret, client.V1Service]:
    meta = client.V1ObjectMeta
    deployment = client.V1Deployment(
        metadata=meta(name="shop", namespace=namespace, labels=APP_LABELS),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels=APP_LABELS),
            template=client.V1PodTemplateSpec(
                metadata=meta(labels=APP_LABELS),
                spec=client.V1PodSpec(
                    containers=[client.V1Container(name="shop", image="registry.invalid/shop:1")],
                    node_selector=ON_KWOK["nodeSelector"],
                    tolerations=ON_KWOK["tolerations"],
                ),
            ),
        ),
    )
    config_map = client.V1ConfigMap(metadata=meta(name="shop-config", namespace=namespace), data={"mode": "prod"})
    secret = client.V1Secret(metadata=meta(name="shop-db", namespace=namespace), string_data={"password": "s3cret"})
    service = client.V1Service(
        metadata=meta(name="shop", namespace=namespace),
        spec=client.V1ServiceSpec(selector=APP_LABELS, ports=[client.V1ServicePort(port=80, target_port=8080)]),
    )
    return deployment, config_map, secret, service


def _source_snapshot(core: client.CoreV1Api, apps: client.AppsV1Api, namespace: str) -> dict[str, str]:
    """Name → resourceVersion of everything a restore could have touched in the source namespace."""
    objects: list[Any] = [
        *apps.list_namespaced_deployment(namespace).items,
        *core.list_namespaced_config_map(namespace).items,
        *core.list_namespaced_secret(namespace).items,
        *core.list_namespaced_service(namespace).items,
    ]
    return {f"{type(o).__name__}/{o.metadata.name}": o.metadata.resource_version for o in objects}


@pytest.fixture(scope="module")
def source_namespace(core: client.CoreV1Api, apps: client.AppsV1Api) -> Iterator[str]:
    """A namespace holding a small application: Deployment, ConfigMap, Secret, Service."""
    name = unique_name("shop")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    deployment, config_map, secret, service = _app_objects(name)
    apps.create_namespaced_deployment(name, deployment)
    core.create_namespaced_config_map(name, config_map)
    core.create_namespaced_secret(name, secret)
    core.create_namespaced_service(name, service)
    yield name
    delete_namespace_and_wait(core, name)


@pytest.fixture(scope="module")
def completed_backup(custom: client.CustomObjectsApi, source_namespace: str) -> dict[str, Any]:
    name = unique_name("backup")
    create_velero_object(custom, "Backup", "backups", name, {"includedNamespaces": [source_namespace], "ttl": "1h0m0s"})
    return wait_backup_completed(custom, name)


def test_velero_backup_completes_with_items(completed_backup: dict[str, Any]) -> None:
    status = completed_backup["status"]
    assert status["phase"] == "Completed", status
    assert status["progress"]["totalItems"] > 0
    assert status["progress"]["itemsBackedUp"] == status["progress"]["totalItems"]


def test_restore_with_namespace_mapping_leaves_source_untouched(
    core: client.CoreV1Api,
    apps: client.AppsV1Api,
    custom: client.CustomObjectsApi,
    source_namespace: str,
    completed_backup: dict[str, Any],
) -> None:
    target = unique_name("sandbox")
    before = _source_snapshot(core, apps, source_namespace)
    restore_name = unique_name("restore")
    create_velero_object(
        custom,
        "Restore",
        "restores",
        restore_name,
        {
            "backupName": completed_backup["metadata"]["name"],
            "includedNamespaces": [source_namespace],
            "namespaceMapping": {source_namespace: target},
        },
    )
    try:
        restore = wait_velero_phase(custom, "restores", restore_name)
        assert restore["status"]["phase"] == "Completed", restore["status"]

        assert apps.read_namespaced_deployment("shop", target).spec.replicas == 2
        assert core.read_namespaced_config_map("shop-config", target).data == {"mode": "prod"}
        assert core.read_namespaced_secret("shop-db", target).data["password"]
        assert core.read_namespaced_service("shop", target).spec.ports[0].port == 80
        assert _source_snapshot(core, apps, source_namespace) == before

        def deployment_ready() -> bool:
            status = apps.read_namespaced_deployment_status("shop", target).status
            return status.ready_replicas == 2

        wait_until("restored Deployment's pods to become Ready", deployment_ready, timeout=120)
    finally:
        delete_namespace_and_wait(core, target)


def test_job_pod_completes(batch: client.BatchV1Api, namespace: str) -> None:
    job = client.V1Job(
        metadata=client.V1ObjectMeta(name="check"),
        spec=client.V1JobSpec(
            backoff_limit=0,
            template=client.V1PodTemplateSpec(
                spec=client.V1PodSpec(
                    restart_policy="Never",
                    containers=[client.V1Container(name="check", image="registry.invalid/check:1")],
                    node_selector=ON_KWOK["nodeSelector"],
                    tolerations=ON_KWOK["tolerations"],
                )
            ),
        ),
    )
    batch.create_namespaced_job(namespace, job)

    def succeeded() -> bool:
        return batch.read_namespaced_job_status("check", namespace).status.succeeded == 1

    wait_until("the Job to succeed", succeeded, timeout=120)


def test_namespace_deletion_finishes(core: client.CoreV1Api) -> None:
    name = unique_name("doomed")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    core.create_namespaced_config_map(name, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x"), data={"a": "b"}))
    delete_namespace_and_wait(core, name, timeout=60)
