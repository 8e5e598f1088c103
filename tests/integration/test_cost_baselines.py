"""Cost and baselines against the real test bed, without the lifecycle controller.

- Baselines: health checks run against real PostgreSQL and MariaDB restored by Velero (production
  runs them as StatefulSets on PVCs; each backup takes the volumes and is restored into a sandbox);
  their figures are compared with a baseline stored in a real ConfigMap; deleting half the rows,
  then dropping a column, between backups is flagged; reset works.
- Cost: real pods (kwok runs them) and a bound claim; ``measure_cost`` matches a computation from
  the objects' own timestamps and requests, and grows with size and duration.
- Quota: the ResourceQuota and LimitRange bodies are accepted by the API server and refuse a pod
  beyond the quota.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client

from lazarus.baseline import BaselineStore, compare_with_baseline, record_baseline
from lazarus.cli import main
from lazarus.cost import Cost, Prices, measure_cost
from lazarus.cost.quota import sandbox_quota_objects
from lazarus.kube.client import ApiError, Rest
from lazarus.lifecycle.durations import format_time, parse_time
from tests.integration import database_servers as servers
from tests.integration.conftest import delete_namespace_and_wait
from tests.integration.kube import ON_KWOK, unique_name, wait_until
from tests.integration.test_checks_fixtures import Sandbox
from tests.integration.workloads import apply, back_up_with_volumes, create_namespace, ready_pod_ip, restore_into

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.integration.test_checks_fixtures"]

TABLE = "lazarus_it_baseline"
ROWS = 100
SOURCE = "schedule/it-baseline"
PRICES = Prices(cpu_hour=0.04, memory_gib_hour=0.005, storage_gib_hour=0.00014, currency="USD")


# ------------------------------------------------------------------------------- baselines


def _postgres(settings: dict[str, str]) -> Callable[[str], None]:
    import psycopg

    def execute(statement: str) -> None:
        with psycopg.connect(host=settings["HOST"], port=settings["PORT"], user=settings["USER"],
                             password=settings["PASSWORD"], dbname=settings["DATABASE"], autocommit=True) as conn:
            conn.execute(statement)

    return execute  # fmt: skip


def _mysql(settings: dict[str, str]) -> Callable[[str], None]:
    import pymysql

    def execute(statement: str) -> None:
        conn = pymysql.connect(host=settings["HOST"], port=int(settings["PORT"]), user=settings["USER"],
                               password=settings["PASSWORD"], database=settings["DATABASE"], autocommit=True)
        with conn, conn.cursor() as cursor:
            cursor.execute(statement)

    return execute  # fmt: skip


ENGINES = {"PG": ("postgres", _postgres, "generate_series(1, 100)"), "MYSQL": ("mysql", _mysql, "seq_1_to_100")}


@dataclass
class Production:
    """A production namespace whose database (StatefulSet on a PVC) holds ``ROWS`` orders."""

    engine: str
    namespace: str
    execute: Callable[[str], None]
    """Runs SQL on production's database."""
    spec: dict[str, Any]
    """The database check of the orders, as a test of a restored copy would name it."""


@pytest.fixture(params=list(ENGINES))
def database(request: pytest.FixtureRequest, core: client.CoreV1Api) -> Iterator[Production]:
    """Production with a real database of ``ROWS`` orders, and the check spec for its restored copies."""
    key = request.param
    type_, connect, series = ENGINES[key]
    namespace = create_namespace(core, f"bl-{type_}")
    try:
        apply(*servers.manifests(key, namespace))
        server = servers.SERVERS[key]
        ready_pod_ip(core, namespace, f"{server.service}-0")
        execute = connect(servers.settings(key, namespace))
        create = f"CREATE TABLE {TABLE} (id int PRIMARY KEY, customer text, total numeric(10,2), created_at timestamp)"
        servers.first_contact(key, lambda: execute(create))
        if key == "PG":
            execute(f"INSERT INTO {TABLE} SELECT i, 'c' || i, i * 1.5, now() FROM {series} AS i")
        else:
            execute(f"INSERT INTO {TABLE} SELECT seq, CONCAT('c', seq), seq * 1.5, now() FROM {series}")
        spec = {
            "name": "shop",
            "type": type_,
            "serviceRef": {"name": server.service, "port": server.port},
            "database": servers.DATABASE,
            "credentialsSecretRef": {"name": server.credentials_secret},
            "queries": [
                {"name": "count", "sql": f"SELECT count(*) FROM {TABLE}", "expectedRange": {"min": 1}},
                {"name": "columns", "expectedColumns": ["id", "customer"],
                 "sql": f"SELECT column_name FROM information_schema.columns WHERE table_name = '{TABLE}'"},
                {"name": "sample", "sql": f"SELECT * FROM {TABLE} ORDER BY id LIMIT 5"},
            ],
        }  # fmt: skip
        yield Production(key, namespace, execute, spec)
    finally:
        delete_namespace_and_wait(core, namespace)


