"""Checking → Succeeded / Failed: RTO, RPO and the verdict on the health checks' report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lazarus.api.v1alpha1 import ConditionType, FailureReason, Phase, TransitionReason
from lazarus.baseline import BaselineCheck
from lazarus.checks.runner import HealthCheckReport
from lazarus.controllers.restoretest.decisions import Advance, Fail
from lazarus.controllers.restoretest.view import TestView
from lazarus.lifecycle.durations import format_time, parse_time


@dataclass(frozen=True)
class Measures:
    """RTO (start of the restore → checks done, seconds) and RPO (newest data → then; None: unknown)."""

    rto: float
    rpo: float | None

    @classmethod
    def of(
        cls, view: TestView, report: HealthCheckReport, backup_time: datetime | None, finished: datetime
    ) -> Measures:
        """``finished``: when the checks ended (RTO includes them)."""
        rto = round((finished - parse_time(view.status["startTime"])).total_seconds(), 3)
        newest = report.newest_data or backup_time
        return cls(rto, round(max((finished - newest).total_seconds(), 0.0), 3) if newest else None)


def missed_objectives(view: TestView, measures: Measures) -> list[str]:
    objectives = view.spec.objectives
    missed = []
    if objectives.rto_seconds is not None and measures.rto > objectives.rto_seconds:
        missed.append(f"RTO {measures.rto:.0f}s > objective {objectives.rto_seconds}s")
    if measures.rpo is not None and objectives.rpo_seconds is not None and measures.rpo > objectives.rpo_seconds:
        missed.append(f"RPO {measures.rpo:.0f}s > objective {objectives.rpo_seconds}s")
    return missed


def verdict(
    view: TestView, report: HealthCheckReport, measures: Measures, baseline: BaselineCheck, finished: datetime
) -> Fail | Advance:
    """The result: failed checks, then missed objectives, then a baseline that fails the test."""
    result: dict[str, Any] = {**view.section("result"), "success": True, "rto": measures.rto, "rpo": measures.rpo,
                              "message": "restore verified"}  # fmt: skip
    extra: dict[str, Any] = {"completionTime": format_time(finished), "healthChecks": report.status,
                             "baseline": baseline.status}  # fmt: skip
    missed = missed_objectives(view, measures)
    failure: tuple[FailureReason, str] | None = None
    if not report.passed:
        failure = (FailureReason.HEALTH_CHECKS_FAILED, report.summary)
    elif missed:
        failure = (FailureReason.OBJECTIVE_MISSED, "; ".join(missed))
    elif baseline.fails_test:
        failure = (FailureReason.BASELINE_DRIFT, baseline.message)
    if failure is not None:
        return Fail(failure[0], failure[1], {**extra, "result": {**result, "success": False, "message": failure[1]}})
    return Advance(
        Phase.SUCCEEDED,
        TransitionReason.SUCCEEDED,
        f"backup {view.spec.backup_name} restored and verified in {measures.rto:.1f}s; {report.summary}",
        condition=ConditionType.HEALTH_CHECKS_COMPLETED,
        extra={**extra, "result": result},
    )


def drift_warning(baseline: BaselineCheck) -> str | None:
    """The Warning Event message of a drift that does not fail the test (None: no drift)."""
    return baseline.message if baseline.drifted and not baseline.fails_test else None

