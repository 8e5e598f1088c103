"""The operator as users install it, driven only through the Kubernetes API and the CLI.

Lazarus runs from the image built from the project's Dockerfile, installed by
``kubectl apply --server-side -k manifests/overlays/testbed`` (the base with only the image set):
two replicas on the real node, with the base's probes, limits, non-root user, read-only root
filesystem, dropped capabilities and seccomp profile. Production is the demo's ``shop``
(``e2e/demo/shop.yaml``): PostgreSQL with 250 orders on a volume and a web Deployment. A Velero
backup takes the volume, then production loses 50 orders: every passing check below holds only
for the restored copy.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

import lazarus
from tests.e2e.conftest import NAMESPACE, operator_pods, wait_rolled_out
from tests.integration.install import ROOT, kubectl
from tests.integration.kube import unique_name, wait_until
from tests.integration.restores_created import RestoresCreated
from tests.integration.workloads import POSTGRES_IMAGE, back_up_with_volumes

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.usefixtures("installed")]

DEMO = ROOT / "e2e" / "demo"
LRT = ("lazarus.io", "v1alpha1", NAMESPACE, "lazarusrestoretests")
BACKED_UP, PRODUCTION_AFTER = 250, 200
# A custom check Job in the sandbox: psql from the PostgreSQL image, the password from the restored
# Secret, the short host name `db` (the sandbox's own Service). It retries the connection for up to
# 10 s: a new pod's traffic is refused until the NetworkPolicy enforcer (kube-router) has added its
# IP to the sandbox's allowed sources, which takes it a moment.
COUNT_ORDERS = {
    "image": POSTGRES_IMAGE,
    "command": ["sh", "-c", 'for i in $(seq 20); do n=$(psql -h db -U shop -d shop -tAc "SELECT count(*) FROM orders" '
                            '2>/dev/null) && break; sleep 0.5; done; echo "orders: $n"; '
                            f'[ "$n" = {BACKED_UP} ]'],
    "env": [{"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {"name": "shop-db", "key": "password"}}}],
    "timeout": 120,
}  # fmt: skip


def psql(statement: str) -> str:
    """Run SQL on production's database, in its pod; the result rows."""
    return kubectl("-n", "shop", "exec", "-i", "db-0", "-c", "postgres", "--",
                   "psql", "-q", "-tA", "-U", "shop", "-d", "shop", stdin=statement).strip()  # fmt: skip


@pytest.fixture(scope="module")
def backup(custom: client.CustomObjectsApi) -> Iterator[str]:
    """A backup of ``shop`` with 250 orders on its volume; production has 200 since."""
    kubectl("apply", "-f", str(DEMO / "shop.yaml"))
    kubectl("-n", "shop", "rollout", "status", "statefulset/db", "--timeout", "180s")
    kubectl("-n", "shop", "rollout", "status", "deployment/web", "--timeout", "120s")
    psql("CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, total numeric(10,2) NOT NULL, "
         "created_at timestamptz NOT NULL); INSERT INTO orders (customer, total, created_at) SELECT 'customer-' "
         f"|| n, n, now() - (n || ' minutes')::interval FROM generate_series(1, {BACKED_UP}) AS n;")  # fmt: skip
    name = back_up_with_volumes(custom, "shop", "e2e-shop")
    psql(f"DELETE FROM orders WHERE id > {PRODUCTION_AFTER}")
    yield name
    kubectl("delete", "namespace", "shop", "--wait=true", "--timeout=120s")


def spec(name: str, **extra: Any) -> dict[str, Any]:
    """The demo's restore-test spec ``name`` (in e2e/demo), with ``extra`` health checks merged in."""
    loaded: dict[str, Any] = yaml.safe_load((DEMO / name).read_text())
    loaded["healthChecks"].update(extra)
    return loaded


def lazarus_test(backup: str, test_spec: dict[str, Any], tmp_path: Path) -> tuple[int, str, str]:
    """``lazarus test`` from outside the cluster: exit status, output, and the test's name."""
    spec_file = tmp_path / f"spec-{unique_name('e2e')}.yaml"
    spec_file.write_text(yaml.safe_dump(test_spec))
    command = [sys.executable, "-m", "lazarus", "test", backup, "--spec", str(spec_file), "--timeout", "300"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=360)
    created = [line for line in done.stdout.splitlines() if line.startswith("created LazarusRestoreTest ")]
    assert created, f"lazarus test printed no test: {done.stdout}\n{done.stderr}"
    return done.returncode, done.stdout + done.stderr, created[0].split()[2].split("/")[1]


