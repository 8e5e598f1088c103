"""The database servers the data tests run in the cluster: PostgreSQL, MariaDB and FerretDB (the
MongoDB wire protocol), each a StatefulSet with its data on a PVC, a ClusterIP Service and a
credentials Secret, as a production application would have them.

``settings(engine, namespace)`` is how the test process itself reaches one (through the Service's
DNS name: the tests run under ``testbed.sh exec``); the checks find them through the restored
Service and Secret, like any restored application's database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.integration.kube import wait_until
from tests.integration.workloads import postgres, statefulset

MARIADB_IMAGE = "localhost/lazarus-testbed/mariadb:10.11"
FERRETDB_IMAGE = "localhost/lazarus-testbed/ferretdb:1"
MARIADB_UID = 999
FERRETDB_UID = 65532
USER = "shop"
DATABASE = "shop"


@dataclass(frozen=True)
class Server:
    """One engine's server in the cluster."""

    key: str
    """PG, MYSQL or MONGO."""
    service: str
    """The Service's (and StatefulSet's) name; its pod is ``<service>-0``."""
    port: int
    password: str

    @property
    def credentials_secret(self) -> str:
        return f"{self.service}-credentials"


SERVERS = {
    "PG": Server("PG", "postgres", 5432, "shop-postgres-password"),
    "MYSQL": Server("MYSQL", "mysql", 3306, "shop-mysql-password"),
    "MONGO": Server("MONGO", "mongo", 27017, "shop-mongo-password"),
}


def secret(namespace: str, name: str, data: dict[str, str]) -> dict[str, Any]:
    """A Secret manifest holding ``data``."""
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
            "stringData": data}  # fmt: skip


def _mariadb(namespace: str, server: Server) -> list[dict[str, Any]]:
    def from_secret(key: str) -> dict[str, Any]:
        return {"secretKeyRef": {"name": server.credentials_secret, "key": key}}

    container = {
        "name": "mariadb",
        "image": MARIADB_IMAGE,
        "env": [
            {"name": "MARIADB_USER", "value": USER},
            {"name": "MARIADB_DATABASE", "value": DATABASE},
            {"name": "MARIADB_PASSWORD", "valueFrom": from_secret("password")},
            {"name": "MARIADB_ROOT_PASSWORD", "valueFrom": from_secret("password")},
        ],
        "readinessProbe": {"tcpSocket": {"port": server.port}, "periodSeconds": 1},
    }
    return statefulset(
        namespace, server.service, container, mount_path="/var/lib/mysql", fs_group=MARIADB_UID, port=server.port
    )


def _ferretdb(namespace: str, server: Server) -> list[dict[str, Any]]:
    container = {
        "name": "ferretdb",
        "image": FERRETDB_IMAGE,
        "env": [
            {"name": "FERRETDB_USER", "value": USER},
            {"name": "FERRETDB_DATABASE", "value": DATABASE},
            {
                "name": "FERRETDB_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": server.credentials_secret, "key": "password"}},
            },
        ],
        "readinessProbe": {"tcpSocket": {"port": server.port}, "periodSeconds": 1},
    }
    return statefulset(
        namespace, server.service, container, mount_path="/state", fs_group=FERRETDB_UID, port=server.port
    )


def manifests(engine: str, namespace: str) -> list[dict[str, Any]]:
    """``engine``'s credentials Secret (``username``, ``password``), StatefulSet and Service."""
    server = SERVERS[engine]
    credentials = secret(namespace, server.credentials_secret, {"username": USER, "password": server.password})
    if engine == "PG":
        workload = postgres(namespace, server.service, user=USER, password_secret=server.credentials_secret,
                            database=DATABASE)  # fmt: skip
    elif engine == "MYSQL":
        workload = _mariadb(namespace, server)
    else:
        workload = _ferretdb(namespace, server)
    return [credentials, *workload]


def settings(engine: str, namespace: str) -> dict[str, str]:
    """How the test process connects to ``engine``'s server in ``namespace``: HOST, PORT, USER,
    PASSWORD, DATABASE (the keys ``tests.integration.test_checks_fixtures`` uses)."""
    server = SERVERS[engine]
    return {
        "HOST": f"{server.service}.{namespace}.svc",
        "PORT": str(server.port),
        "USER": USER,
        "PASSWORD": server.password,
        "DATABASE": DATABASE,
    }


def first_contact(engine: str, action: Callable[[], object], timeout: float = 60) -> None:
    """Run ``action``, the first use of a new or just restored server, once the server takes it. A
    pod is Ready before kube-proxy routes its Service and before the server accepts its user, so any
    driver error is retried until ``timeout``; a write that half happened ("already exists") is
    raised."""

    def attempt() -> bool:
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - any driver error means "not yet"
            if "already exists" in str(exc):
                raise
            return False
        return True

    wait_until(f"{engine} to take its first request", attempt, timeout=timeout, interval=0.5)