@pytest.fixture
def restored_copy(
    core: client.CoreV1Api, custom: client.CustomObjectsApi, sandbox: Sandbox
) -> Iterator[Callable[[Production], Sandbox]]:
    """Backs production up now (volumes included) and restores that backup into a new sandbox
    namespace, its database ready; the sandbox standing for production. Removed afterwards."""
    made: list[str] = []

    def restore(production: Production) -> Sandbox:
        backup = back_up_with_volumes(custom, production.namespace)
        target = unique_name("lzc-sbx")
        made.append(target)
        restore_into(custom, backup, {production.namespace: target})
        ready_pod_ip(core, target, f"{servers.SERVERS[production.engine].service}-0")
        copy = servers.settings(production.engine, target)
        servers.first_contact(production.engine, lambda: ENGINES[production.engine][1](copy)("SELECT 1"))
        return dataclasses.replace(sandbox, namespace=target, source=production.namespace)

    yield restore
    for name in made:
        delete_namespace_and_wait(core, name)


def _tested(sandbox: Sandbox, spec: dict[str, Any], uid: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A test object of the sandbox that ran ``spec``'s checks, as the controller would hold it."""
    report = sandbox.run({"retries": 0, "databases": [spec]}, uid=uid)
    test = sandbox.test({"databases": [spec]}, name=f"bl-{uid[:8]}", uid=uid)
    test["status"] = {
        "phase": "Succeeded" if report.passed else "Failed",
        "completionTime": format_time(datetime.now(UTC)),
        "parity": {"expected": {"apps/Deployment": 1, "ConfigMap": 2}},
        "healthChecks": report.status,
        "result": {"rto": 12.0},
    }
    return test, report.status


def _decide(store: BaselineStore, test: dict[str, Any], health: dict[str, Any]) -> dict[str, Any]:
    check = compare_with_baseline(store, test, SOURCE, health_checks=health, rto=test["status"]["result"]["rto"])
    test["status"]["baseline"] = check.status
    if check.fails_test:
        test["status"]["phase"] = "Failed"
    test["status"]["baseline"].update(record_baseline(store, test, SOURCE).get("baseline", {}))
    return test["status"]["baseline"]


def test_real_query_results_carry_their_figures_and_drift_is_flagged(
    database: Production, restored_copy: Callable[[Production], Sandbox], sandbox: Sandbox,
    api_client: client.ApiClient,
) -> None:  # fmt: skip
    """Each step tests a backup restored into a sandbox; production changes between backups (and,
    after the first, before its copy is tested: the copy must hold the backup's rows)."""
    key, spec, execute = database.engine, database.spec, database.execute
    store = BaselineStore(Rest(api_client), sandbox.test_namespace)
    store.reset(SOURCE)

    full = restored_copy(database)
    execute(f"DELETE FROM {TABLE} WHERE id % 2 = 0")  # half the rows, after the first backup
    first, health = _tested(full, spec, f"first-{key.lower()}-0000")
    checks = {c["name"]: c for c in health["databases"][0]["checks"]}
    assert checks["count"]["value"] == ROWS and checks["count"]["rows"] == 1, checks
    assert checks["columns"]["names"] == ["created_at", "customer", "id", "total"]
    assert checks["sample"]["columns"] == ["id", "customer", "total", "created_at"] and checks["sample"]["rows"] == 5
    status = _decide(store, first, health)
    assert status["result"] == "NoBaseline" and status["recorded"] is True, status

    unchanged, health = _tested(full, spec, f"again-{key.lower()}-0000")
    assert _decide(store, unchanged, health)["result"] == "Matched"

    halved, health = _tested(restored_copy(database), spec, f"halved-{key.lower()}-0000")
    assert halved["status"]["phase"] == "Succeeded"  # the range check alone does not see it
    status = _decide(store, halved, health)
    assert halved["status"]["phase"] == "Failed" and status["result"] == "Drifted"
    assert status["findings"] == [{"type": "ValueDropped", "subject": "databases/shop/count",
                                   "message": "databases/shop/count: value 100 → 50 (-50%)"}]  # fmt: skip

    execute(f"ALTER TABLE {TABLE} DROP COLUMN total")
    dropped_copy = restored_copy(database)
    dropped, health = _tested(dropped_copy, spec, f"dropped-{key.lower()}-000")
    status = _decide(store, dropped, health)
    assert {(f["type"], f["subject"]) for f in status["findings"]} == {
        ("ValueDropped", "databases/shop/count"),
        ("NamesRemoved", "databases/shop/columns"),
        ("ColumnsRemoved", "databases/shop/sample"),
    }
    assert store.load(SOURCE).snapshot.test_uid == f"again-{key.lower()}-0000"  # type: ignore[union-attr]

    assert store.reset(SOURCE) is True
    after_reset, health = _tested(dropped_copy, spec, f"reset-{key.lower()}-00000")
    assert _decide(store, after_reset, health)["result"] == "NoBaseline"
    store.reset(SOURCE)


def test_the_baseline_configmap_round_trip_on_the_api_server(
    api_client: client.ApiClient, core: client.CoreV1Api, namespace: str, sandbox: Sandbox,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = BaselineStore(Rest(api_client), namespace)
    test = sandbox.test({}, uid="cm-1")
    test["status"] = {"phase": "Succeeded", "completionTime": "2026-11-29T12:00:00Z",
                      "parity": {"expected": {"apps/Deployment": 1}}, "baseline": {"result": "NoBaseline"}}  # fmt: skip
    assert record_baseline(store, test, "policy/ops/shop") == {"baseline": {"recorded": True}}
    stored = core.list_namespaced_config_map(namespace, label_selector="lazarus.io/baseline=true").items
    assert len(stored) == 1 and stored[0].metadata.annotations == {"lazarus.io/baseline-source": "policy/ops/shop"}
    assert stored[0].data["source"] == "policy/ops/shop"
    loaded = store.load("policy/ops/shop")
    assert loaded is not None and loaded.snapshot is not None and loaded.snapshot.kinds == {"apps/Deployment": 1}
    stale = loaded
    newer = {**test, "metadata": {**test["metadata"], "uid": "cm-2"}}
    newer["status"] = {**test["status"], "completionTime": "2026-11-30T12:00:00Z"}
    record_baseline(store, newer, "policy/ops/shop")
    moved = store.load("policy/ops/shop")
    assert moved is not None and [s.test_uid for s in moved.window(5)] == ["cm-2", "cm-1"]  # cm-1 into the history
    with pytest.raises(ApiError) as conflict:  # a write based on a stale read is refused
        store.save("policy/ops/shop", loaded.snapshot, stale)
    assert conflict.value.conflict
    core.patch_namespaced_config_map(stored[0].metadata.name, namespace, {"data": {"snapshot.json": "{broken"}})
    assert store.load("policy/ops/shop").snapshot is None  # type: ignore[union-attr]  # replaced by the next
    record_baseline(store, newer, "policy/ops/shop")

    def cli(*args: str) -> tuple[int, str]:
        capsys.readouterr()  # drop earlier log lines
        code = main(["baseline", *args, "policy/ops/shop", "--namespace", namespace,
                     "--kubeconfig", os.environ["KUBECONFIG"]])  # fmt: skip
        return code, capsys.readouterr().out

    code, shown = cli("show")
    assert code == 0 and json.loads(shown)["test_uid"] == "cm-2" and json.loads(shown)["history"] == [], shown
    assert cli("reset") == (0, "baseline of policy/ops/shop reset: the next successful test sets a new one\n")
    assert cli("show")[0] == 1 and cli("reset")[0] == 1 and store.load("policy/ops/shop") is None


# ------------------------------------------------------------------------------- cost


def _deployment(name: str, replicas: int, cpu: str, memory: str) -> client.V1Deployment:
    labels = {"app": name}
    container = client.V1Container(
        name=name, image=f"registry.invalid/{name}:1",
        resources=client.V1ResourceRequirements(requests={"cpu": cpu, "memory": memory}),
    )  # fmt: skip
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[container], node_selector=ON_KWOK["nodeSelector"], tolerations=ON_KWOK["tolerations"]
                ),
            ),
        ),
    )


