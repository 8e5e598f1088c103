"""Real workloads on the test bed's real node, and their data backed up and restored by Velero.

Pods run on ``lazarus-worker`` (containerd + runc) from images made on this machine
(``e2e/testbed/images.py``); the kwok node is tainted, so nothing lands there unless it asks.
Volumes are ``local`` PVs of the default StorageClass, which Velero's file-system backup (its node
agent, kopia) includes when a Backup says ``defaultVolumesToFsBackup``.

The test process reaches pods and ClusterIPs directly (the host routes the pod and Service CIDRs
onto the node's bridge) and resolves Service names through the cluster's DNS when run under
``testbed.sh exec`` (as ``make test`` runs it).
"""

from __future__ import annotations

from typing import Any

import yaml
from kubernetes import client

from tests.integration.install import kubectl
from tests.integration.kube import (
    VELERO_GROUP,
    VELERO_NAMESPACE,
    VELERO_VERSION,
    create_velero_object,
    unique_name,
    wait_backup_completed,
    wait_until,
    wait_velero_phase,
)

BASE_IMAGE = "localhost/lazarus-testbed/base:1"
POSTGRES_IMAGE = "localhost/lazarus-testbed/postgres:15"
POSTGRES_UID = 999  # the image's user (as the official image's): fsGroup makes the volume its own


def apply(*objects: dict[str, Any]) -> None:
    """``kubectl apply`` the manifests (each names its namespace)."""
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(objects))


def create_namespace(core: client.CoreV1Api, prefix: str) -> str:
    """A new namespace named ``prefix-<random>``; the caller deletes it."""
    name = unique_name(prefix)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


def why_not_ready(pod: Any) -> str:
    """The pod's own account of why it is not ready: phase, container states and their reasons."""
    if pod is None:
        return "the pod does not exist"
    states = []
    for status in (pod.status.init_container_statuses or []) + (pod.status.container_statuses or []):
        for kind in ("waiting", "terminated"):
            state = getattr(status.state, kind, None)
            if state is not None:
                states.append(f"{status.name} {kind}: {state.reason} {state.message or ''}".strip())
    conditions = [f"{c.type}={c.status} {c.reason or ''}".strip() for c in pod.status.conditions or []]
    return f"phase {pod.status.phase}; {'; '.join(states + conditions) or 'no status yet'}"


def ready_pod_ip(core: client.CoreV1Api, namespace: str, name: str, timeout: float = 90) -> str:
    """Wait until pod ``name`` is Ready and return its IP; fail with the pod's reason (image, mount,
    crash) and its last events when it does not get there."""
    last: list[Any] = [None]

    def ready() -> str | None:
        try:
            pod = last[0] = core.read_namespaced_pod(name, namespace)
        except client.ApiException as exc:
            if exc.status == 404:  # a StatefulSet's pod is made after the StatefulSet
                return None
            raise
        conditions = {c.type: c.status for c in pod.status.conditions or []}
        return str(pod.status.pod_ip) if conditions.get("Ready") == "True" else None

    try:
        return wait_until(f"pod {namespace}/{name} ready", ready, timeout=timeout, interval=0.5)
    except AssertionError as exc:
        events = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
        told = "\n".join(f"  {e.type} {e.reason}: {e.message}" for e in events[-8:])
        raise AssertionError(f"{exc}\n{why_not_ready(last[0])}\nevents:\n{told}") from None


def statefulset(
    namespace: str,
    name: str,
    container: dict[str, Any],
    *,
    mount_path: str,
    fs_group: int,
    port: int,
) -> list[dict[str, Any]]:
    """A one-replica StatefulSet of ``container`` with its data on a 1Gi PVC ``data`` at
    ``mount_path``, and a ClusterIP Service ``name`` on ``port``."""
    labels = {"app": name}
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": labels, "ports": [{"port": port}]},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "serviceName": name,
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "securityContext": {"fsGroup": fs_group},
                        "terminationGracePeriodSeconds": 5,
                        "containers": [
                            {
                                "imagePullPolicy": "Never",
                                **container,
                                "volumeMounts": [{"name": "data", "mountPath": mount_path}],
                            }
                        ],
                    },
                },
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data"},
                        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
                    }
                ],
            },
        },
    ]


def postgres(namespace: str, name: str, *, user: str, password_secret: str, database: str) -> list[dict[str, Any]]:
    """A PostgreSQL 15 StatefulSet ``name`` (data on its PVC) whose password is the ``password``
    key of Secret ``password_secret``; Service ``name`` on 5432."""
    container = {
        "name": "postgres",
        "image": POSTGRES_IMAGE,
        "env": [
            {"name": "POSTGRES_USER", "value": user},
            {"name": "POSTGRES_DB", "value": database},
            {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
            {"name": "POSTGRES_PASSWORD", "valueFrom": {"secretKeyRef": {"name": password_secret, "key": "password"}}},
        ],
        "readinessProbe": {"exec": {"command": ["pg_isready", "-h", "127.0.0.1", "-U", user]}, "periodSeconds": 1},
    }
    return statefulset(
        namespace, name, container, mount_path="/var/lib/postgresql/data", fs_group=POSTGRES_UID, port=5432
    )


def back_up_with_volumes(custom: client.CustomObjectsApi, namespace: str, prefix: str = "fs-backup") -> str:
    """A Completed Velero backup of ``namespace`` whose pod volumes were all backed up (file-system
    backup by the node agent); its name."""
    name = unique_name(prefix)
    create_velero_object(
        custom,
        "Backup",
        "backups",
        name,
        {"includedNamespaces": [namespace], "defaultVolumesToFsBackup": True, "ttl": "2h0m0s"},
    )
    wait_backup_completed(custom, name, timeout=180)
    selector = f"velero.io/backup-name={name}"
    volumes = custom.list_namespaced_custom_object(
        VELERO_GROUP, VELERO_VERSION, VELERO_NAMESPACE, "podvolumebackups", label_selector=selector
    )["items"]
    phases = [v.get("status", {}).get("phase") for v in volumes]
    assert phases and set(phases) == {"Completed"}, f"backup {name}: pod volume backups {phases}"
    return name


def restore_into(custom: client.CustomObjectsApi, backup: str, mapping: dict[str, str]) -> str:
    """Restore ``backup`` with ``mapping`` (source → target namespace), volumes' data included, and
    wait until it Completed; the Restore's name (the caller deletes the target namespaces)."""
    name = unique_name("restore")
    create_velero_object(custom, "Restore", "restores", name, {"backupName": backup, "namespaceMapping": mapping})
    restore = wait_velero_phase(custom, "restores", name, timeout=240)
    assert restore["status"]["phase"] == "Completed", restore["status"]
    return name
