"""Restoring → Verifying → Checking → result, and the test's own timeouts (see ``restoretest_fixture``)."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from lazarus.api.v1alpha1 import ConditionType, FailureReason, Phase
from lazarus.baseline import BaselineCheck
from lazarus.checks.runner import HealthCheckReport
from lazarus.controllers.base import MAX_PROGRAMMING_RETRIES
from lazarus.controllers.restoretest import controller as controller_module
from lazarus.controllers.restoretest.checkruns import NotLeading
from lazarus.cost import Cost, CostLimit, Prices, Resources
from lazarus.daemonpool import DaemonPool
from lazarus.informers import BACKUPS, DEPLOYMENTS, LAZARUS_RESTORE_TESTS, NAMESPACE_INDEX, NAMESPACES, RESTORES
from lazarus.kube.client import ApiError
from lazarus.velero.backup_contents import backup_contents_from_map
from tests.fakeclock import PARK_TIMEOUT
from tests.unit.restoretest_fixture import (
    NOW,
    RESTORE_NAME,
    SANDBOX,
    Fixture,
    backup,
    restore_test,
    sandbox,
    stamp,
    velero_restore,
)

STARTED = {"startTime": stamp(NOW - timedelta(minutes=5)), "namespaceMapping": {"shop": SANDBOX},
           "sandboxNamespaces": [SANDBOX], "restore": {"restoreName": RESTORE_NAME}}  # fmt: skip
PARITY = {"expected": {"apps/Deployment": 1}, "enforced": True}


def running(phase: str, **status: Any) -> dict[str, Any]:
    return restore_test(status={"phase": phase, **STARTED, **status})


def fixture_with(test: dict[str, Any], *restores: dict[str, Any]) -> Fixture:
    fx = Fixture()
    fx.add(LAZARUS_RESTORE_TESTS, test)
    fx.add(BACKUPS, backup())
    fx.add(RESTORES, *restores)
    return fx


def only_status(fx: Fixture) -> dict[str, Any]:
    assert [m for m, _p, _b in fx.rest.writes()] == ["PATCH"], fx.rest.writes()
    return fx.last_status()


# ----------------------------------------------------------------- Restoring


def test_a_restore_just_created_and_not_yet_cached_is_waited_for() -> None:
    fx = Fixture()
    fx.add(LAZARUS_RESTORE_TESTS, restore_test())
    fx.add(BACKUPS, backup())
    fx.sync()
    fx.observe()
    before = len(fx.rest.writes())
    fx.sync()
    assert len(fx.rest.writes()) == before  # no second set of sandboxes and Restore
    fx.clock.step(30)
    fx.sync()
    assert [p for _m, p, _b in fx.rest.writes()[before:]][-1] == "/apis/velero.io/v1/namespaces/velero/restores"


def test_a_restore_missing_from_the_cache_is_created_again_after_the_expectation() -> None:
    fx = fixture_with(running("Restoring"))
    fx.sync()
    assert [p for m, p, _b in fx.rest.writes()][-2:] == [
        "/api/v1/namespaces/velero/configmaps", "/apis/velero.io/v1/namespaces/velero/restores"]


def test_a_restore_that_never_starts_times_out() -> None:
    fx = fixture_with(running("Restoring", startTime=stamp(NOW - timedelta(minutes=31))))
    fx.sync()
    status = only_status(fx)
    assert (status["reason"], status["message"]) == (FailureReason.TIMEOUT,
                                                     "the Velero restore did not start within 1800s")  # fmt: skip


def test_a_running_restore_is_looked_at_again_at_its_deadline_then_times_out() -> None:
    test = running("Restoring")
    fx = fixture_with(test, velero_restore(test, phase="InProgress"))
    fx.sync()
    assert fx.rest.writes() == []
    fx.now = NOW + timedelta(minutes=26)
    fx.sync()
    assert only_status(fx)["message"] == f"Velero restore {RESTORE_NAME} still InProgress after 1800s"


@pytest.mark.parametrize(("phase", "reason"), [("Failed", FailureReason.RESTORE_FAILED),
                                               ("PartiallyFailed", FailureReason.RESTORE_PARTIALLY_FAILED)])
def test_a_restore_velero_did_not_complete_fails_the_test(phase: str, reason: str) -> None:
    test = running("Restoring", parity=PARITY)
    fx = fixture_with(test, velero_restore(test, phase=phase, messages=["error restoring deployments/web"]))
    fx.sync()
    status = only_status(fx)
    assert (status["phase"], status["reason"]) == (Phase.FAILED, reason)
    assert status["message"] == f"Velero restore {RESTORE_NAME} ended {phase}: error restoring deployments/web"
    assert status["restore"]["veleroPhase"] == phase


def test_items_of_the_backup_that_did_not_come_back_fail_the_test() -> None:
    test = running("Restoring", parity=PARITY)
    fx = fixture_with(test, velero_restore(test))
    fx.reader.restored = {}
    fx.sync()
    status = only_status(fx)
    assert status["reason"] == FailureReason.RESOURCES_MISSING
    assert status["message"].endswith("did not come back (apps/Deployment: 1 of 1)")


def test_a_completed_restore_moves_the_test_to_verifying() -> None:
    test = running("Restoring", parity=PARITY, workloads={"expected": 1})
    fx = fixture_with(test, velero_restore(test))
    fx.reader.restored = {"apps/v1/Deployment": [f"{SANDBOX}/web"]}
    fx.sync()
    status = only_status(fx)
    assert (status["phase"], status["reason"]) == (Phase.VERIFYING, "RestoreCompleted")
    assert status["verifyStartTime"] == stamp(NOW)
    assert status["parity"]["missing"] == {} and status["workloads"] == {"expected": 1}
    assert status["result"] == {"resourcesRecovered": 4, "resourcesFailed": 0}
    assert status["conditions"][0]["type"] == ConditionType.RESTORE_COMPLETED


def test_the_fast_path_reads_the_contents_when_the_restore_completed() -> None:
    test = running("Restoring")
    fx = fixture_with(test, velero_restore(test))
    fx.reader.contents = backup_contents_from_map({"apps/v1/Deployment": ["billing/web"]})
    fx.sync()
    assert fx.reader.reads == ["contents"]
    assert only_status(fx)["reason"] == FailureReason.NOTHING_TO_RESTORE


# ----------------------------------------------------------------- Verifying


def deployment(ready: bool) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": SANDBOX, "generation": 1},
            "spec": {"replicas": 1},
            "status": {"observedGeneration": 1, "replicas": 1, "readyReplicas": 1 if ready else 0,
                       "availableReplicas": 1 if ready else 0, "updatedReplicas": 1}}  # fmt: skip


def verifying(ready: bool) -> Fixture:
    fx = fixture_with(running("Verifying", verifyStartTime=stamp(NOW), workloads={"expected": 1}))
    informer = fx.reconciler.cache.workloads["Deployments"]
    assert informer.query.resource is DEPLOYMENTS
    informer.store.add(deployment(ready))
    assert informer.store.by_index(NAMESPACE_INDEX, SANDBOX)
    return fx


def test_ready_workloads_move_the_test_to_checking() -> None:
    fx = verifying(ready=True)
    fx.sync()
    status = only_status(fx)
    assert (status["phase"], status["workloads"]["ready"]) == (Phase.CHECKING, 1)


def test_workloads_not_ready_in_time_fail_the_test_with_diagnostics() -> None:
    fx = verifying(ready=False)
    fx.sync()
    assert fx.rest.writes() == []
    fx.now = NOW + timedelta(minutes=10)
    fx.sync()
    status = fx.last_status()
    assert status["reason"] == FailureReason.WORKLOADS_NOT_READY
    assert status["message"].startswith("not ready after 600s: ")
    assert "diagnostics" in status


# ----------------------------------------------------------------- Checking


def report(passed: bool = True) -> HealthCheckReport:
    return HealthCheckReport({"summary": "1 check"}, passed, "1 of 1 health checks passed" if passed else "1 failed")


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    outcome: dict[str, Any] = {"report": report(), "baseline": BaselineCheck({"result": "NotApplicable"}), "runs": 0}

    def run_health_checks(*_args: Any, **_kwargs: Any) -> HealthCheckReport:
        outcome["runs"] += 1
        return outcome["report"]

    monkeypatch.setattr(controller_module, "run_health_checks", run_health_checks)
    monkeypatch.setattr(controller_module, "compare_with_baseline", lambda *_a, **_k: outcome["baseline"])
    return outcome


def checking(**spec: Any) -> Fixture:
    return fixture_with(restore_test(status={"phase": "Checking", **STARTED}, **spec))


def check(fx: Fixture) -> None:
    """Sync to start the checks (they finish at once on the inline executor), then sync the key
    their completion queued."""
    fx.sync()
    assert fx.queued() == ["team-a/shop-check"]
    fx.sync()


def test_passing_checks_succeed_the_test_with_rto_and_rpo(checks: dict[str, Any]) -> None:
    fx = checking()
    check(fx)
    status = only_status(fx)
    assert (status["phase"], status["reason"]) == (Phase.SUCCEEDED, "Succeeded")
    assert status["result"] == {"success": True, "rto": 300.0, "rpo": 3600.0, "message": "restore verified"}


@pytest.mark.parametrize(
    ("spec", "failing", "reason", "message"),
    [
        ({}, "report", FailureReason.HEALTH_CHECKS_FAILED, "1 failed"),
        ({"objectives": {"rtoSeconds": 60}}, None, FailureReason.OBJECTIVE_MISSED, "RTO 300s > objective 60s"),
        ({"objectives": {"rpoSeconds": 60}}, None, FailureReason.OBJECTIVE_MISSED, "RPO 3600s > objective 60s"),
        ({}, "baseline", FailureReason.BASELINE_DRIFT, "rows 250 → 150"),
    ],
)
def test_each_way_a_check_fails_the_test(
    checks: dict[str, Any], spec: dict[str, Any], failing: str | None, reason: str, message: str
) -> None:
    if failing == "report":
        checks["report"] = report(passed=False)
    if failing == "baseline":
        checks["baseline"] = BaselineCheck({"result": "Drifted"}, drifted=True, fails_test=True, message=message)
    fx = checking(**spec)
    check(fx)
    status = only_status(fx)
    assert (status["phase"], status["reason"], status["message"]) == (Phase.FAILED, reason, message)
    assert status["result"]["success"] is False


def test_checks_run_off_the_worker_and_their_completion_brings_the_key_back(checks: dict[str, Any]) -> None:
    fx = checking()
    fx.executor.hold = True
    fx.queued()
    fx.sync()  # starts the run and returns at once
    assert fx.rest.writes() == [] and fx.executor.pending
    assert fx.queued() == []
    fx.sync()  # still running: not started twice
    assert len(fx.executor.pending) == 1
    fx.executor.release()
    assert fx.queued() == ["team-a/shop-check"]
    fx.sync()
    assert only_status(fx)["phase"] == Phase.SUCCEEDED
    assert checks["runs"] == 1


def test_checks_start_only_while_this_replica_holds_the_lease(checks: dict[str, Any]) -> None:
    fx = checking()
    fx.leading = False
    fx.sync()
    assert checks["runs"] == 0 and fx.rest.writes() == [] and fx.queued() == []
    fx.leading = True
    check(fx)
    assert checks["runs"] == 1 and only_status(fx)["phase"] == Phase.SUCCEEDED


def test_a_run_that_waited_for_a_slot_does_not_start_once_the_lease_is_gone(checks: dict[str, Any]) -> None:
    fx = checking()
    fx.executor.hold = True  # submitted while leading; its thread starts later
    fx.sync()
    fx.leading = False
    fx.executor.release()
    assert checks["runs"] == 0
    assert fx.queued() == ["team-a/shop-check"]
    with pytest.raises(NotLeading):
        fx.sync()  # the run is dropped: a next leader starts it anew
    assert fx.rest.status_patches() == []


def test_a_drift_that_only_warns_is_an_event_on_a_succeeded_test(checks: dict[str, Any]) -> None:
    checks["baseline"] = BaselineCheck({"result": "Drifted"}, drifted=True, message="rows 250 → 240")
    fx = checking()
    check(fx)
    assert fx.last_status()["phase"] == Phase.SUCCEEDED
    assert ("Warning", "BaselineDrift") in fx.rest.events()


# ----------------------------------------------------------------- the test's own limits


def test_a_test_running_past_the_test_timeout_fails() -> None:
    fx = fixture_with(running("Verifying", startTime=stamp(NOW - timedelta(hours=2))))
    fx.sync()
    assert (only_status(fx)["reason"], fx.last_status()["message"]) == (
        FailureReason.TIMEOUT, "the test did not finish within 7200s")


def test_a_test_over_its_cost_limit_is_stopped() -> None:
    fx = fixture_with(restore_test(status={"phase": "Verifying", **STARTED}, cost={"maxCost": 0.01}))
    cost = Cost(Resources(), Resources(), Prices(0.04, 0.005, 0.00014, "USD"), 1, 0)

    class Guard:
        def exceeded(self, *_args: Any, **_kwargs: Any) -> CostLimit:
            return CostLimit(cost, "cost 0.02 USD > maxCost 0.01")

    fx.reconciler.cost_guard = Guard()  # type: ignore[assignment]
    fx.sync()
    status = only_status(fx)
    assert (status["reason"], status["message"]) == (FailureReason.COST_LIMIT_EXCEEDED, "cost 0.02 USD > maxCost 0.01")
    assert "cost" in status


def test_a_malformed_status_gets_a_bounded_retry_and_a_warning_event(checks: dict[str, Any]) -> None:
    fx = fixture_with(restore_test(status={"phase": "Checking", "namespaceMapping": {"shop": SANDBOX}}))
    controller = fx.reconciler.controller
    fx.queued()
    controller.queue.add("team-a/shop-check")
    for _ in range(MAX_PROGRAMMING_RETRIES + 2):  # + the sync that only started the checks
        assert controller.process_next_item()
        fx.clock.step(1.0)
    assert fx.rest.events() == [("Warning", "SyncFailed")]
    assert controller.queue.len() == 0 and fx.rest.writes() == []


def test_a_conflict_on_the_verdict_does_not_run_the_checks_again(checks: dict[str, Any]) -> None:
    fx = checking()
    status_path = "/apis/lazarus.io/v1alpha1/namespaces/team-a/lazarusrestoretests/shop-check/status"
    fx.rest.refuse[("PATCH", status_path)] = ApiError(409, "Conflict")
    with pytest.raises(ApiError):
        check(fx)
    del fx.rest.refuse[("PATCH", status_path)]
    fx.sync()
    assert fx.last_status()["phase"] == Phase.SUCCEEDED
    assert checks["runs"] == 1


def test_only_workloads_a_test_restored_are_cached() -> None:
    """Velero's velero.io/restore-name is on whatever any restore brought back; Lazarus's sandbox
    label only on what its tests restored."""
    fx = Fixture()
    selectors = {informer.query.label_selector for informer in fx.reconciler.cache.workloads.values()}
    assert selectors == {"lazarus.io/sandbox=true"}


@pytest.mark.parametrize(("uid", "adopted"), [("uid-recorded", True), ("uid-someone-else-s", False)])
def test_once_recorded_only_the_sandboxes_of_the_recorded_uids_are_adopted(uid: str, adopted: bool) -> None:
    """A namespace recreated under the sandbox's name carries the test's labels (anyone can set a
    label): only its UID tells it from the one the test created."""
    test = running("Restoring", sandboxUIDs={SANDBOX: "uid-recorded"})
    fx = fixture_with(test)
    labelled = sandbox(test, SANDBOX, uid=uid)
    fx.add(NAMESPACES, labelled)
    fx.rest.objects[f"/api/v1/namespaces/{SANDBOX}"] = labelled
    fx.sync()  # the Restore is missing: sandboxes and Restore are made again
    restores = [p for m, p, _b in fx.rest.writes("POST") if p.endswith("/restores")]
    assert bool(restores) is adopted
    if not adopted:
        status = fx.last_status()
        assert status["reason"] == FailureReason.UNSAFE_RESTORE
        assert status["message"].startswith(f"namespace {SANDBOX} already exists and is not this test's sandbox")


def test_the_check_pool_runs_on_daemon_threads_and_hands_over_results_and_errors() -> None:
    pool = DaemonPool(1, "checks")
    started, release = threading.Event(), threading.Event()

    def long_check() -> str:
        started.set()
        release.wait()
        return "report"

    running = pool.submit(long_check)
    assert started.wait(PARK_TIMEOUT)
    assert [t.daemon for t in threading.enumerate() if t.name == "checks"] == [True]  # no join at exit
    failing = pool.submit(lambda: {}["startTime"])  # waits for the one slot
    release.set()
    assert running.result(PARK_TIMEOUT) == "report"
    assert isinstance(failing.exception(PARK_TIMEOUT), KeyError)