def _running(core: client.CoreV1Api, namespace: str, count: int) -> list[Any]:
    def probe() -> list[Any] | None:
        # Exactly these pods: a pod being replaced (e.g. evicted from a fake node that missed a
        # heartbeat on a loaded machine) would count in the measurement but not by hand.
        pods = core.list_namespaced_pod(namespace).items
        ready = [
            p for p in pods if p.spec.node_name and p.status.phase == "Running" and not p.metadata.deletion_timestamp
        ]
        return ready if len(ready) == len(pods) == count else None

    return wait_until(f"{count} running pods in {namespace}", probe, timeout=60)


def _test_of(namespace: str, start: datetime) -> dict[str, Any]:
    return {"metadata": {"name": "cost", "namespace": namespace, "uid": "cost-1"}, "spec": {},
            "status": {"startTime": format_time(start), "sandboxNamespaces": [namespace]}}  # fmt: skip


@pytest.fixture
def claim_bound(core: client.CoreV1Api, namespace: str) -> Iterator[str]:
    """A 2Gi claim bound to a PersistentVolume made for it (the binder is the real controller; the
    volume's driver does not exist: nothing mounts it)."""
    volume = unique_name("lz-pv")
    core.create_persistent_volume(
        client.V1PersistentVolume(
            metadata=client.V1ObjectMeta(name=volume),
            spec=client.V1PersistentVolumeSpec(
                capacity={"storage": "2Gi"}, access_modes=["ReadWriteOnce"], storage_class_name="lz-manual",
                csi=client.V1CSIPersistentVolumeSource(driver="lazarus.test.invalid", volume_handle=volume),
                claim_ref=client.V1ObjectReference(namespace=namespace, name="data"),
            ),
        )
    )  # fmt: skip
    core.create_namespaced_persistent_volume_claim(
        namespace,
        client.V1PersistentVolumeClaim(
            metadata=client.V1ObjectMeta(name="data"),
            spec=client.V1PersistentVolumeClaimSpec(
                access_modes=["ReadWriteOnce"], storage_class_name="lz-manual", volume_name=volume,
                resources=client.V1VolumeResourceRequirements(requests={"storage": "2Gi"}),
            ),
        ),
    )  # fmt: skip
    wait_until("the claim to bind", lambda: core.read_namespaced_persistent_volume_claim("data", namespace)
               .status.phase == "Bound", timeout=60)  # fmt: skip
    yield "data"
    core.delete_namespaced_persistent_volume_claim("data", namespace)
    core.delete_persistent_volume(volume)


