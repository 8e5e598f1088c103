"""Sources, outcomes and the restore-test metrics (event metrics and the cache collector)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from lazarus.api.v1alpha1 import FailureReason
from lazarus.baseline.compare import FINDING_TYPES, Finding
from lazarus.metrics import (
    CacheCollector,
    RestoreTestMetrics,
    observe_finished_test,
    register_cache_metrics,
)
from lazarus.outcome import outcome_of
from lazarus.sources import source_of
from tests.finished_tests import backup, finished_test


def test_source_is_the_schedule_then_the_policy_then_manual() -> None:
    test = finished_test(labels={"lazarus.io/policy-name": "nightly"})
    assert source_of(test, backup("b", schedule="shop-daily")) == "schedule/shop-daily"
    assert source_of(finished_test(labels={"lazarus.io/schedule-name": "copied"}), None) == "schedule/copied"
    assert source_of(test, backup("b")) == "policy/team-a/nightly"
    assert source_of(finished_test(), None) == "manual"


def test_outcome_reads_result_objectives_and_typed_checks() -> None:
    test = finished_test(success=False, reason="ObjectiveMissed", rto=700.0, rpo=100.0,
                         spec={"objectives": {"rtoSeconds": 600, "rpoSeconds": 3600}})  # fmt: skip
    outcome = outcome_of(test, backup("shop-20260101", schedule="shop-daily"))
    assert (outcome.source, outcome.phase, outcome.reason, outcome.success) == (
        "schedule/shop-daily", "Failed", "ObjectiveMissed", False,
    )  # fmt: skip
    assert outcome.rto_missed and not outcome.rpo_missed
    assert outcome.restore_duration == 300.0
    assert [(c.check_type, c.group, c.name, c.status) for c in outcome.checks] == [
        ("postgres", "orders-db", "row-count", "Failed"),
        ("http", "http", "health", "Passed"),
    ]
    assert [c.name for c in outcome.failed_checks] == ["row-count"]


def test_a_check_group_that_failed_before_any_query_is_a_failed_check() -> None:
    health = {"database": {"status": "Error", "message": "could not connect: timeout", "checks": []},
              "custom": {"status": "Failed", "jobName": "verify", "result": "Job failed", "duration": 3.0}}  # fmt: skip
    test = finished_test(success=False, health=health, spec={"healthChecks": {"database": {"type": "mysql"}}})
    checks = outcome_of(test).failed_checks
    assert [(c.check_type, c.name, c.status, c.result) for c in checks] == [
        ("mysql", "database", "Error", "could not connect: timeout"),
        ("custom", "verify", "Failed", "Job failed"),
    ]


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_event_metrics_of_a_finished_test() -> None:
    registry = CollectorRegistry()
    metrics = RestoreTestMetrics(registry)
    observe_finished_test(finished_test(), backup("shop-20260101", schedule="shop-daily"), metrics)
    observe_finished_test(finished_test(success=False), backup("shop-20260101", schedule="shop-daily"), metrics)
    source = "schedule/shop-daily"
    assert sample(registry, "lazarus_test_success_total", source=source) == 1
    assert sample(registry, "lazarus_test_failure_total", source=source, reason="HealthChecksFailed") == 1
    assert sample(registry, "lazarus_restore_duration_seconds_count", source=source) == 2
    assert sample(registry, "lazarus_restore_duration_seconds_sum", source=source) == 600.0
    assert sample(registry, "lazarus_health_check_duration_seconds_count", source=source, check_type="postgres") == 2
    assert sample(registry, "lazarus_health_check_duration_seconds_count", source=source, check_type="http") == 2
    assert sample(registry, "lazarus_failed_checks_total", source=source, check_type="postgres", status="Failed") == 1


def test_spec_metrics_selects_what_a_test_records() -> None:
    registry = CollectorRegistry()
    metrics = RestoreTestMetrics(registry)
    only_duration = {"metrics": {"recordMetrics": ["restore-duration-seconds"]}}
    observe_finished_test(finished_test(success=False, spec=only_duration), None, metrics)
    observe_finished_test(finished_test(spec={"metrics": {"enabled": False}}), None, metrics)
    assert sample(registry, "lazarus_restore_duration_seconds_count", source="manual") == 1
    assert sample(registry, "lazarus_test_failure_total", source="manual", reason="HealthChecksFailed") == 1
    assert sample(registry, "lazarus_health_check_duration_seconds_count", source="manual", check_type="http") is None
    assert sample(registry, "lazarus_failed_checks_total", source="manual", check_type="postgres",
                  status="Failed") is None  # fmt: skip
    assert sample(registry, "lazarus_test_success_total", source="manual") is None


def sandbox(name: str, test: str, created: str, namespace: str = "team-a") -> dict[str, Any]:
    labels = {"lazarus.io/sandbox": "true", "lazarus.io/test-name": test, "lazarus.io/test-namespace": namespace}
    return {"metadata": {"name": name, "labels": labels, "creationTimestamp": created}}


@pytest.fixture
def cache() -> dict[str, list[dict[str, Any]]]:
    return {"tests": [], "sandboxes": []}


@pytest.fixture
def registry(cache: dict[str, list[dict[str, Any]]]) -> CollectorRegistry:
    backups = {name: backup(name, "shop") for name in ("shop-1", "shop-2", "shop-3")}
    registry = CollectorRegistry()
    register_cache_metrics(lambda: cache["tests"], lambda: cache["sandboxes"], backups.get, registry=registry)
    return registry


def test_cache_state_per_source_follows_the_newest_tests(
    cache: dict[str, list[dict[str, Any]]], registry: CollectorRegistry
) -> None:
    cache["tests"] = [
        finished_test("t1", backup="shop-1", completed="2026-01-01T00:00:00Z", rto=100.0,
                      spec={"objectives": {"rtoSeconds": 50}}),
        finished_test("t2", backup="shop-2", completed="2026-01-02T00:00:00Z", rto=200.0, rpo=10.0),
        # Newest: failed before measuring anything, and it sets no objective.
        finished_test("t3", backup="shop-3", success=False, reason="WorkloadsNotReady",
                      completed="2026-01-03T00:00:00Z", rto=None, rpo=None),
        finished_test("m1", backup="gone", completed="2026-01-05T00:00:00Z", spec={"objectives": {"rpoSeconds": 60}}),
        finished_test("off", backup="shop-3", completed="2026-02-01T00:00:00Z", spec={"metrics": {"enabled": False}}),
    ]  # fmt: skip
    shop = {"source": "schedule/shop"}
    assert registry.get_sample_value("lazarus_last_test_success", shop) == 0
    assert registry.get_sample_value("lazarus_last_test_timestamp_seconds", shop) == 1767398400.0
    assert registry.get_sample_value("lazarus_last_successful_test_timestamp_seconds", shop) == 1767312000.0
    assert registry.get_sample_value("lazarus_test_rto_seconds", shop) == 200.0
    assert registry.get_sample_value("lazarus_test_rpo_seconds", shop) == 10.0
    assert registry.get_sample_value("lazarus_test_rto_objective_seconds", shop) is None
    assert registry.get_sample_value("lazarus_recovered_resources", shop) == 12
    manual = {"source": "manual"}
    assert registry.get_sample_value("lazarus_last_test_success", manual) == 1
    assert registry.get_sample_value("lazarus_test_rpo_objective_seconds", manual) == 60


def test_tests_in_progress_and_sandboxes(cache: dict[str, list[dict[str, Any]]], registry: CollectorRegistry) -> None:
    running = finished_test("running")
    running["status"] = {"phase": "Verifying"}
    kept = finished_test("kept", success=False, spec={"cleanup": {"keepOnFailure": True}})
    cache["tests"] = [running, kept, {"metadata": {"name": "new", "namespace": "team-a"}, "spec": {}},
                      finished_test("done")]  # fmt: skip
    cache["sandboxes"] = [
        sandbox("sbx-running", "running", "2026-01-01T10:00:00Z"),
        sandbox("sbx-kept", "kept", "2025-12-01T00:00:00Z"),
        sandbox("sbx-orphan", "deleted-test", "2026-01-01T09:00:00Z"),
    ]
    phases = {p: registry.get_sample_value("lazarus_tests_in_progress", {"phase": p})
              for p in ("Pending", "Restoring", "Verifying", "Checking")}  # fmt: skip
    assert phases == {"Pending": 1, "Restoring": 0, "Verifying": 1, "Checking": 0}
    assert registry.get_sample_value("lazarus_sandbox_namespaces", {"kept": "true"}) == 1
    assert registry.get_sample_value("lazarus_sandbox_namespaces", {"kept": "false"}) == 2
    # The kept sandbox is older, but only the orphan (09:00) counts.
    assert registry.get_sample_value("lazarus_sandbox_oldest_creation_timestamp_seconds") == 1767258000.0


def test_no_sandbox_no_oldest_series(registry: CollectorRegistry) -> None:
    assert registry.get_sample_value("lazarus_sandbox_oldest_creation_timestamp_seconds") is None
    assert registry.get_sample_value("lazarus_sandbox_namespaces", {"kept": "false"}) == 0


def test_registering_again_replaces_the_collector_in_the_default_registry() -> None:
    from prometheus_client import REGISTRY

    first = register_cache_metrics(list, list, lambda _n: None)
    second = register_cache_metrics(list, list, lambda _n: None)
    assert isinstance(second, CacheCollector) and first is not second
    assert REGISTRY.get_sample_value("lazarus_tests_in_progress", {"phase": "Pending"}) == 0


def test_a_scrape_creates_the_result_counters_of_every_source_at_zero() -> None:
    registry = CollectorRegistry()
    events = RestoreTestMetrics(registry)
    running = finished_test("running", backup="shop-1")
    running["status"] = {"phase": "Restoring"}
    backups = {"shop-1": backup("shop-1", schedule="shop")}
    registry.register(CacheCollector(lambda: [running], lambda: [], backups.get, events))
    source = {"source": "schedule/shop"}
    # The first scrape that sees the test creates the series (the counters may be collected
    # before the collector runs); every scrape after it has them, long before the test ends.
    registry.get_sample_value("lazarus_test_success_total", source)
    assert registry.get_sample_value("lazarus_test_success_total", source) == 0
    for reason in FailureReason:
        assert registry.get_sample_value("lazarus_test_failure_total", {**source, "reason": reason}) == 0
    observe_finished_test(finished_test(success=False, backup="shop-1"), backups["shop-1"], events)
    assert registry.get_sample_value("lazarus_test_failure_total", {**source, "reason": "HealthChecksFailed"}) == 1


def with_status(test: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**test, "status": {**test["status"], **fields}}


def test_the_cost_of_finished_tests_adds_up_per_source() -> None:
    registry = CollectorRegistry()
    metrics = RestoreTestMetrics(registry)
    costly = with_status(finished_test(), cost={"estimate": 0.25, "currency": "EUR"})
    observe_finished_test(costly, backup("shop-20260101", schedule="shop-daily"), metrics)
    observe_finished_test(costly, backup("shop-20260101", schedule="shop-daily"), metrics)
    observe_finished_test({**costly, "spec": {"metrics": {"enabled": False}}}, None, metrics)
    observe_finished_test(finished_test(), None, metrics)  # no cost measured: nothing added
    assert sample(registry, "lazarus_test_cost_total", source="schedule/shop-daily", currency="EUR") == 0.5
    assert sample(registry, "lazarus_test_cost_total", source="manual", currency="EUR") is None


def test_drift_from_the_baseline_is_counted_once_per_test_and_finding_type() -> None:
    registry = CollectorRegistry()
    metrics = RestoreTestMetrics(registry)
    metrics.prepare(["schedule/shop-daily", "manual"])
    source = {"source": "schedule/shop-daily"}
    for finding in FINDING_TYPES:
        assert sample(registry, "lazarus_baseline_drift_total", **source, finding=finding) == 0
    assert sample(registry, "lazarus_baseline_drift_total", source="manual", finding="ValueDropped") is None
    findings = [{"type": "ValueDropped", "subject": "a"}, {"type": "ValueDropped", "subject": "b"},
                {"type": "KindRemoved", "subject": "apps/Deployment"}]  # fmt: skip
    drifted = with_status(finished_test(), baseline={"result": "Drifted", "findings": findings})
    observe_finished_test(drifted, backup("shop-20260101", schedule="shop-daily"), metrics)
    assert sample(registry, "lazarus_baseline_drift_total", **source, finding="ValueDropped") == 1
    assert sample(registry, "lazarus_baseline_drift_total", **source, finding="KindRemoved") == 1
    assert sample(registry, "lazarus_baseline_drift_total", **source, finding="RtoGrew") == 0


def test_finding_types_are_the_ones_the_comparison_makes() -> None:
    made = set(re.findall(r'Finding\(\s*"(\w+)"', Path(inspect.getfile(Finding)).read_text()))
    assert made == set(FINDING_TYPES)
