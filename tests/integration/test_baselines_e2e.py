"""Cost and baselines end to end: a real ``lazarus run``, a real Velero, a real PostgreSQL.

Production runs PostgreSQL as a StatefulSet with its data on a PVC; its Secret holds the
connection string to the production Service. Each backup takes the volume (file-system backup);
the operator restores it into a sandbox, where the restored Secret's connection string leads the
checks to the restored server. Production's data changes between backups, and the baseline must
notice it in what the later backup brought back.
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, watch
from urllib3.exceptions import ProtocolError

from lazarus.baseline.store import configmap_name
from lazarus.cli import main
from tests.integration import database_servers as servers
from tests.integration.conftest import delete_namespace_and_wait
from tests.integration.kube import create_velero_object, unique_name, wait_backup_completed, wait_until
from tests.integration.operator_process import OperatorProcess
from tests.integration.test_restoretest import (
    GROUP,
    PLURAL,
    VERSION,
    _condition,
    _deployment,
    _get_test,
    _gone,
    _restores_of,
    _snapshot,
    _wait_phase,
)
from tests.integration.workloads import apply, ready_pod_ip

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.integration.test_restoretest", "tests.integration.test_checks_fixtures"]

OPERATOR_NAMESPACE = "lazarus-system"  # the operator fixture's --namespace (the default)
SCHEDULE_LABEL = "lazarus.io/schedule-name"  # lazarus.sources: tests of one source share a baseline
TABLE = "lazarus_e2e_orders"
TEST_WAIT = 180  # seconds a test may take here
NO_BASELINE = {"baseline": {"enabled": False}}  # tests of cost only leave no baseline ConfigMap
ROWS = 100


def _backup_now(custom: client.CustomObjectsApi, core: client.CoreV1Api, apps: client.AppsV1Api,
                production: dict[str, Any]) -> str:  # fmt: skip
    """A Completed backup of production as it is now, volumes included (which the fixture then
    holds production to)."""
    name = unique_name("bk")
    create_velero_object(custom, "Backup", "backups", name, {"includedNamespaces": [production["namespace"]],
                         "defaultVolumesToFsBackup": True, "ttl": "2h0m0s"})  # fmt: skip
    wait_backup_completed(custom, name, timeout=180)
    production["before"] = _snapshot(core, apps, production["namespace"])
    return name


def _run_test(custom: client.CustomObjectsApi, namespace: str, backup: str, source: str, **spec: Any) -> dict[str, Any]:
    """A test of ``backup`` labelled with the schedule ``source``, run to its end (and reported)."""
    name = unique_name("lrt")
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "LazarusRestoreTest",
        "metadata": {"name": name, "namespace": namespace, "labels": {SCHEDULE_LABEL: source}},
        "spec": {"backupName": backup, **spec},
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    _wait_phase(custom, namespace, name, {"Succeeded", "Failed"}, timeout=TEST_WAIT)

    def reported() -> dict[str, Any] | None:
        # The baseline is recorded and the cost measured when the end is reported (status.notifications).
        test = _get_test(custom, namespace, name)
        return test if test is not None and "notifications" in test["status"] else None

    return wait_until("the end to be reported", reported, timeout=60)


@pytest.fixture
def source(core: client.CoreV1Api) -> Iterator[str]:
    """A fresh backup source (its baseline ConfigMap is removed afterwards)."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    yield name
    try:
        core.delete_namespaced_config_map(configmap_name(f"schedule/{name}"), OPERATOR_NAMESPACE)
    except client.ApiException as exc:
        if exc.status != 404:
            raise


@pytest.fixture
def orders(core: client.CoreV1Api, production: dict[str, Any]) -> Callable[[str], None]:
    """Production's PostgreSQL (a StatefulSet on a PVC) with ``ROWS`` orders; returns a function
    that runs SQL on it."""
    import psycopg

    namespace = production["namespace"]
    apply(*servers.manifests("PG", namespace))
    ready_pod_ip(core, namespace, "postgres-0")
    pg = servers.settings("PG", namespace)

    def execute(statement: str) -> None:
        with psycopg.connect(host=pg["HOST"], port=pg["PORT"], user=pg["USER"], password=pg["PASSWORD"],
                             dbname=pg["DATABASE"], autocommit=True) as conn:
            conn.execute(statement)

    create = f"CREATE TABLE {TABLE} (id int PRIMARY KEY, customer text, total numeric(10,2), created_at timestamptz)"
    servers.first_contact("PG", lambda: execute(create))
    execute(f"INSERT INTO {TABLE} SELECT i, 'c' || i, i * 1.5, now() FROM generate_series(1, {ROWS}) AS i")
    return execute  # fmt: skip