def test_cost_of_real_pods_and_a_claim_matches_their_requests_and_grows(
    api_client: client.ApiClient, core: client.CoreV1Api, apps: client.AppsV1Api, namespace: str, claim_bound: str
) -> None:
    start = parse_time(format_time(datetime.now(UTC) - timedelta(seconds=1)))  # status times have seconds only
    apps.create_namespaced_deployment(namespace, _deployment("web", 2, "500m", "256Mi"))
    _running(core, namespace, 2)
    test = _test_of(namespace, start)
    rest = Rest(api_client)
    at = parse_time(format_time(datetime.now(UTC) + timedelta(seconds=30)))  # whole seconds, as status has

    def measured_with_the_pods_it_saw() -> tuple[Cost, list[Any]] | None:
        """A measurement and the pods it saw (the same before and after it, or try again)."""
        before = core.list_namespaced_pod(namespace).items
        cost = measure_cost(rest, test, PRICES, now=at)
        after = core.list_namespaced_pod(namespace).items
        same = {(p.metadata.uid, p.metadata.deletion_timestamp) for p in before} == {
            (p.metadata.uid, p.metadata.deletion_timestamp) for p in after
        }
        return (cost, after) if same else None

    first, pods = wait_until("a measurement while the pods stay the same", measured_with_the_pods_it_saw)
    # By hand, from the objects: each pod 0.5 core and 0.25 GiB from its creation until it is
    # deleted (or the end); the claim 2 GiB.
    claim = core.read_namespaced_persistent_volume_claim(claim_bound, namespace)
    held = [
        (min(p.metadata.deletion_timestamp or at, at) - max(p.metadata.creation_timestamp, start)).total_seconds()
        for p in pods
        if p.spec.node_name
    ]
    claim_seconds = (at - max(claim.metadata.creation_timestamp, start)).total_seconds()
    assert first.usage.cpu == pytest.approx(sum(0.5 * s for s in held), rel=1e-6)
    assert first.usage.memory_gib == pytest.approx(sum(0.25 * s for s in held), rel=1e-6)
    assert first.usage.storage_gib == pytest.approx(2 * claim_seconds, rel=1e-6)
    expected = (sum(held) * (0.5 * 0.04 + 0.25 * 0.005) + 2 * claim_seconds * 0.00014) / 3600
    assert first.estimate == pytest.approx(expected, rel=1e-6) and first.estimate > 0
    assert first.to_status()["pods"] == len(pods) >= 2 and first.to_status()["volumes"] == 1

    later = measure_cost(rest, test, PRICES, now=at + timedelta(minutes=10))
    assert later.estimate > first.estimate  # duration
    apps.patch_namespaced_deployment_scale(namespace=namespace, name="web", body={"spec": {"replicas": 4}})
    _running(core, namespace, 4)
    bigger = measure_cost(rest, test, PRICES, now=at + timedelta(minutes=10))
    assert bigger.usage.cpu > later.usage.cpu and bigger.held.cpu == 2.0  # size

    # A finished test is measured up to its report (``now``), and at least to its completion.
    finished = {**test, "status": {**test["status"], "completionTime": format_time(at + timedelta(minutes=20))}}
    for now, window_end in ((at, at + timedelta(minutes=20)), (at + timedelta(hours=5), at + timedelta(hours=5))):
        running_until = measure_cost(rest, test, PRICES, now=window_end).usage
        assert measure_cost(rest, finished, PRICES, now=now).usage == running_until


