"""The test bed's real node: containers run, NetworkPolicy is enforced, and Velero's file-system
backup brings a PostgreSQL volume's data back — the backup's data, not production's.

Pods here run on ``lazarus-worker`` (containerd + runc) from images made on this machine
(``e2e/testbed/images.py``); the node is tainted ``lazarus.io/real-node`` while the kwok node
still serves the tests that need no container, so these pods tolerate the taint and select it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.integration.conftest import delete_namespace_and_wait
from tests.integration.install import kubectl
from tests.integration.kube import (
    create_velero_object,
    unique_name,
    wait_backup_completed,
    wait_until,
    wait_velero_phase,
)

pytestmark = pytest.mark.integration

BASE_IMAGE = "localhost/lazarus-testbed/base:1"
POSTGRES_IMAGE = "localhost/lazarus-testbed/postgres:15"
ON_REAL_NODE: dict[str, Any] = {
    "nodeSelector": {"type": "real"},
    "tolerations": [{"key": "lazarus.io/real-node", "operator": "Exists", "effect": "NoSchedule"}],
}


def _apply(*objects: dict[str, Any]) -> None:
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(objects))


def _namespace(core: client.CoreV1Api, prefix: str) -> str:
    name = unique_name(prefix)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


@pytest.fixture
def two_namespaces(core: client.CoreV1Api) -> Iterator[tuple[str, str]]:
    names = (_namespace(core, "np-client"), _namespace(core, "np-server"))
    yield names
    for name in names:
        delete_namespace_and_wait(core, name)


def _pod(namespace: str, name: str, command: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {"app": name}},
        "spec": {
            **ON_REAL_NODE,
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {"name": name, "image": BASE_IMAGE, "imagePullPolicy": "Never", "command": ["sh", "-c", command]}
            ],
        },
    }


def _running_ip(core: client.CoreV1Api, namespace: str, name: str) -> str:
    def ready() -> str | None:
        try:
            pod = core.read_namespaced_pod(name, namespace)
        except client.ApiException as exc:
            if exc.status == 404:  # a StatefulSet's pod is made after the StatefulSet
                return None
            raise
        conditions = {c.type: c.status for c in pod.status.conditions or []}
        return pod.status.pod_ip if conditions.get("Ready") == "True" else None

    return wait_until(f"pod {namespace}/{name} running", ready, timeout=60)


def _connects(namespace: str, pod: str, address: str, port: int) -> bool:
    """Whether ``pod`` opens a TCP connection to ``address:port`` within 3 s (BusyBox nc)."""
    out = kubectl(
        "exec",
        "-n",
        namespace,
        pod,
        "--",
        "sh",
        "-c",
        f"nc -w 3 {address} {port} </dev/null && echo open || echo closed",
    )
    return out.strip().endswith("open")


def test_a_container_runs_and_cluster_dns_answers(core: client.CoreV1Api, two_namespaces: tuple[str, str]) -> None:
    client_ns, server_ns = two_namespaces
    _apply(_pod(server_ns, "server", "nc -ll -p 8080 -e echo hello"))
    _running_ip(core, server_ns, "server")
    _apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "server", "namespace": server_ns},
            "spec": {"selector": {"app": "server"}, "ports": [{"port": 80, "targetPort": 8080}]},
        }
    )
    _apply(_pod(client_ns, "client", "sleep 3600"))
    _running_ip(core, client_ns, "client")
    uname = kubectl("exec", "-n", client_ns, "client", "--", "uname", "-s").strip()
    assert uname == "Linux"
    service = f"server.{server_ns}.svc.cluster.local"
    reply = wait_until(
        "the Service answers through cluster DNS and kube-proxy",
        lambda: kubectl(
            "exec", "-n", client_ns, "client", "--", "sh", "-c", f"nc -w 3 {service} 80 </dev/null || true"
        ).strip(),
        timeout=30,
    )
    assert reply == "hello"
    # A name outside the cluster resolves to nothing: no resolver beyond the bed's CoreDNS.
    external = kubectl(
        "exec",
        "-n",
        client_ns,
        "client",
        "--",
        "sh",
        "-c",
        "nslookup example.com >/dev/null 2>&1 && echo found || echo none",
    )
    assert external.strip() == "none"


def test_network_policy_is_enforced_between_namespaces(core: client.CoreV1Api, two_namespaces: tuple[str, str]) -> None:
    """A pod reaches a pod of another namespace until a deny-all ingress policy selects it."""
    client_ns, server_ns = two_namespaces
    _apply(_pod(server_ns, "server", "nc -ll -p 8080 -e echo hello"), _pod(client_ns, "client", "sleep 3600"))
    server_ip = _running_ip(core, server_ns, "server")
    _running_ip(core, client_ns, "client")
    assert _connects(client_ns, "client", server_ip, 8080), "no policy: the connection must open"

    _apply(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "deny-ingress", "namespace": server_ns},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
        }
    )
    wait_until("the deny policy is enforced", lambda: not _connects(client_ns, "client", server_ip, 8080), timeout=30)

    kubectl("delete", "networkpolicy", "-n", server_ns, "deny-ingress")
    wait_until("the policy's removal is enforced", lambda: _connects(client_ns, "client", server_ip, 8080), timeout=30)


def db_stateful_set(
    namespace: str, container: dict[str, Any], mount: str, fs_group: int, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    """A one-replica StatefulSet ``db`` (pods labelled ``app: db``) on the real node running CONTAINER
    (pulled never), its volume ``data`` a 1 Gi PVC of the default StorageClass mounted at MOUNT."""
    labels = {"app": "db"}
    container = {**container, "imagePullPolicy": "Never", "volumeMounts": [{"name": "data", "mountPath": mount}]}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": namespace},
        "spec": {
            "serviceName": "db",
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": annotations or {}},
                "spec": {
                    **ON_REAL_NODE,
                    "securityContext": {"fsGroup": fs_group},
                    "terminationGracePeriodSeconds": 10,
                    "containers": [container],
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
                }
            ],
        },
    }


def _postgres(namespace: str) -> list[dict[str, Any]]:
    """A PostgreSQL StatefulSet with its data on a PVC that Velero's file-system backup includes."""
    container = {
        "name": "postgres",
        "image": POSTGRES_IMAGE,
        "env": [
            {"name": "POSTGRES_USER", "value": "shop"},
            {"name": "POSTGRES_DB", "value": "shop"},
            {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
            {"name": "POSTGRES_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
        ],
        "readinessProbe": {
            "exec": {"command": ["pg_isready", "-h", "127.0.0.1", "-U", "shop"]},
            "periodSeconds": 1,
        },
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db", "namespace": namespace},
            "stringData": {"password": "shop-db-password"},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "db", "namespace": namespace},
            "spec": {"selector": {"app": "db"}, "ports": [{"port": 5432}]},
        },
        db_stateful_set(
            namespace, container, "/var/lib/postgresql/data", 999, {"backup.velero.io/backup-volumes": "data"}
        ),
    ]


