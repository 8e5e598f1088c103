"""Restoring → Verifying: follow the Velero Restore and judge what it brought back.

``progress`` says what the Restore's state calls for; once it has ``Ended``, the controller reads
its details (restore results) and the restored resource list and asks ``verdict``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lazarus.api.v1alpha1 import ConditionType, FailureReason, Phase, TransitionReason
from lazarus.controllers.restoretest.decisions import Advance, Fail, RequeueAfter
from lazarus.controllers.restoretest.view import RESTORE_COMPLETED, RESTORE_PARTIAL, RESTORE_TERMINAL, TestView
from lazarus.lifecycle import parity
from lazarus.lifecycle.durations import format_time, parse_duration


@dataclass(frozen=True)
class Recreate:
    """The Restore is missing and was not just created: create the sandboxes and it (again)."""


@dataclass(frozen=True)
class Ended:
    """Velero finished ``restore``: read its details and parity, then ask ``verdict``."""

    restore: Mapping[str, Any]


def progress(
    view: TestView, restore: Mapping[str, Any] | None, now: datetime, *, just_created: bool
) -> Fail | RequeueAfter | Recreate | Ended | None:
    """What the Restore's state (``None``: not in the cache) calls for."""
    timeout = parse_duration(view.spec.restore.timeout)
    elapsed = view.elapsed("startTime", now)
    if restore is None:
        if elapsed > timeout:
            return Fail(FailureReason.TIMEOUT, f"the Velero restore did not start within {timeout:.0f}s")
        return None if just_created else Recreate()  # a Restore just created comes with its watch event
    phase = (restore.get("status") or {}).get("phase") or ""
    if phase in RESTORE_TERMINAL:
        return Ended(restore)
    if elapsed > timeout:
        still = f"Velero restore {view.restore_name} still {phase or 'New'} after {timeout:.0f}s"
        return Fail(FailureReason.TIMEOUT, still)
    return RequeueAfter(timeout - elapsed)


def failed(view: TestView, details: Mapping[str, Any]) -> Fail | None:
    """The failure of a Restore Velero did not complete (None: it completed)."""
    phase = details["veleroPhase"]
    if phase == RESTORE_COMPLETED:
        return None
    reason = FailureReason.RESTORE_PARTIALLY_FAILED if phase == RESTORE_PARTIAL else FailureReason.RESTORE_FAILED
    why = "; ".join(details["errorMessages"][:3]) or "see the restore's logs"
    return Fail(reason, f"Velero restore {view.restore_name} ended {phase}: {why}", {"restore": dict(details)})


def restored_parity(recorded: Mapping[str, Any], listed: Mapping[str, Any], sandboxes: list[str]) -> dict[str, Any]:
    """``recorded`` parity completed with what the restored resource list ``listed`` holds."""
    restored = parity.restored_counts(dict(listed), sandboxes)
    return {**recorded, "restored": restored, "missing": parity.missing(recorded.get("expected") or {}, restored)}


def verdict(view: TestView, details: Mapping[str, Any], checked: Mapping[str, Any], now: datetime) -> Fail | Advance:
    """Verifying, unless items of the backup did not come back (when parity is enforced)."""
    if checked.get("missing") and checked.get("enforced"):
        gaps = ", ".join(f"{kind}: {n} of {checked['expected'][kind]}" for kind, n in checked["missing"].items())
        message = f"Velero restore {view.restore_name} completed but items of the backup did not come back ({gaps})"
        return Fail(FailureReason.RESOURCES_MISSING, message, {"restore": dict(details), "parity": dict(checked)})
    progress_ = details.get("progress") or {}
    recovered, total = int(progress_.get("itemsRestored") or 0), int(progress_.get("totalItems") or 0)
    return Advance(
        Phase.VERIFYING,
        TransitionReason.RESTORE_COMPLETED,
        f"Velero restore {view.restore_name} completed: {recovered}/{total} items",
        condition=ConditionType.RESTORE_COMPLETED,
        extra={
            "restore": dict(details),
            "parity": dict(checked),
            "workloads": view.section("workloads"),
            "verifyStartTime": format_time(now),
            "result": {"resourcesRecovered": recovered, "resourcesFailed": max(total - recovered, 0)},
        },
    )