def test_the_sandbox_quota_is_accepted_and_refuses_pods_beyond_it(
    api_client: client.ApiClient, apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str
) -> None:
    rest = Rest(api_client)
    test = {"metadata": {"name": "q", "namespace": namespace, "uid": "quota-1"},
            "spec": {"cost": {"quota": {"cpu": "1", "memory": "1Gi"}}}}  # fmt: skip
    for path, body in sandbox_quota_objects(test, namespace):
        rest.request("POST", path, body=body)
    apps.create_namespaced_deployment(namespace, _deployment("big", 1, "2", "256Mi"))
    small = _deployment("small", 1, "100m", "64Mi")
    small.spec.template.spec.containers[0].resources = None  # no requests: the LimitRange gives defaults
    apps.create_namespaced_deployment(namespace, small)

    def refused() -> str | None:
        conditions = apps.read_namespaced_deployment_status("big", namespace).status.conditions or []
        return next((c.message for c in conditions if c.type == "ReplicaFailure" and "exceeded quota" in c.message),
                    None)  # fmt: skip

    assert "lazarus-sandbox-quota" in wait_until("the quota to refuse the big pod", refused, timeout=60)
    (pod,) = _running(core, namespace, 1)
    assert pod.spec.containers[0].resources.requests == {"cpu": "100m", "memory": "128Mi"}