def _sql(namespace: str, statement: str) -> str:
    return kubectl(
        "exec", "-n", namespace, "db-0", "-c", "postgres", "--", "psql", "-U", "shop", "-d", "shop", "-tAc", statement
    ).strip()


@pytest.fixture
def production(core: client.CoreV1Api) -> Iterator[str]:
    name = _namespace(core, "shop-prod")
    yield name
    delete_namespace_and_wait(core, name)


def test_velero_restores_the_volume_s_data_as_it_was_at_the_backup(
    core: client.CoreV1Api, custom: client.CustomObjectsApi, production: str
) -> None:
    _apply(*_postgres(production))
    _running_ip(core, production, "db-0")
    _sql(production, "CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 250)")

    backup = unique_name("fs-backup")
    create_velero_object(
        custom,
        "Backup",
        "backups",
        backup,
        {"includedNamespaces": [production], "defaultVolumesToFsBackup": True, "ttl": "1h0m0s"},
    )
    wait_backup_completed(custom, backup)
    volume_backups = custom.list_namespaced_custom_object(
        "velero.io", "v1", "velero", "podvolumebackups", label_selector=f"velero.io/backup-name={backup}"
    )["items"]
    assert [v["status"]["phase"] for v in volume_backups] == ["Completed"]
    assert volume_backups[0]["status"]["progress"]["bytesDone"] > 0

    # Production moves on after the backup: the restored copy must not see it.
    _sql(production, "DELETE FROM orders WHERE id > 200")
    assert _sql(production, "SELECT count(*) FROM orders") == "200"

    sandbox = unique_name("shop-restored")
    restore = unique_name("fs-restore")
    try:
        create_velero_object(
            custom, "Restore", "restores", restore, {"backupName": backup, "namespaceMapping": {production: sandbox}}
        )
        assert wait_velero_phase(custom, "restores", restore, timeout=180)["status"]["phase"] == "Completed"
        _running_ip(core, sandbox, "db-0")
        assert _sql(sandbox, "SELECT count(*) FROM orders") == "250"
        claim = core.read_namespaced_persistent_volume_claim("data-db-0", sandbox)
        volume = core.read_persistent_volume(claim.spec.volume_name)
        production_claim = core.read_namespaced_persistent_volume_claim("data-db-0", production)
        assert volume.spec.local is not None and claim.spec.volume_name != production_claim.spec.volume_name
    finally:
        delete_namespace_and_wait(core, sandbox)
