"""Prometheus metrics of restore tests, served on ``/metrics`` by ``lazarus run``.

Two kinds, for two reasons:

- **Events** (counters, histograms) are recorded once per finished test by
  ``observe_finished_test``, called by the leader when a test reaches Succeeded or Failed.
- **State** (last result per source, RTO/RPO against objectives, tests in progress, sandboxes
  alive) is computed at scrape time by ``CacheCollector`` from the informer caches: no API call,
  and the values are right after a restart or a change of leader, because they come from the
  tests kept in the cluster rather than from this process's memory. Followers keep the same
  caches and export the same state, so alerts and dashboards aggregate it with ``max``.

Labels are bounded: ``source`` (see ``lazarus.sources``), ``reason`` (the controller's CamelCase
constants), ``check_type`` (postgres, mysql, mongodb, http, custom), ``phase``. Never a backup,
test or namespace name.

A test's ``spec.metrics`` is honoured: ``enabled: false`` keeps the test out of every metric here;
``recordMetrics`` picks which of restore-duration-seconds, health-check-duration-seconds,
recovered-resources-count and failed-checks-count it contributes to.
"""

from __future__ import annotations

import platform
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, Info
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from lazarus import __version__
from lazarus.api.v1alpha1 import ACTIVE_PHASES, FailureReason, Phase
from lazarus.baseline.compare import FINDING_TYPES
from lazarus.lifecycle.durations import parse_time
from lazarus.lifecycle.retention import kept_until_deleted
from lazarus.outcome import Outcome, outcome_of
from lazarus.sandbox import TEST_NAME_LABEL, TEST_NAMESPACE_LABEL
from lazarus.sources import MANUAL

Obj = dict[str, Any]

RESTORE_DURATION_METRIC = "restore-duration-seconds"
CHECK_DURATION_METRIC = "health-check-duration-seconds"
RECOVERED_RESOURCES_METRIC = "recovered-resources-count"
FAILED_CHECKS_METRIC = "failed-checks-count"
ALL_RECORDABLE = (RESTORE_DURATION_METRIC, CHECK_DURATION_METRIC, RECOVERED_RESOURCES_METRIC, FAILED_CHECKS_METRIC)

# Phases of tests not finished yet (lazarus.lifecycle.status), each exported even at 0.
UNFINISHED_PHASES = (Phase.PENDING, *ACTIVE_PHASES)
_EPOCH = datetime.fromtimestamp(0, UTC)

