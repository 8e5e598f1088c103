"""Writing a restore test's status: phase, conditions, result, and an Event for each transition.

Status goes through the ``/status`` subresource as a JSON merge patch that carries the
``resourceVersion`` the controller read: a write based on a stale read fails with 409 and the key
is retried, so two steps never overwrite each other.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from lazarus.api.v1alpha1 import ConditionType, Phase
from lazarus.kube.client import Rest
from lazarus.kube.conditions import FALSE, set_condition
from lazarus.kube.events import NORMAL, WARNING, EventRecorder
from lazarus.kube.resources import LAZARUS_RESTORE_TESTS
from lazarus.lifecycle.durations import format_time

# The condition a failure in each phase is reported on.
_FAILED_CONDITION = {
    "": ConditionType.RESTORE_COMPLETED,
    Phase.PENDING: ConditionType.RESTORE_COMPLETED,
    Phase.RESTORING: ConditionType.RESTORE_COMPLETED,
    Phase.VERIFYING: ConditionType.WORKLOADS_READY,
    Phase.CHECKING: ConditionType.HEALTH_CHECKS_COMPLETED,
}


def utc_now() -> datetime:
    """The wall-clock time of production (tests inject their own)."""
    return datetime.now(UTC)


def now_text() -> str:
    return format_time(utc_now())


class StatusWriter:
    """Patches test status and records the matching Events; ``now`` gives the timestamps."""

    def __init__(self, rest: Rest, events: EventRecorder, now: Callable[[], datetime] = utc_now) -> None:
        self._rest = rest
        self._events = events
        self._now = now

    def event(self, test: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """Record an Event on the test without changing its status."""
        self._events.record(test, type_, reason, message)

    def patch(self, test: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        """Merge ``status`` into the test's status (optimistic concurrency); return the new object."""
        metadata = test["metadata"]
        path = f"{LAZARUS_RESTORE_TESTS.collection_path(metadata['namespace'])}/{metadata['name']}/status"
        body = {"metadata": {"resourceVersion": metadata["resourceVersion"]}, "status": status}
        return self._rest.request("PATCH", path, body=body, content_type="application/merge-patch+json")

    def transition(
        self,
        test: dict[str, Any],
        phase: str,
        reason: str,
        message: str,
        *,
        condition: tuple[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        warning: bool = False,
    ) -> dict[str, Any]:
        """Move to ``phase`` (``condition`` = (type, status) to set with the same reason/message)."""
        status = dict(extra or {})
        status.update({"phase": phase, "reason": reason, "message": message})
        status["observedGeneration"] = test["metadata"].get("generation")
        if condition is not None:
            status["conditions"] = set_condition(
                (test.get("status") or {}).get("conditions"),
                condition[0],
                condition[1],
                reason,
                message,
                now=format_time(self._now()),
                generation=test["metadata"].get("generation"),
            )
        updated = self.patch(test, status)
        self._events.record(test, WARNING if warning else NORMAL, reason, message)
        return updated

    def set_condition(self, test: dict[str, Any], type_: str, status: str, reason: str, message: str) -> None:
        """Set one condition (phase and result unchanged) and record it as an Event."""
        conditions = set_condition(
            (test.get("status") or {}).get("conditions"),
            type_,
            status,
            reason,
            message,
            now=format_time(self._now()),
            generation=test["metadata"].get("generation"),
        )
        self.patch(test, {"conditions": conditions})
        self._events.record(test, NORMAL, reason, message)

    def fail(
        self, test: dict[str, Any], reason: str, message: str, extra: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """End the test as Failed with ``reason`` (a CamelCase constant) and a precise message."""
        current_phase = (test.get("status") or {}).get("phase") or ""
        status = {"completionTime": format_time(self._now()), "result": {"success": False, "message": message}}
        status.update(extra or {})
        return self.transition(
            test,
            Phase.FAILED,
            reason,
            message,
            condition=(_FAILED_CONDITION.get(current_phase, ConditionType.HEALTH_CHECKS_COMPLETED), FALSE),
            extra=status,
            warning=True,
        )