@pytest.fixture
def shop(core: client.CoreV1Api, production: dict[str, Any], orders: Callable[[str], None]) -> dict[str, Any]:
    """Production's Secret with the connection string to its database Service; the checks to run."""
    pg = servers.settings("PG", production["namespace"])
    uri = f"postgresql://{pg['USER']}:{pg['PASSWORD']}@{pg['HOST']}.cluster.local:{pg['PORT']}/{pg['DATABASE']}"
    core.create_namespaced_secret(production["namespace"], client.V1Secret(
        metadata=client.V1ObjectMeta(name="shop-db"), string_data={"connection-string": uri}))  # fmt: skip
    return {
        "timeout": 60,
        "database": {
            "type": "postgres",
            "connectionString": {"secretRef": {"name": "shop-db", "key": "connection-string", "source": "Sandbox"}},
            "queries": [
                {"name": "order-count", "sql": f"SELECT count(*) FROM {TABLE}", "expectedRange": {"min": 1}},
                {"name": "order-columns", "expectedColumns": ["id", "customer"],
                 "sql": f"SELECT column_name FROM information_schema.columns WHERE table_name = '{TABLE}'"},
            ],
        },
    }  # fmt: skip


def test_a_second_backup_after_deleting_half_the_rows_is_flagged_while_the_first_passes(
    operator: OperatorProcess, core: client.CoreV1Api, apps: client.AppsV1Api, custom: client.CustomObjectsApi,
    production: dict[str, Any], namespace: str, source: str, orders: Callable[[str], None], shop: dict[str, Any],
) -> None:  # fmt: skip
    first_backup = _backup_now(custom, core, apps, production)
    # Production loses half its orders after the backup: the test of that backup still reads all.
    orders(f"DELETE FROM {TABLE} WHERE id % 2 = 0")
    first = _run_test(custom, namespace, first_backup, source, healthChecks=shop)
    status = first["status"]
    assert status["phase"] == "Succeeded", status
    assert status["baseline"]["result"] == "NoBaseline" and "sets the baseline" in status["baseline"]["message"]
    assert status["baseline"]["recorded"] is True
    assert status["healthChecks"]["database"]["checks"][0]["value"] == ROWS
    stored = core.read_namespaced_config_map(configmap_name(f"schedule/{source}"), OPERATOR_NAMESPACE)
    assert stored.metadata.annotations["lazarus.io/baseline-source"] == f"schedule/{source}"

    second = _run_test(custom, namespace, _backup_now(custom, core, apps, production), source, healthChecks=shop)
    status = second["status"]
    assert status["phase"] == "Failed" and status["reason"] == "BaselineDrift", status
    assert status["healthChecks"]["database"]["status"] == "Passed"  # the range check alone passes
    assert status["baseline"]["findings"] == [
        {"type": "ValueDropped", "subject": "database/order-count",
         "message": "database/order-count: value 100 → 50 (-50%)"}
    ]  # fmt: skip
    assert status["baseline"]["baselineTest"] == f"{namespace}/{first['metadata']['name']}"
    assert "recorded" not in status["baseline"]  # the last good baseline stays


def test_a_loss_spread_over_three_backups_is_flagged_against_the_highest_of_the_good_ones(
    operator: OperatorProcess, core: client.CoreV1Api, apps: client.AppsV1Api, custom: client.CustomObjectsApi,
    production: dict[str, Any], namespace: str, source: str, orders: Callable[[str], None], shop: dict[str, Any],
) -> None:  # fmt: skip
    results, backups = [], []
    for keep in (ROWS, 85, 70):  # -15 % from one backup to the next: never more than 20 %
        orders(f"DELETE FROM {TABLE} WHERE id > {keep}")
        backups.append(_backup_now(custom, core, apps, production))
        results.append(_run_test(custom, namespace, backups[-1], source, healthChecks=shop)["status"])
    assert [r["baseline"]["result"] for r in results] == ["NoBaseline", "Matched", "Drifted"], results[-1]
    assert results[1]["baseline"]["recorded"] is True and results[2]["reason"] == "BaselineDrift"
    assert results[2]["baseline"]["findings"][0]["message"] == (
        f"database/order-count: value 100 → 70 (-30%) (from backup {backups[0]}, the highest of the last 2 good tests)"
    )