# Velero restores of real applications take from seconds to hours.
RESTORE_BUCKETS = (10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0)
# One query, endpoint or check Job: milliseconds to the 10-minute default check timeout.
CHECK_BUCKETS = (0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class RestoreTestMetrics:
    """The event metrics, registered in one registry (tests use their own)."""

    def __init__(self, registry: CollectorRegistry | None = REGISTRY) -> None:
        self.restore_duration = Histogram(
            "lazarus_restore_duration_seconds",
            "Time from creating the Velero Restore to its completion, per backup source.",
            ["source"],
            buckets=RESTORE_BUCKETS,
            registry=registry,
        )
        self.check_duration = Histogram(
            "lazarus_health_check_duration_seconds",
            "Duration of one health check (query, endpoint or check Job), by source and check type.",
            ["source", "check_type"],
            buckets=CHECK_BUCKETS,
            registry=registry,
        )
        self.success = Counter(
            "lazarus_test_success_total", "Restore tests that succeeded, per backup source.", ["source"],
            registry=registry,
        )  # fmt: skip
        self.failure = Counter(
            "lazarus_test_failure_total",
            "Restore tests that failed, per backup source and reason (e.g. HealthChecksFailed).",
            ["source", "reason"],
            registry=registry,
        )
        self.cost = Counter(
            "lazarus_test_cost",
            "Estimated cost of finished restore tests' sandboxes (status.cost.estimate), per backup source, in the "
            "currency of the operator's prices.",
            ["source", "currency"],
            registry=registry,
        )
        self.baseline_drift = Counter(
            "lazarus_baseline_drift",
            "Finished restore tests whose figures drifted from their source's baseline (status.baseline), per "
            "backup source and finding type (e.g. ValueDropped), whether the drift failed them or only warned.",
            ["source", "finding"],
            registry=registry,
        )
        self.failed_checks = Counter(
            "lazarus_failed_checks_total",
            "Health checks that did not pass (status Failed or Error), by source and check type.",
            ["source", "check_type", "status"],
            registry=registry,
        )

    def prepare(self, sources: Iterable[str]) -> None:
        """Create the success, per-reason failure and (but for ``manual``, which has no
        baseline) per-finding drift series of ``sources`` at 0, so the first result of a source
        is an increase Prometheus can see (a series born at 1 is not)."""
        for source in sources:
            self.success.labels(source)
            for reason in FailureReason:
                self.failure.labels(source, reason)
            if source != MANUAL:
                for finding in FINDING_TYPES:
                    self.baseline_drift.labels(source, finding)

    def observe(self, outcome: Outcome, record: Iterable[str]) -> None:
        """Record one finished test; ``record`` names the optional metrics it contributes to."""
        wanted = set(record)
        if outcome.success:
            self.success.labels(outcome.source).inc()
        else:
            self.failure.labels(outcome.source, outcome.reason or "Unknown").inc()
        if RESTORE_DURATION_METRIC in wanted and outcome.restore_duration is not None:
            self.restore_duration.labels(outcome.source).observe(outcome.restore_duration)
        for check in outcome.checks:
            if CHECK_DURATION_METRIC in wanted and check.status != "Skipped":
                self.check_duration.labels(outcome.source, check.check_type).observe(check.duration)
        if FAILED_CHECKS_METRIC in wanted:
            for check in outcome.failed_checks:
                self.failed_checks.labels(outcome.source, check.check_type, check.status).inc()
        if outcome.cost is not None and outcome.currency:
            self.cost.labels(outcome.source, outcome.currency).inc(outcome.cost)
        for finding in sorted(set(outcome.drift)):
            self.baseline_drift.labels(outcome.source, finding).inc()


def recorded_metrics(test: Obj) -> tuple[str, ...] | None:
    """The optional metrics ``test`` records, or None when its ``spec.metrics.enabled`` is false."""
    settings = (test.get("spec") or {}).get("metrics") or {}
    if settings.get("enabled") is False:
        return None
    return tuple(settings.get("recordMetrics", ALL_RECORDABLE))


_default: RestoreTestMetrics | None = None
_default_lock = threading.Lock()


def default_metrics() -> RestoreTestMetrics:
    """The process-wide event metrics in prometheus_client's default registry."""
    global _default
    with _default_lock:
        if _default is None:
            _default = RestoreTestMetrics(REGISTRY)
            Info("lazarus_build", "Version of the running Lazarus operator.").info(
                {"version": __version__, "python": platform.python_version()}
            )
        return _default


def observe_finished_test(test: Obj, backup: Obj | None, metrics: RestoreTestMetrics | None = None) -> None:
    """Record the event metrics of ``test``, which has just reached Succeeded or Failed.

    Call once per test, after the terminal status was written, with ``status.cost`` when it is
    known (``backup``: the tested Velero Backup from the cache, None if it is gone). A test whose
    ``spec.metrics.enabled`` is false is not recorded.
    """
    record = recorded_metrics(test)
    if record is not None:
        (metrics or default_metrics()).observe(outcome_of(test, backup), record)


# ------------------------------------------------------------------------------ cache state


class CacheCollector(Collector):
    """State gauges computed at scrape time from the informer caches (see the module docstring).

    ``tests`` lists the cached LazarusRestoreTests, ``sandboxes`` the cached sandbox Namespaces
    (label ``lazarus.io/sandbox=true``), ``backup`` returns the cached Velero Backup of a name (or
    None). With ``events``, each scrape also creates the result counters of every source it sees
    at 0 (``RestoreTestMetrics.prepare``): exported from the next scrape on, long before the
    test's result.
    """

    def __init__(
        self,
        tests: Callable[[], Iterable[Obj]],
        sandboxes: Callable[[], Iterable[Obj]],
        backup: Callable[[str], Obj | None],
        events: RestoreTestMetrics | None = None,
    ) -> None:
        self._tests = tests
        self._sandboxes = sandboxes
        self._backup = backup
        self._events = events

    def describe(self) -> list[Metric]:
        return []  # unchecked collector: registering it must not list the caches

    def collect(self) -> Iterator[Metric]:
        tests = list(self._tests())
        recorded = [
            (outcome_of(test, self._backup(str((test.get("spec") or {}).get("backupName", "")))), record)
            for test in tests
            if (record := recorded_metrics(test)) is not None
        ]
        if self._events is not None:  # every test, from its creation: before its first result
            self._events.prepare({outcome.source for outcome, _ in recorded})
        yield from _per_source_state(recorded)
        yield _tests_in_progress(tests)
        yield from _sandbox_state(list(self._sandboxes()), {_key(t): t for t in tests})


def _key(obj: Obj) -> str:
    return f"{obj['metadata'].get('namespace', '')}/{obj['metadata'].get('name', '')}"


def _gauge(name: str, documentation: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels)


def _per_source_state(recorded: list[tuple[Outcome, tuple[str, ...]]]) -> Iterator[Metric]:
    """Per source: the newest finished test's result and objectives, the newest success, and the
    newest measured RTO, RPO and resource count (``recorded``: the outcomes of the tests that
    record metrics, with the optional metrics each records)."""
    families = {
        name: _gauge(name, documentation, ["source"])
        for name, documentation in (
            ("lazarus_last_successful_test_timestamp_seconds",
             "Completion time (Unix seconds) of the newest successful restore test of the source."),
            ("lazarus_last_test_timestamp_seconds",
             "Completion time (Unix seconds) of the newest finished restore test of the source."),
            ("lazarus_last_test_success", "1 if the newest finished restore test of the source succeeded, else 0."),
            ("lazarus_test_rto_seconds", "Measured RTO (seconds) of the newest test of the source that has one."),
            ("lazarus_test_rpo_seconds", "Measured RPO (seconds) of the newest test of the source that has one."),
            ("lazarus_test_rto_objective_seconds", "RTO objective of the newest finished test of the source."),
            ("lazarus_test_rpo_objective_seconds", "RPO objective of the newest finished test of the source."),
            ("lazarus_recovered_resources", "Resources restored by the newest test of the source that restored any."),
        )
    }  # fmt: skip
    by_source: dict[str, list[tuple[Outcome, tuple[str, ...]]]] = {}
    for outcome, record in recorded:
        if outcome.finished and outcome.completion_time is not None:
            by_source.setdefault(outcome.source, []).append((outcome, record))
    for source, pairs in by_source.items():
        pairs.sort(key=lambda pair: pair[0].completion_time or _EPOCH, reverse=True)
        outcomes = [outcome for outcome, _ in pairs]
        newest = outcomes[0]
        values: dict[str, float | None] = {
            "lazarus_last_test_timestamp_seconds": _stamp(newest),
            "lazarus_last_test_success": 1.0 if newest.success else 0.0,
            "lazarus_test_rto_objective_seconds": newest.rto_objective,
            "lazarus_test_rpo_objective_seconds": newest.rpo_objective,
            "lazarus_last_successful_test_timestamp_seconds": next((_stamp(o) for o in outcomes if o.success), None),
            "lazarus_test_rto_seconds": next((o.rto for o in outcomes if o.rto is not None), None),
            "lazarus_test_rpo_seconds": next((o.rpo for o in outcomes if o.rpo is not None), None),
            "lazarus_recovered_resources": next(
                (
                    float(o.resources_recovered)
                    for o, record in pairs
                    if o.resources_recovered is not None and RECOVERED_RESOURCES_METRIC in record
                ),
                None,
            ),
        }
        for name, value in values.items():
            if value is not None:
                families[name].add_metric([source], value)
    yield from families.values()


def _stamp(outcome: Outcome) -> float | None:
    return outcome.completion_time.timestamp() if outcome.completion_time else None


def _tests_in_progress(tests: list[Obj]) -> Metric:
    family = _gauge("lazarus_tests_in_progress", "Restore tests not finished yet, by phase.", ["phase"])
    counts = dict.fromkeys(UNFINISHED_PHASES, 0)
    for test in tests:
        phase = (test.get("status") or {}).get("phase") or Phase.PENDING
        if phase in counts:
            counts[phase] += 1
    for phase, number in counts.items():
        family.add_metric([phase], number)
    return family


def _sandbox_state(sandboxes: list[Obj], tests: dict[str, Obj]) -> Iterator[Metric]:
    alive = _gauge(
        "lazarus_sandbox_namespaces",
        "Sandbox namespaces that exist, by whether their test's spec keeps them on purpose.",
        ["kept"],
    )
    oldest = _gauge(
        "lazarus_sandbox_oldest_creation_timestamp_seconds",
        "Creation time (Unix seconds) of the oldest sandbox namespace not kept on purpose.",
        [],
    )
    counts = {"true": 0, "false": 0}
    created: list[float] = []
    for namespace in sandboxes:
        labels = namespace["metadata"].get("labels") or {}
        test = tests.get(f"{labels.get(TEST_NAMESPACE_LABEL, '')}/{labels.get(TEST_NAME_LABEL, '')}")
        kept = kept_until_deleted(test)
        counts["true" if kept else "false"] += 1
        stamp = namespace["metadata"].get("creationTimestamp")
        if not kept and stamp:
            created.append(parse_time(stamp).timestamp())
    for kept_value, number in counts.items():
        alive.add_metric([kept_value], number)
    if created:
        oldest.add_metric([], min(created))
    yield alive
    yield oldest


_collector_lock = threading.Lock()
_registered: CacheCollector | None = None


def register_cache_metrics(
    tests: Callable[[], Iterable[Obj]],
    sandboxes: Callable[[], Iterable[Obj]],
    backup: Callable[[str], Obj | None],
    registry: CollectorRegistry = REGISTRY,
) -> CacheCollector:
    """Register a ``CacheCollector`` on the caches (see its docstring); a second call in the same
    process replaces the first (a controller built again must not fail on a duplicate metric)."""
    global _registered
    events = default_metrics()  # also registers lazarus_build_info, which alerts rely on
    collector = CacheCollector(tests, sandboxes, backup, events if registry is REGISTRY else None)
    with _collector_lock:
        if registry is REGISTRY and _registered is not None:
            registry.unregister(_registered)
        registry.register(collector)
        if registry is REGISTRY:
            _registered = collector
    return collector
