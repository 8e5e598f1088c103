"""Cost of a test's sandbox: quantities, the integration of requests over time (checked against a
hand computation), the maxCost guard, and the sandbox quota."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lazarus.cost import CostGuard, Prices, measure_cost, remaining_seconds
from lazarus.cost.quantity import parse_quantity
from lazarus.cost.quota import sandbox_quota_objects
from lazarus.cost.usage import Resources, integrate, planned_requests, pod_requests
from lazarus.lifecycle.durations import format_time

START = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
END = START + timedelta(hours=1)
PRICES = Prices(cpu_hour=0.04, memory_gib_hour=0.005, storage_gib_hour=0.00014, currency="USD")


def at(seconds: float) -> str:
    return format_time(START + timedelta(seconds=seconds))


def container(cpu: str | None, memory: str | None, **extra: Any) -> dict[str, Any]:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    return {"name": "c", "resources": {"requests": requests}, **extra}


def pod(containers: list[dict[str, Any]], created: float = 0, node: str | None = "kwok-0", **status: Any):
    spec: dict[str, Any] = {"containers": containers}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": "p", "creationTimestamp": at(created)}, "spec": spec, "status": status}


def claim(size: str, created: float, phase: str = "Bound") -> dict[str, Any]:
    return {
        "metadata": {"name": "data", "creationTimestamp": at(created)},
        "spec": {"resources": {"requests": {"storage": size}}},
        "status": {"phase": phase, "capacity": {"storage": size}} if phase == "Bound" else {"phase": phase},
    }


def finished_job_pod(seconds: float) -> dict[str, Any]:
    terminated = {"state": {"terminated": {"finishedAt": at(seconds)}}}
    return pod([container("100m", "128Mi")], created=0, phase="Succeeded", containerStatuses=[terminated])


def test_quantities() -> None:
    assert parse_quantity("250m") == 0.25
    assert parse_quantity("2") == 2.0
    assert parse_quantity("512Mi") == 512 * 2**20
    assert parse_quantity("1G") == 1e9
    assert parse_quantity("1e3") == 1000.0
    assert parse_quantity("1.5Gi") == 1.5 * 2**30
    assert parse_quantity(3) == 3.0
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        parse_quantity("12 cores")


def test_a_known_sandbox_matches_the_hand_computation() -> None:
    """One hour: an app pod (250m+750m CPU, 512Mi+512Mi) for the whole hour, a check Job pod
    (100m, 128Mi) that ran 60 s, a 10Gi bound claim for the last 30 minutes; an unscheduled pod
    and an unbound claim cost nothing."""
    pods = [
        pod([container("250m", "512Mi"), container("750m", "512Mi")]),
        finished_job_pod(60),
        pod([container("8", "64Gi")], node=None),
    ]
    claims = [claim("10Gi", created=1800), claim("100Gi", created=0, phase="Pending")]
    usage = integrate(pods, claims, START, END)
    # cpu: 1 core × 3600 s + 0.1 × 60 s; memory: 1 GiB × 3600 s + 0.125 GiB × 60 s; storage: 10 GiB × 1800 s.
    assert usage.cpu == pytest.approx(3606.0)
    assert usage.memory_gib == pytest.approx(3607.5)
    assert usage.storage_gib == pytest.approx(18000.0)
    # 3606/3600 × 0.04 + 3607.5/3600 × 0.005 + 18000/3600 × 0.00014
    assert PRICES.of(usage) == pytest.approx(0.0400667 + 0.0050104 + 0.0007, abs=1e-6)


def test_cost_grows_with_size_and_duration() -> None:
    small = [pod([container("500m", "1Gi")])]
    large = [pod([container("2", "4Gi")])]
    hour = PRICES.of(integrate(small, [], START, END))
    assert PRICES.of(integrate(large, [], START, END)) == pytest.approx(4 * hour)
    assert PRICES.of(integrate(small, [], START, START + timedelta(minutes=30))) == pytest.approx(hour / 2)


def test_pod_requests_follow_the_scheduler_rules() -> None:
    spec = pod([container("1", "1Gi")])
    spec["spec"]["initContainers"] = [container("3", "256Mi"), container("200m", "64Mi", restartPolicy="Always")]
    spec["spec"]["overhead"] = {"cpu": "100m"}
    # sidecar adds to the app container (1.2 cores); the ordinary init container needs 3 cores.
    assert pod_requests(spec) == Resources(cpu=3.1, memory_gib=1.0625)
    assert pod_requests(pod([{"name": "no-requests"}])) == Resources()


def test_a_deleted_pod_counts_until_its_deletion() -> None:
    going = pod([container("1", None)])
    going["metadata"]["deletionTimestamp"] = at(600)
    assert integrate([going], [], START, END).cpu == pytest.approx(600.0)


class FakeRest:
    """Serves pod and claim lists per namespace; counts requests."""

    def __init__(self, pods: list[dict[str, Any]], claims: list[dict[str, Any]]) -> None:
        self.items = {"pods": pods, "persistentvolumeclaims": claims}
        self.calls: list[str] = []

    def request(self, method: str, path: str, **_: Any) -> dict[str, Any]:
        self.calls.append(path)
        return {"items": self.items[path.rsplit("/", 1)[-1]]}


def running_test(phase: str = "Verifying", max_cost: float | None = None, started: float = 0) -> dict[str, Any]:
    spec: dict[str, Any] = {"backupName": "b", "workloads": {"readyTimeout": "10m"}, "healthChecks": {"timeout": 300}}
    if max_cost is not None:
        spec["cost"] = {"maxCost": max_cost}
    return {
        "metadata": {"name": "t", "namespace": "ns", "uid": "u-1"},
        "spec": spec,
        "status": {"phase": phase, "startTime": at(started), "verifyStartTime": at(started),
                   "sandboxNamespaces": ["sbx-a"]},
    }  # fmt: skip


def test_measure_cost_reads_the_sandbox_and_reports_status() -> None:
    rest = FakeRest([pod([container("1", "1Gi")])], [claim("10Gi", created=0)])
    test = running_test()
    test["status"]["completionTime"] = at(3600)
    status = measure_cost(rest, test, PRICES, now=START).to_status()  # type: ignore[arg-type]
    assert rest.calls == ["/api/v1/namespaces/sbx-a/pods", "/api/v1/namespaces/sbx-a/persistentvolumeclaims"]
    assert status == {
        "cpuCoreSeconds": 3600.0,
        "memoryGiBSeconds": 3600.0,
        "storageGiBSeconds": 36000.0,
        "estimate": pytest.approx(0.04 + 0.005 + 0.0014),
        "currency": "USD",
        "pods": 1,
        "volumes": 1,
    }
    # Measured later (the report after completion): the window runs until then.
    later = measure_cost(rest, test, PRICES, now=START + timedelta(seconds=3610)).to_status()  # type: ignore[arg-type]
    assert (later["cpuCoreSeconds"], later["storageGiBSeconds"]) == (3610.0, 36100.0)


def test_remaining_time_is_the_phases_timeouts_capped_by_the_deadline() -> None:
    now = START + timedelta(seconds=100)
    assert remaining_seconds(running_test("Verifying"), 7200, now) == 600 - 100 + 300
    assert remaining_seconds(running_test("Checking"), 7200, now) == 300
    assert remaining_seconds(running_test("Restoring"), 7200, now) == 1800 - 100 + 600 + 300
    assert remaining_seconds(running_test("Restoring"), 400, now) == 300


def test_the_guard_stops_a_test_that_would_cost_more_than_max_cost() -> None:
    big = FakeRest([pod([container("16", "64Gi")])], [])
    clock = [0.0]
    guard = CostGuard(big, PRICES, 7200, clock=lambda: clock[0])  # type: ignore[arg-type]
    now = START + timedelta(seconds=60)
    # 16 cores + 64 GiB for 60 s accrued ≈ 0.0160; for up to 840 s more ≈ 0.224 in all.
    limit = guard.exceeded(running_test(max_cost=0.1), now=now)
    assert limit is not None and "would cost up to 0.2400 USD" in limit.message and "16 CPU" in limit.message
    assert limit.cost.to_status()["estimate"] == pytest.approx(0.016, abs=1e-4)
    # Measured 0 s ago: the measurement is reused, with no call, and still says so.
    assert guard.exceeded(running_test(max_cost=0.1), now=now) is not None and len(big.calls) == 2
    assert guard.exceeded(running_test(max_cost=1.0), now=now) is None and len(big.calls) == 2
    assert guard.exceeded(running_test("Checking", max_cost=0.05), now=now) is not None  # a new phase: measured
    assert len(big.calls) == 4
    clock[0] = 20.0
    assert guard.exceeded(running_test(max_cost=1.0), now=now) is None and len(big.calls) == 6  # measured again


def test_the_guard_stops_a_test_on_its_workloads_plan_before_their_pods_run() -> None:
    empty = FakeRest([], [])
    guard = CostGuard(empty, PRICES, 7200)  # type: ignore[arg-type]
    now = START + timedelta(seconds=60)
    assert guard.exceeded(running_test(max_cost=0.1), Resources(), now=now) is None  # nothing held nor planned
    # 4 replicas of 16 cores, not yet scheduled: 64 cores for up to 840 s ≈ 0.597 USD.
    planned = planned_requests([deployment(4, container("16", "1Gi"))])
    limit = guard.exceeded(running_test(max_cost=0.1), planned, now=now)
    assert limit is not None and "64 CPU" in limit.message and "requested by the restored workloads" in limit.message
    assert limit.cost.to_status()["pods"] == 0 and len(empty.calls) == 2  # one measurement, reused


def deployment(replicas: int | None, *containers: dict[str, Any], kind: str = "Deployment", **extra: Any):
    spec: dict[str, Any] = {"template": {"spec": {"containers": list(containers)}}, **extra}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"kind": kind, "metadata": {"name": "w"}, "spec": spec}


def test_planned_requests_of_restored_workloads() -> None:
    one = container("500m", "1Gi")
    assert planned_requests([deployment(3, one)]) == Resources(cpu=1.5, memory_gib=3.0)
    assert planned_requests([deployment(None, one)]) == Resources(cpu=0.5, memory_gib=1.0)  # default replicas
    assert planned_requests([deployment(0, one)]) == Resources()
    claims = [{"spec": {"resources": {"requests": {"storage": "10Gi"}}}}]
    statefulset = deployment(2, one, kind="StatefulSet", volumeClaimTemplates=claims)
    assert planned_requests([statefulset]) == Resources(cpu=1.0, memory_gib=2.0, storage_gib=20.0)
    daemonset = deployment(None, one, kind="DaemonSet")
    assert planned_requests([daemonset]) == Resources()  # nodes not counted yet
    daemonset["status"] = {"desiredNumberScheduled": 4}
    assert planned_requests([daemonset, deployment(1, one)]) == Resources(cpu=2.5, memory_gib=5.0)


def test_held_and_planned_cover_each_other_per_resource() -> None:
    held, planned = Resources(cpu=2, memory_gib=1), Resources(cpu=1, memory_gib=4, storage_gib=3)
    assert held.covering(planned) == Resources(cpu=2, memory_gib=4, storage_gib=3)


def test_the_guard_stops_a_test_whose_accrued_cost_passed_max_cost() -> None:
    rest = FakeRest([pod([container("16", "64Gi")])], [])
    limit = CostGuard(rest, PRICES, 7200).exceeded(running_test(max_cost=0.01), now=START + timedelta(seconds=60))  # type: ignore[arg-type]
    assert limit is not None and limit.message.startswith("the sandbox has cost 0.0160 USD, more than maxCost 0.01")


def test_the_guard_makes_no_call_without_max_cost() -> None:
    rest = FakeRest([], [])
    assert CostGuard(rest, PRICES, 7200).exceeded(running_test()) is None  # type: ignore[arg-type]
    assert rest.calls == []


def test_sandbox_quota_objects() -> None:
    test = running_test()
    assert sandbox_quota_objects(test, "sbx-a") == []
    test["spec"]["cost"] = {"quota": {"cpu": "2", "storage": "10Gi"}}
    (quota_path, quota), (limits_path, limits) = sandbox_quota_objects(test, "sbx-a")
    assert quota_path == "/api/v1/namespaces/sbx-a/resourcequotas"
    assert quota["spec"]["hard"] == {"requests.cpu": "2", "requests.storage": "10Gi"}
    assert quota["metadata"]["labels"]["lazarus.io/test-uid"] == "u-1"
    assert limits_path == "/api/v1/namespaces/sbx-a/limitranges"
    assert limits["spec"]["limits"] == [{"type": "Container", "defaultRequest": {"cpu": "100m"}}]
    test["spec"]["cost"] = {"quota": {"storage": "10Gi"}}
    assert [body["kind"] for _, body in sandbox_quota_objects(test, "sbx-a")] == ["ResourceQuota"]


def test_claims_are_listed_only_when_the_backup_may_hold_some() -> None:
    test = running_test()
    for parity, listed in (({"expected": {"apps/Deployment": 1}}, False),
                           ({"expected": {"PersistentVolumeClaim": 1}}, True), ({}, True)):  # fmt: skip
        rest = FakeRest([], [])
        test["status"]["parity"] = parity
        measure_cost(rest, test, PRICES)  # type: ignore[arg-type]
        assert ("/api/v1/namespaces/sbx-a/persistentvolumeclaims" in rest.calls) is listed, parity