def test_lazarus_test_counts_as_a_schedule_s_and_prints_the_baseline_and_cost(
    operator: OperatorProcess, core: client.CoreV1Api, apps: client.AppsV1Api, custom: client.CustomObjectsApi,
    production: dict[str, Any], namespace: str, source: str, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    backup = _backup_now(custom, core, apps, production)
    capsys.readouterr()
    code = main(["test", backup, "--schedule", source, "--namespace", namespace, "--timeout", str(TEST_WAIT),
                 "--kubeconfig", os.environ["KUBECONFIG"]])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"baseline: NoBaseline: first test of schedule/{source}" in out and "(now the baseline)" in out, out
    assert re.search(r"^cost: [0-9.]+ USD \([0-9.]+ CPU core-seconds", out, re.MULTILINE), out


def test_a_dropped_column_is_flagged_as_a_warning_when_on_drift_is_warn(
    operator: OperatorProcess, core: client.CoreV1Api, apps: client.AppsV1Api, custom: client.CustomObjectsApi,
    production: dict[str, Any], namespace: str, source: str, orders: Callable[[str], None], shop: dict[str, Any],
) -> None:  # fmt: skip
    warn = {"healthChecks": shop, "baseline": {"onDrift": "Warn"}}
    assert _run_test(custom, namespace, _backup_now(custom, core, apps, production), source, **warn)[
        "status"]["phase"] == "Succeeded"  # fmt: skip
    orders(f"ALTER TABLE {TABLE} DROP COLUMN total")
    second = _run_test(custom, namespace, _backup_now(custom, core, apps, production), source, **warn)
    status = second["status"]
    assert status["phase"] == "Succeeded" and status["baseline"]["result"] == "Drifted", status
    assert [(f["type"], f["subject"]) for f in status["baseline"]["findings"]] == [
        ("NamesRemoved", "database/order-columns")
    ]
    events = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={second['metadata']['name']}")
    assert any(e.reason == "BaselineDrift" and e.type == "Warning" for e in events.items)


def test_a_removed_deployment_is_flagged(
    operator: OperatorProcess, core: client.CoreV1Api, apps: client.AppsV1Api, custom: client.CustomObjectsApi,
    production: dict[str, Any], namespace: str, source: str,
) -> None:  # fmt: skip
    first = _run_test(custom, namespace, _backup_now(custom, core, apps, production), source)
    assert first["status"]["phase"] == "Succeeded" and first["status"]["baseline"]["recorded"] is True
    apps.delete_namespaced_deployment("shop", production["namespace"])
    wait_until("the Deployment to be gone", lambda: not apps.list_namespaced_deployment(production["namespace"]).items)
    second = _run_test(custom, namespace, _backup_now(custom, core, apps, production), source)
    status = second["status"]
    assert status["phase"] == "Failed" and status["reason"] == "BaselineDrift", status
    assert {"type": "KindRemoved", "subject": "apps/Deployment",
            "message": "apps/Deployment: the backup held 1, now none"} in status["baseline"]["findings"]  # fmt: skip


def _sized_deployment(name: str, replicas: int, cpu: str, memory: str) -> client.V1Deployment:
    deployment = _deployment(name)
    deployment.spec.replicas = replicas
    deployment.spec.template.spec.containers[0].resources = client.V1ResourceRequirements(
        requests={"cpu": cpu, "memory": memory}
    )
    return deployment


@pytest.fixture
def sized_production(core: client.CoreV1Api, apps: client.AppsV1Api) -> Iterator[Callable[[int, str], str]]:
    """Makes namespaces with one Deployment of ``replicas`` × ``cpu`` (and 256Mi) each."""
    made: list[str] = []

    def make(replicas: int, cpu: str) -> str:
        name = unique_name("prod")
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        apps.create_namespaced_deployment(name, _sized_deployment("app", replicas, cpu, "256Mi"))
        made.append(name)
        return name

    yield make
    for name in made:
        delete_namespace_and_wait(core, name)


def test_cost_is_recorded_and_grows_with_the_sandbox_s_size(
    operator: OperatorProcess, core: client.CoreV1Api, apps: client.AppsV1Api, custom: client.CustomObjectsApi,
    namespace: str, sized_production: Callable[[int, str], str],
) -> None:  # fmt: skip
    costs = {}
    for size, (replicas, cpu) in {"small": (1, "100m"), "large": (4, "1")}.items():
        production = {"namespace": sized_production(replicas, cpu)}
        test = _run_test(custom, namespace, _backup_now(custom, core, apps, production), f"cost-{size}", **NO_BASELINE)
        assert test["status"]["phase"] == "Succeeded", test["status"]
        costs[size] = test["status"]["cost"]
        assert costs[size]["pods"] == replicas and costs[size]["currency"] == "USD"
        assert costs[size]["cpuCoreSeconds"] > 0 and costs[size]["estimate"] > 0
    # The large sandbox holds 40 times the small one's CPU and 4 times its memory, for about as long.
    assert costs["large"]["cpuCoreSeconds"] > costs["small"]["cpuCoreSeconds"]
    assert costs["large"]["estimate"] > costs["small"]["estimate"]
    metrics = operator.get("/metrics").text
    assert 'lazarus_test_cost_total{currency="USD",source="schedule/cost-large"}' in metrics


@pytest.fixture
def restore_deletions(custom: client.CustomObjectsApi) -> Iterator[dict[str, str]]:
    """Per Velero Restore deleted while the fixture runs, its phase when the deletion was first
    seen (the first watch event with a deletionTimestamp, else the DELETED event)."""
    seen: dict[str, str] = {}
    stream = watch.Watch()

    def run() -> None:
        try:
            for event in stream.stream(custom.list_namespaced_custom_object, "velero.io", "v1", "velero", "restores",
                                       timeout_seconds=600):  # fmt: skip
                restore = event["object"]
                if restore["metadata"].get("deletionTimestamp") or event["type"] == "DELETED":
                    seen.setdefault(restore["metadata"]["name"], (restore.get("status") or {}).get("phase") or "")
        except ProtocolError:
            return  # the watch was closed (the fixture's end); a deletion not seen fails the test's wait

    watcher = threading.Thread(target=run, daemon=True)
    watcher.start()
    yield seen
    stream.stop()


def test_max_cost_stops_an_oversize_test_and_cleans_it_up(
    operator: OperatorProcess, core: client.CoreV1Api, apps: client.AppsV1Api, custom: client.CustomObjectsApi,
    namespace: str, sized_production: Callable[[int, str], str], restore_deletions: dict[str, str],
) -> None:  # fmt: skip
    production = {"namespace": sized_production(4, "16")}  # 64 CPU: about 2.56 USD per hour at the default price
    backup = _backup_now(custom, core, apps, production)
    test = _run_test(custom, namespace, backup, "oversize", cost={"maxCost": 0.05}, **NO_BASELINE)
    status = test["status"]
    assert status["phase"] == "Failed" and status["reason"] == "CostLimitExceeded", status
    # Stopped on the restored Deployment's plan (4 replicas of 16 CPU), whether or not its pods ran yet.
    assert "more than maxCost 0.05 USD" in status["message"] and "64 CPU" in status["message"], status["message"]
    sandboxes = status["sandboxNamespaces"]
    wait_until("the sandbox to be removed", lambda: _gone(core, sandboxes), timeout=120)
    wait_until("the Velero restore to be removed", lambda: not _restores_of(custom, test["metadata"]["uid"]))
    assert _condition(_get_test(custom, namespace, test["metadata"]["name"]) or {}, "CleanupCompleted") == "True"
    # The test was stopped while Velero was restoring: its Restore is deleted only once Velero has
    # finished it (a running one deleted stalls Velero's restore finalizer for every later restore).
    restore = f"lazarus-{test['metadata']['uid'][:18]}"
    deleted_in = wait_until("the Restore's deletion to be seen", lambda: restore_deletions.get(restore), timeout=30)
    assert deleted_in in ("Completed", "PartiallyFailed", "Failed"), deleted_in


def test_the_sandbox_quota_refuses_pods_beyond_it(
    operator: OperatorProcess, core: client.CoreV1Api, apps: client.AppsV1Api, custom: client.CustomObjectsApi,
    namespace: str, sized_production: Callable[[int, str], str],
) -> None:  # fmt: skip
    production = {"namespace": sized_production(1, "2")}
    test = _run_test(custom, namespace, _backup_now(custom, core, apps, production), "quota",
                     cost={"quota": {"cpu": "1"}}, workloads={"readyTimeout": "20s"}, **NO_BASELINE)  # fmt: skip
    status = test["status"]
    # The backup holds the app's Pod too: Velero's create of it is refused by the quota.
    assert (status["phase"], status["reason"]) == ("Failed", "RestorePartiallyFailed"), status["message"]
    refused = [m for m in status["restore"]["errorMessages"] if "exceeded quota" in m]
    assert refused, status["restore"]["errorMessages"]
