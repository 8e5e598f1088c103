"""A restore test's outcome, read from its status into one typed summary.

Metrics, notifications and the evidence report all describe the same facts (result, RTO/RPO
against the objectives, the checks that did not pass); they read them through ``outcome_of`` so
the status layout is interpreted in one place. Every text here comes from status, which holds no
Secret value (the controller and the checks scrub before writing).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lazarus.api.v1alpha1 import Phase
from lazarus.lifecycle.durations import parse_time
from lazarus.sources import source_of

SUCCEEDED, FAILED = Phase.SUCCEEDED, Phase.FAILED
# Check outcomes that make a test fail (see lazarus.checks.results).
NOT_PASSED = ("Failed", "Error")


@dataclass(frozen=True)
class CheckOutcome:
    """One query, endpoint or custom Job of the test's health checks."""

    check_type: str
    """postgres, mysql, mongodb, http or custom: a bounded metric label value."""
    group: str
    """The database check's name, ``http`` or ``custom``."""
    name: str
    """The query or endpoint name (the Job name for a custom check)."""
    status: str
    result: str
    duration: float


@dataclass(frozen=True)
class Outcome:
    """What a (usually finished) restore test found."""

    namespace: str
    name: str
    backup: str
    source: str
    phase: str
    reason: str
    message: str
    start_time: datetime | None
    verify_start_time: datetime | None
    completion_time: datetime | None
    rto: float | None
    rpo: float | None
    rto_objective: float | None
    rpo_objective: float | None
    resources_recovered: int | None
    resources_failed: int | None
    checks: tuple[CheckOutcome, ...]
    cost: float | None = None
    """Estimated cost of the sandbox (``status.cost.estimate``), in ``currency``."""
    currency: str = ""
    drift: tuple[str, ...] = ()
    """Types of the findings against the source's baseline (``status.baseline.findings``)."""

    @property
    def finished(self) -> bool:
        return self.phase in (SUCCEEDED, FAILED)

    @property
    def success(self) -> bool:
        return self.phase == SUCCEEDED

    @property
    def failed_checks(self) -> tuple[CheckOutcome, ...]:
        return tuple(c for c in self.checks if c.status in NOT_PASSED)

    @property
    def restore_duration(self) -> float | None:
        """Seconds from the Velero Restore's creation to its completion (None if it did not complete)."""
        if self.start_time is None or self.verify_start_time is None:
            return None
        return max((self.verify_start_time - self.start_time).total_seconds(), 0.0)

    @property
    def rto_missed(self) -> bool:
        return self.rto is not None and self.rto_objective is not None and self.rto > self.rto_objective

    @property
    def rpo_missed(self) -> bool:
        return self.rpo is not None and self.rpo_objective is not None and self.rpo > self.rpo_objective


def _time(value: Any) -> datetime | None:
    return parse_time(value) if isinstance(value, str) and value else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _count(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _checks(spec: dict[str, Any], health: dict[str, Any]) -> list[CheckOutcome]:
    """Every individual check in ``status.healthChecks``, typed by the spec that defined it."""
    spec_checks = spec.get("healthChecks") or {}
    types = {(d.get("name") or ""): d.get("type", "") for d in spec_checks.get("databases") or []}
    single = spec_checks.get("database") or {}
    groups: list[tuple[str, str, dict[str, Any]]] = []
    if health.get("database"):
        groups.append((single.get("type", "database"), single.get("name", "database"), health["database"]))
    for group in health.get("databases") or []:
        groups.append((types.get(group.get("name", ""), "database"), group.get("name", ""), group))
    if health.get("http"):
        groups.append(("http", "http", health["http"]))
    found = [
        CheckOutcome(
            check_type,
            group_name,
            str(item.get("name", "")),
            str(item.get("status", "")),
            str(item.get("result", "")),
            float(item.get("duration") or 0.0),
        )
        for check_type, group_name, group in groups
        for item in group.get("checks") or []
    ]
    for check_type, group_name, group in groups:
        if not group.get("checks") and group.get("status") in NOT_PASSED:
            # A group that failed before any query ran (e.g. it could not connect).
            message = str(group.get("message", ""))
            found.append(CheckOutcome(check_type, group_name, group_name, group["status"], message, 0.0))
    custom = health.get("custom")
    if custom:
        found.append(
            CheckOutcome(
                "custom",
                "custom",
                str(custom.get("jobName") or "custom"),
                str(custom.get("status", "")),
                str(custom.get("result", "")),
                float(custom.get("duration") or 0.0),
            )
        )
    return found


def outcome_of(test: dict[str, Any], backup: dict[str, Any] | None = None) -> Outcome:
    """The outcome of ``test``; ``backup`` (the tested Velero Backup, if known) names its source."""
    metadata, spec = test["metadata"], test.get("spec") or {}
    status = test.get("status") or {}
    result = status.get("result") or {}
    objectives = spec.get("objectives") or {}
    return Outcome(
        namespace=str(metadata.get("namespace", "")),
        name=str(metadata.get("name", "")),
        backup=str(spec.get("backupName", "")),
        source=source_of(test, backup),
        phase=str(status.get("phase") or "Pending"),
        reason=str(status.get("reason") or ""),
        message=str(status.get("message") or ""),
        start_time=_time(status.get("startTime")),
        verify_start_time=_time(status.get("verifyStartTime")),
        completion_time=_time(status.get("completionTime")),
        rto=_number(result.get("rto")),
        rpo=_number(result.get("rpo")),
        rto_objective=_number(objectives.get("rtoSeconds")),
        rpo_objective=_number(objectives.get("rpoSeconds")),
        resources_recovered=_count(result.get("resourcesRecovered")),
        resources_failed=_count(result.get("resourcesFailed")),
        checks=tuple(_checks(spec, status.get("healthChecks") or {})),
        cost=_number((status.get("cost") or {}).get("estimate")),
        currency=str((status.get("cost") or {}).get("currency") or ""),
        drift=tuple(str(f.get("type", "")) for f in (status.get("baseline") or {}).get("findings") or []),
    )