def lease_holder(coordination: client.CoordinationV1Api) -> str:
    """The pod that holds the leader Lease (identities are ``<pod name>_<random>``)."""
    lease = coordination.read_namespaced_lease("lazarus-leader", NAMESPACE)
    return str(lease.spec.holder_identity or "").rpartition("_")[0]


def test_both_replicas_run_as_installed_and_one_leads(core: client.CoreV1Api, api_client: client.ApiClient) -> None:
    pods = operator_pods(core)
    assert len(pods) == 2
    for pod in pods:
        (status,) = pod.status.container_statuses
        assert status.ready and status.restart_count == 0, (pod.metadata.name, status)
        assert status.image.endswith(f"localhost/lazarus/operator:{lazarus.__version__}")
        (container,) = pod.spec.containers
        assert container.security_context.read_only_root_filesystem is True
        assert container.security_context.capabilities.drop == ["ALL"]
        assert pod.spec.security_context.run_as_user == 65532 and pod.spec.security_context.run_as_non_root
    holder = lease_holder(client.CoordinationV1Api(api_client))
    assert holder in {pod.metadata.name for pod in pods}


def test_a_backup_restores_with_its_data_through_the_installed_operator(
    backup: str, custom: client.CustomObjectsApi, tmp_path: Path
) -> None:
    """Database, HTTP and custom checks pass on the restored copy; ``kubectl get`` shows the
    columns; ``lazarus report`` reads the test from outside the cluster."""
    status, output, name = lazarus_test(backup, spec("restoretest.yaml", customChecks={"pod": COUNT_ORDERS}), tmp_path)
    assert status == 0, output
    test = custom.get_namespaced_custom_object(*LRT, name)
    checks = {c["name"]: c for c in test["status"]["healthChecks"]["database"]["checks"]}
    assert checks["order-count"]["value"] == BACKED_UP, checks["order-count"]
    assert psql("SELECT count(*) FROM orders") == str(PRODUCTION_AFTER)  # production was not restored
    assert test["status"]["healthChecks"]["custom"]["logTail"] == [f"orders: {BACKED_UP}"]
    assert test["status"]["healthChecks"]["http"]["status"] == "Passed"
    table = kubectl("-n", NAMESPACE, "get", "lazarusrestoretests", name).splitlines()
    assert table[0].split() == ["NAME", "BACKUP", "PHASE", "RTO", "RESULT", "AGE"]
    assert table[1].split()[1:3] == [backup, "Succeeded"]
    report = subprocess.run([sys.executable, "-m", "lazarus", "report", "--format", "json"],
                            capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    assert name in report.stdout


def test_an_expectation_the_backup_cannot_meet_fails_with_its_reason(
    backup: str, custom: client.CustomObjectsApi, tmp_path: Path
) -> None:
    status, output, name = lazarus_test(backup, spec("restoretest-broken.yaml"), tmp_path)
    assert status != 0, output
    result = custom.get_namespaced_custom_object(*LRT, name)["status"]
    assert (result["phase"], result["reason"]) == ("Failed", "HealthChecksFailed"), result
    assert "order-count" in result["result"]["message"]


def test_deleting_the_leader_mid_restore_hands_over_with_exactly_one_velero_restore(
    backup: str, core: client.CoreV1Api, custom: client.CustomObjectsApi, api_client: client.ApiClient,
    restores_created: RestoresCreated,
) -> None:  # fmt: skip
    coordination = client.CoordinationV1Api(api_client)
    name = unique_name("e2e-failover")
    body = {"apiVersion": "lazarus.io/v1alpha1", "kind": "LazarusRestoreTest", "metadata": {"name": name},
            "spec": {"backupName": backup, **spec("restoretest.yaml")}}  # fmt: skip
    uid = custom.create_namespaced_custom_object(*LRT, body)["metadata"]["uid"]

    def phase() -> str:
        return str(custom.get_namespaced_custom_object(*LRT, name).get("status", {}).get("phase", ""))

    wait_until("the test to be restoring", lambda: phase() == "Restoring" and restores_created.of(uid), timeout=60)
    leader = lease_holder(coordination)
    deleted_at = time.monotonic()
    core.delete_namespaced_pod(leader, NAMESPACE)
    # SIGTERM releases the lease after the drain, so a follower leads well within the lease duration.
    wait_until("another replica to lead", lambda: lease_holder(coordination) not in ("", leader), timeout=60)
    print(f"hand-over after deleting the leader pod: {time.monotonic() - deleted_at:.1f}s")
    wait_until("the test's verdict", lambda: phase() in ("Succeeded", "Failed"), timeout=300, interval=1)
    test = custom.get_namespaced_custom_object(*LRT, name)
    assert test["status"]["phase"] == "Succeeded", test["status"].get("result")
    assert len(restores_created.of(uid)) == 1
    wait_rolled_out(core)
