"""``lazarus.io/v1alpha1``: the typed model of ``LazarusRestoreTest`` (spec, phases, reasons) and
of the ``BackupTestPolicy`` spec.

The defaults and enumerations written here are the only ones: ``crds/generate.py`` puts them into
the CRD's schema, and the controllers read a spec through ``RestoreTestSpec.of``, which applies
them once (a unit test holds the generated CRD to this model).
"""

from lazarus.api.v1alpha1.policy import BackupTestPolicySpec, ConcurrencyPolicy
from lazarus.api.v1alpha1.restoretest import (
    DEFAULT_BACKUP_NAMESPACE,
    DEFAULT_NAMESPACE_PREFIX,
    DEFAULT_READY_TIMEOUT,
    DEFAULT_RESTORE_TIMEOUT,
    DEFAULT_WAIT_FOR,
    WORKLOAD_KINDS,
    CleanupSettings,
    CostSettings,
    Objectives,
    RestoreSettings,
    RestoreTestSpec,
    SandboxSettings,
    WorkloadSettings,
)
from lazarus.api.v1alpha1.status import (
    ACTIVE_PHASES,
    TERMINAL_PHASES,
    ConditionType,
    FailureReason,
    PendingReason,
    Phase,
    TransitionReason,
)

__all__ = [
    "ACTIVE_PHASES",
    "BackupTestPolicySpec",
    "DEFAULT_BACKUP_NAMESPACE",
    "DEFAULT_NAMESPACE_PREFIX",
    "DEFAULT_READY_TIMEOUT",
    "DEFAULT_RESTORE_TIMEOUT",
    "DEFAULT_WAIT_FOR",
    "TERMINAL_PHASES",
    "WORKLOAD_KINDS",
    "CleanupSettings",
    "ConcurrencyPolicy",
    "ConditionType",
    "CostSettings",
    "FailureReason",
    "Objectives",
    "PendingReason",
    "Phase",
    "RestoreSettings",
    "RestoreTestSpec",
    "SandboxSettings",
    "TransitionReason",
    "WorkloadSettings",
]
