"""The closed sets of a restore test's status: phases, reasons and condition types.

Closed, so that metrics can create their per-reason series at 0 before the first failure and the
CRD can enumerate the phases; ``StrEnum`` members are plain strings in JSON and in labels.
"""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    """``status.phase``; no phase yet reads as Pending."""

    PENDING = "Pending"
    RESTORING = "Restoring"
    VERIFYING = "Verifying"
    CHECKING = "Checking"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


ACTIVE_PHASES = (Phase.RESTORING, Phase.VERIFYING, Phase.CHECKING)
TERMINAL_PHASES = (Phase.SUCCEEDED, Phase.FAILED)


class FailureReason(StrEnum):
    """``status.reason`` of a Failed test: every reason a test can fail with."""

    BACKUP_NOT_FOUND = "BackupNotFound"
    BACKUP_NOT_COMPLETED = "BackupNotCompleted"
    BACKUP_EXPIRED = "BackupExpired"
    INVALID_SPEC = "InvalidSpec"
    UNSAFE_RESTORE = "UnsafeRestore"
    NOTHING_TO_RESTORE = "NothingToRestore"
    RESTORE_FAILED = "RestoreFailed"
    RESTORE_PARTIALLY_FAILED = "RestorePartiallyFailed"
    RESOURCES_MISSING = "ResourcesMissing"
    WORKLOADS_NOT_READY = "WorkloadsNotReady"
    HEALTH_CHECKS_FAILED = "HealthChecksFailed"
    OBJECTIVE_MISSED = "ObjectiveMissed"
    BASELINE_DRIFT = "BaselineDrift"
    COST_LIMIT_EXCEEDED = "CostLimitExceeded"
    TIMEOUT = "Timeout"


class PendingReason(StrEnum):
    """``status.reason`` of a Pending test: why it has not started."""

    WAITING_FOR_BACKUP = "WaitingForBackup"
    WAITING_FOR_SLOT = "WaitingForSlot"


class TransitionReason(StrEnum):
    """``status.reason`` (and the Event's) of a step forward."""

    RESTORE_CREATED = "RestoreCreated"
    RESTORE_COMPLETED = "RestoreCompleted"
    WORKLOADS_READY = "WorkloadsReady"
    SUCCEEDED = "Succeeded"
    CLEANUP_COMPLETED = "CleanupCompleted"


class ConditionType(StrEnum):
    """``status.conditions[].type`` of a restore test."""

    RESTORE_COMPLETED = "RestoreCompleted"
    WORKLOADS_READY = "WorkloadsReady"
    HEALTH_CHECKS_COMPLETED = "HealthChecksCompleted"
    CLEANUP_COMPLETED = "CleanupCompleted"
