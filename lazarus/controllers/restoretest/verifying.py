"""Verifying → Checking: wait for the restored workloads to become ready."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lazarus.api.v1alpha1 import ConditionType, FailureReason, Phase, TransitionReason
from lazarus.controllers.restoretest.decisions import Advance, Fail, RequeueAfter
from lazarus.controllers.restoretest.view import TestView
from lazarus.lifecycle import workloads
from lazarus.lifecycle.durations import format_time, parse_duration

# At most this many not-ready workloads are named in status.
MAX_NOT_READY = 20


@dataclass(frozen=True)
class NotReady:
    """The workloads did not become ready in time: collect diagnostics, then fail with ``fail``."""

    fail: Fail


def verify(view: TestView, seen: Sequence[Mapping[str, Any]], now: datetime) -> Advance | RequeueAfter | NotReady:
    """Checking once every expected workload of ``seen`` (the restored ones) is ready."""
    expected = int(view.section("workloads").get("expected") or 0)
    not_ready = sorted(workloads.describe(dict(o)) for o in seen if not workloads.is_ready(dict(o)))
    if len(seen) >= expected and not not_ready:
        return Advance(
            Phase.CHECKING,
            TransitionReason.WORKLOADS_READY,
            f"{len(seen)} restored workloads are ready",
            condition=ConditionType.WORKLOADS_READY,
            extra={"workloads": {"expected": expected, "ready": len(seen), "notReady": [],
                                 "readyTime": format_time(now)}},
        )  # fmt: skip
    timeout = parse_duration(view.spec.workloads.ready_timeout)
    waited = view.elapsed("verifyStartTime", now)
    if waited < timeout:
        return RequeueAfter(timeout - waited)
    missing = max(expected - len(seen), 0)
    detail = not_ready[:MAX_NOT_READY] + ([f"{missing} workloads in the backup were not restored"] if missing else [])
    return NotReady(
        Fail(
            FailureReason.WORKLOADS_NOT_READY,
            f"not ready after {timeout:.0f}s: {'; '.join(detail)}",
            {"workloads": {"expected": expected, "ready": len(seen) - len(not_ready), "notReady": detail}},
        )
    )
