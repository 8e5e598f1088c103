"""The test bed's database images on the real node: MariaDB and FerretDB (MongoDB wire) StatefulSets
start from empty volumes with the official images' settings, serve clients on the pod network, and
keep what was written across a pod restart (the data is on the PersistentVolume).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pymongo
import pymysql
import pytest
from kubernetes import client

from tests.integration.conftest import delete_namespace_and_wait
from tests.integration.kube import wait_until
from tests.integration.workloads import apply, create_namespace, ready_pod_ip, statefulset

pytestmark = pytest.mark.integration

MARIADB_IMAGE = "localhost/lazarus-testbed/mariadb:10.11"
FERRETDB_IMAGE = "localhost/lazarus-testbed/ferretdb:1"
ORDERS = [(1, "tea"), (2, "cake")]


def _restarted(core: client.CoreV1Api, namespace: str) -> str:
    """Delete the StatefulSet's pod and return the new pod's IP once it is Ready."""
    old = core.read_namespaced_pod("db-0", namespace).metadata.uid
    core.delete_namespaced_pod("db-0", namespace)
    def replaced() -> bool:
        try:
            return core.read_namespaced_pod("db-0", namespace).metadata.uid != old
        except client.ApiException as exc:
            if exc.status == 404:
                return False
            raise

    wait_until(f"pod {namespace}/db-0 replaced", replaced, timeout=60)
    return ready_pod_ip(core, namespace, "db-0")


@pytest.fixture
def namespace(core: client.CoreV1Api) -> Iterator[str]:
    name = create_namespace(core, "img-db")
    yield name
    delete_namespace_and_wait(core, name)


def _mariadb(address: str) -> pymysql.connections.Connection:
    return pymysql.connect(host=address, user="shop", password="shop-pw", database="shop", connect_timeout=10)


def test_mariadb_initialises_its_volume_and_keeps_the_rows(core: client.CoreV1Api, namespace: str) -> None:
    env = {"MARIADB_ROOT_PASSWORD": "root-pw", "MARIADB_USER": "shop", "MARIADB_PASSWORD": "shop-pw"}
    env["MARIADB_DATABASE"] = "shop"
    container = {
        "name": "mariadb",
        "image": MARIADB_IMAGE,
        "env": [{"name": key, "value": value} for key, value in env.items()],
        "readinessProbe": {"tcpSocket": {"port": 3306}, "periodSeconds": 2},
    }
    apply(*statefulset(namespace, "db", container, mount_path="/var/lib/mysql", fs_group=999, port=3306))
    with _mariadb(ready_pod_ip(core, namespace, "db-0")) as db, db.cursor() as cursor:
        cursor.execute("CREATE TABLE orders (id INT PRIMARY KEY, item VARCHAR(40))")
        cursor.executemany("INSERT INTO orders VALUES (%s, %s)", ORDERS)
        db.commit()
    with _mariadb(_restarted(core, namespace)) as db, db.cursor() as cursor:
        cursor.execute("SELECT id, item FROM orders ORDER BY id")
        assert [tuple(row) for row in cursor.fetchall()] == ORDERS
        cursor.execute("SELECT CURRENT_USER()")
        assert cursor.fetchone() == ("shop@%",)


def _mongo(address: str, password: str = "shop-pw") -> pymongo.MongoClient[dict[str, Any]]:
    return pymongo.MongoClient(
        address, 27017, username="shop", password=password, authSource="shop", serverSelectionTimeoutMS=10000
    )


def test_ferretdb_makes_the_user_and_keeps_the_documents(core: client.CoreV1Api, namespace: str) -> None:
    env = {"FERRETDB_USER": "shop", "FERRETDB_PASSWORD": "shop-pw", "FERRETDB_DATABASE": "shop"}
    container = {
        "name": "ferretdb",
        "image": FERRETDB_IMAGE,
        "env": [{"name": key, "value": value} for key, value in env.items()],
        "readinessProbe": {"httpGet": {"path": "/debug/readyz", "port": 8088}, "periodSeconds": 2},
    }
    apply(*statefulset(namespace, "db", container, mount_path="/state", fs_group=65532, port=27017))
    with _mongo(ready_pod_ip(core, namespace, "db-0")) as mongo:
        mongo.shop.orders.insert_many([{"_id": key, "item": item} for key, item in ORDERS])
    address = _restarted(core, namespace)
    with _mongo(address) as mongo:
        assert [(d["_id"], d["item"]) for d in mongo.shop.orders.find().sort("_id")] == ORDERS
    with _mongo(address, password="wrong") as mongo, pytest.raises(pymongo.errors.OperationFailure):
        mongo.shop.orders.find_one()
