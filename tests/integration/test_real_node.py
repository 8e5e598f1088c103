"""The test bed's real node: containers run, NetworkPolicy is enforced, and Velero's file-system
backup brings a PostgreSQL volume's data back — the backup's data, not production's.

Pods here run on ``lazarus-worker`` (containerd + runc) from images made on this machine (see
``tests/integration/workloads.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.integration.conftest import delete_namespace_and_wait
from tests.integration.install import kubectl
from tests.integration.kube import wait_until
from tests.integration.workloads import (
    BASE_IMAGE,
    apply,
    back_up_with_volumes,
    create_namespace,
    postgres,
    ready_pod_ip,
    restore_into,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def two_namespaces(core: client.CoreV1Api) -> Iterator[tuple[str, str]]:
    names = (create_namespace(core, "np-client"), create_namespace(core, "np-server"))
    yield names
    for name in names:
        delete_namespace_and_wait(core, name)


def _pod(namespace: str, name: str, command: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {"app": name}},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {"name": name, "image": BASE_IMAGE, "imagePullPolicy": "Never", "command": ["sh", "-c", command]}
            ],
        },
    }


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
    apply(_pod(server_ns, "server", "nc -ll -p 8080 -e echo hello"))
    ready_pod_ip(core, server_ns, "server")
    apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "server", "namespace": server_ns},
            "spec": {"selector": {"app": "server"}, "ports": [{"port": 80, "targetPort": 8080}]},
        }
    )
    apply(_pod(client_ns, "client", "sleep 3600"))
    ready_pod_ip(core, client_ns, "client")
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
    apply(_pod(server_ns, "server", "nc -ll -p 8080 -e echo hello"), _pod(client_ns, "client", "sleep 3600"))
    server_ip = ready_pod_ip(core, server_ns, "server")
    ready_pod_ip(core, client_ns, "client")
    assert _connects(client_ns, "client", server_ip, 8080), "no policy: the connection must open"

    apply(
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


def _sql(namespace: str, statement: str) -> str:
    return kubectl(
        "exec", "-n", namespace, "db-0", "-c", "postgres", "--", "psql", "-U", "shop", "-d", "shop", "-tAc", statement
    ).strip()


@pytest.fixture
def production(core: client.CoreV1Api) -> Iterator[str]:
    name = create_namespace(core, "shop-prod")
    yield name
    delete_namespace_and_wait(core, name)


def test_velero_restores_the_volume_s_data_as_it_was_at_the_backup(
    core: client.CoreV1Api, custom: client.CustomObjectsApi, production: str
) -> None:
    password = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": production},
                "stringData": {"password": "shop-db-password"}}  # fmt: skip
    apply(password, *postgres(production, "db", user="shop", password_secret="db", database="shop"))
    ready_pod_ip(core, production, "db-0")
    _sql(production, "CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 250)")

    backup = back_up_with_volumes(custom, production)

    # Production moves on after the backup: the restored copy must not see it.
    _sql(production, "DELETE FROM orders WHERE id > 200")
    assert _sql(production, "SELECT count(*) FROM orders") == "200"

    sandbox = f"{production}-restored"
    try:
        restore_into(custom, backup, {production: sandbox})
        ready_pod_ip(core, sandbox, "db-0")
        assert _sql(sandbox, "SELECT count(*) FROM orders") == "250"
        claim = core.read_namespaced_persistent_volume_claim("data-db-0", sandbox)
        volume = core.read_persistent_volume(claim.spec.volume_name)
        production_claim = core.read_namespaced_persistent_volume_claim("data-db-0", production)
        assert volume.spec.local is not None and claim.spec.volume_name != production_claim.spec.volume_name
    finally:
        delete_namespace_and_wait(core, sandbox)
