"""The cost of a restore test: what its sandbox held, priced with the operator's unit prices.

Entry points for the restore-test controller:

- ``measure_cost(rest, test, prices)``: once the test has ended (where the finished test is
  reported, before the sandbox is removed): ``Cost`` for ``status.cost`` and the metrics;
- ``CostGuard.exceeded(test, planned)``: while the test runs (Restoring, Verifying, Checking):
  whether it must stop with ``COST_LIMIT_EXCEEDED`` because it costs, or would cost, more than
  ``spec.cost.maxCost`` (``planned``: ``planned_requests`` of its restored workloads);
- ``lazarus.cost.quota.sandbox_quota_objects``: a ResourceQuota (and LimitRange) for each sandbox
  namespace, from ``spec.cost.quota``.

The method is ``lazarus.cost.usage``'s. API requests per measurement: one pod list per sandbox
namespace, and one PersistentVolumeClaim list per sandbox namespace unless the test's parity
shows the backup held no claims (claims in a sandbox come only from the restore: the operator
and the check Job create none).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lazarus.api.v1alpha1 import FailureReason, RestoreTestSpec
from lazarus.checks.runner import DEFAULT_TIMEOUT as DEFAULT_CHECKS_TIMEOUT
from lazarus.cost.usage import Prices, Resources, held_now, integrate, planned_requests
from lazarus.kube.client import Rest
from lazarus.lifecycle.durations import parse_duration, parse_time
from lazarus.settings import Settings

__all__ = [
    "COST_LIMIT_EXCEEDED", "Cost", "CostGuard", "CostLimit", "Prices", "Resources", "measure_cost", "planned_requests",
    "prices_of",
]  # fmt: skip

# Failure reason of a test stopped by spec.cost.maxCost.
COST_LIMIT_EXCEEDED = FailureReason.COST_LIMIT_EXCEEDED
# The parity key (lazarus.lifecycle.parity.group_kind) of PersistentVolumeClaims.
CLAIM_KIND = "PersistentVolumeClaim"
# Seconds between two measurements of one test in one phase by the guard: syncs come with every
# workload event, and a measurement costs up to two lists per sandbox namespace.
GUARD_INTERVAL = 15.0
NOTHING_PLANNED = Resources()


def prices_of(settings: Settings) -> Prices:
    """The unit prices of the operator's settings."""
    return Prices(settings.price_cpu_hour, settings.price_memory_gib_hour, settings.price_storage_gib_hour,
                  settings.currency)  # fmt: skip


@dataclass(frozen=True)
class Cost:
    """What a test's sandbox held until ``measured_at``, and what it holds at that moment."""

    usage: Resources
    """Core-seconds, memory GiB-seconds, storage GiB-seconds."""
    held: Resources
    """Cores, memory GiB and storage GiB still held at ``measured_at``."""
    prices: Prices
    pods: int
    volumes: int

    @property
    def estimate(self) -> float:
        return self.prices.of(self.usage)

    def to_status(self) -> dict[str, Any]:
        """``status.cost``."""
        return {
            "cpuCoreSeconds": round(self.usage.cpu, 3),
            "memoryGiBSeconds": round(self.usage.memory_gib, 3),
            "storageGiBSeconds": round(self.usage.storage_gib, 3),
            "estimate": round(self.estimate, 6),
            "currency": self.prices.currency,
            "pods": self.pods,
            "volumes": self.volumes,
        }


def _list(rest: Rest, namespace: str, plural: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = rest.request("GET", f"/api/v1/namespaces/{namespace}/{plural}").get("items") or []
    return items


def _may_hold_claims(status: dict[str, Any]) -> bool:
    """False only when the backup's parity is known and counts no PersistentVolumeClaim."""
    parity = status.get("parity") or {}
    counts = parity.get("expected") if parity.get("expected") is not None else parity.get("restored")
    return counts is None or bool(counts.get(CLAIM_KIND))


def measure_cost(rest: Rest, test: dict[str, Any], prices: Prices, now: datetime | None = None) -> Cost:
    """The cost of ``test`` from ``status.startTime`` to ``now`` (at least ``status.completionTime``),
    over its ``status.sandboxNamespaces``. Measured at the report that follows the completion, the
    window ends when the sandbox was last seen whole: timestamps have whole seconds, so ending at
    ``completionTime`` would count nothing for a pod created in the test's last second.
    Raises ``ApiError`` if the lists fail (retry)."""
    status = test.get("status") or {}
    now = now or datetime.now(UTC)
    end = max(parse_time(status["completionTime"]), now) if status.get("completionTime") else now
    start = parse_time(status["startTime"]) if status.get("startTime") else end
    pods: list[dict[str, Any]] = []
    claims: list[dict[str, Any]] = []
    for namespace in status.get("sandboxNamespaces") or []:
        pods += _list(rest, namespace, "pods")
        if _may_hold_claims(status):
            claims += _list(rest, namespace, "persistentvolumeclaims")
    return Cost(integrate(pods, claims, start, end), held_now(pods, claims, end), prices, len(pods), len(claims))


def remaining_seconds(test: dict[str, Any], test_timeout: float, now: datetime) -> float:
    """The longest the test can still run: its phase's remaining timeout plus those of the phases
    after it, at most until the test's deadline (``--test-timeout``)."""
    spec, status = test.get("spec") or {}, test.get("status") or {}
    typed = RestoreTestSpec.of(test)
    restore = parse_duration(typed.restore.timeout)
    ready = parse_duration(typed.workloads.ready_timeout)
    checks = float((spec.get("healthChecks") or {}).get("timeout") or DEFAULT_CHECKS_TIMEOUT)

    def since(field: str) -> float:
        return (now - parse_time(status[field])).total_seconds() if status.get(field) else 0.0

    left = {
        "Restoring": restore - since("startTime") + ready + checks,
        "Verifying": ready - since("verifyStartTime") + checks,
        "Checking": checks,
    }.get(str(status.get("phase")), 0.0)
    return max(min(left, test_timeout - since("startTime")), 0.0)


@dataclass(frozen=True)
class CostLimit:
    """A test that costs, or would cost, more than its ``spec.cost.maxCost``."""

    cost: Cost
    message: str


@dataclass(frozen=True)
class _Measurement:
    cost: Cost
    at: datetime
    """When the sandbox was read."""
    clock: float
    """``CostGuard``'s clock then."""


class CostGuard:
    """Stops tests that exceed ``spec.cost.maxCost`` (see ``exceeded``)."""

    def __init__(
        self, rest: Rest, prices: Prices, test_timeout: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rest = rest
        self._prices = prices
        self._test_timeout = test_timeout
        self._clock = clock
        self._measured: dict[tuple[str, str], _Measurement] = {}
        self._lock = threading.Lock()

    def exceeded(
        self, test: dict[str, Any], planned: Resources = NOTHING_PLANNED, *, now: datetime | None = None
    ) -> CostLimit | None:
        """A ``CostLimit`` when ``test`` has a ``maxCost`` and its accrued cost, or its accrued
        cost plus what it would hold for the longest it can still run (``remaining_seconds``),
        is above it; None otherwise.

        What it would hold is, per resource, the larger of what the sandbox held when measured
        and ``planned`` (``lazarus.cost.usage.planned_requests`` of the restored workloads, from
        the caller's cache): an oversize Deployment is stopped on the sync its creation brings,
        before its pods start. The sandbox is measured (API calls) on the first sync of each
        phase and then at most every ``GUARD_INTERVAL``; syncs in between reuse the measurement,
        projecting from the moment it was taken. Call it on each sync of an active test; the
        caller should bring the key back after ``GUARD_INTERVAL`` while the test has a
        ``maxCost``."""
        limit = ((test.get("spec") or {}).get("cost") or {}).get("maxCost")
        if limit is None:
            return None
        measurement = self._measurement(test, now or datetime.now(UTC))
        cost, currency = measurement.cost, self._prices.currency
        accrued = cost.estimate
        if accrued > float(limit):
            message = f"the sandbox has cost {accrued:.4f} {currency}, more than maxCost {limit} {currency}"
            return CostLimit(cost, message)
        left = remaining_seconds(test, self._test_timeout, measurement.at)
        rate = cost.held.covering(planned)
        projected = accrued + self._prices.of(rate.times(left))
        if projected > float(limit):
            return CostLimit(
                cost,
                f"the sandbox would cost up to {projected:.4f} {currency} (accrued {accrued:.4f}, then "
                f"{rate.cpu:g} CPU, {rate.memory_gib:g} GiB memory, {rate.storage_gib:g} GiB storage held "
                f"or requested by the restored workloads for up to {left:.0f}s more), more than maxCost "
                f"{limit} {currency}",
            )
        return None

    def _measurement(self, test: dict[str, Any], now: datetime) -> _Measurement:
        """The test's measurement in its current phase if younger than ``GUARD_INTERVAL``, else a
        new one."""
        key, moment = (test["metadata"]["uid"], str((test.get("status") or {}).get("phase"))), self._clock()
        with self._lock:
            # Only recent measurements matter: dropping the rest keeps this bounded by the tests
            # running at once.
            self._measured = {k: m for k, m in self._measured.items() if moment - m.clock < GUARD_INTERVAL}
            if key in self._measured:
                return self._measured[key]
        measurement = _Measurement(measure_cost(self._rest, test, self._prices, now), now, moment)
        with self._lock:
            self._measured[key] = measurement
        return measurement
