"""The spec of a ``LazarusRestoreTest`` as frozen dataclasses, its defaults applied once.

Each field names its JSON key (``fields``). ``RestoreTestSpec.of(test)`` reads a test's spec with
every default of this module filled in, so no reader repeats a default or guards a missing
section; ``fields.json_defaults`` gives ``crds/generate.py`` the same defaults for the CRD.
Sections other modules read raw (health checks, notifications, baseline, metrics, the quota) are
not modelled here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lazarus.api.v1alpha1.fields import json_key as _key
from lazarus.api.v1alpha1.fields import parse

# Velero's own default namespace: where its Backups are unless the operator is told otherwise.
DEFAULT_BACKUP_NAMESPACE = "velero"
DEFAULT_NAMESPACE_PREFIX = "lazarus-sbx-"
# A restore of a large backup (volumes by file-system backup) takes minutes; half an hour is
# generous without leaving a stuck Restore unnoticed for long.
DEFAULT_RESTORE_TIMEOUT = "30m"
# Pods of restored workloads pull images and start databases: ten minutes.
DEFAULT_READY_TIMEOUT = "10m"
WORKLOAD_KINDS = ("Deployments", "StatefulSets", "DaemonSets", "Jobs")
# Jobs are not waited for by default: many backed-up Jobs are one-off runs not meant to run again.
DEFAULT_WAIT_FOR = ("Deployments", "StatefulSets", "DaemonSets")

@dataclass(frozen=True)
class RestoreSettings:
    """``spec.restore``: what the Velero Restore restores."""

    included_namespaces: tuple[str, ...] = _key("includedNamespaces", ())
    excluded_namespaces: tuple[str, ...] = _key("excludedNamespaces", ())
    included_resources: tuple[str, ...] = _key("includedResources", ())
    excluded_resources: tuple[str, ...] = _key("excludedResources", ())
    label_selector: Mapping[str, Any] | None = _key("labelSelector", None)
    #: Cluster-scoped resources are shared with production: restored only when asked for.
    include_cluster_resources: bool = _key("includeClusterResources", False)
    restore_pvs: bool = _key("restorePVs", True)
    restore_status: bool = _key("restoreStatus", False)
    timeout: str = _key("timeout", DEFAULT_RESTORE_TIMEOUT)

    @property
    def filters_resources(self) -> bool:
        """Whether only part of the backup's resources is restored (parity is then not enforced)."""
        return bool(self.included_resources or self.excluded_resources or self.label_selector)


@dataclass(frozen=True)
class SandboxSettings:
    """``spec.sandbox``: how sandbox namespaces are named and labelled."""

    namespace_prefix: str = _key("namespacePrefix", DEFAULT_NAMESPACE_PREFIX)
    labels: Mapping[str, str] | None = _key("labels", None)


@dataclass(frozen=True)
class WorkloadSettings:
    """``spec.workloads``: waiting for restored workloads."""

    ready_timeout: str = _key("readyTimeout", DEFAULT_READY_TIMEOUT)
    wait_for: tuple[str, ...] = _key("waitFor", DEFAULT_WAIT_FOR)


@dataclass(frozen=True)
class CleanupSettings:
    """``spec.cleanup``: what is removed when the test completes."""

    enabled: bool = _key("enabled", True)
    delete_namespace: bool = _key("deleteNamespace", True)
    delete_secrets: bool = _key("deleteSecrets", True)
    keep_on_failure: bool = _key("keepOnFailure", False)


@dataclass(frozen=True)
class Objectives:
    """``spec.objectives``: RTO and RPO limits in seconds (None: no objective)."""

    rto_seconds: int | None = _key("rtoSeconds", None)
    rpo_seconds: int | None = _key("rpoSeconds", None)


@dataclass(frozen=True)
class CostSettings:
    """``spec.cost``, the part the controller reads (the quota is read raw by ``lazarus.cost``)."""

    max_cost: float | None = _key("maxCost", None)


@dataclass(frozen=True)
class RestoreTestSpec:
    """``spec`` of a ``LazarusRestoreTest``."""

    backup_name: str = _key("backupName", "")
    backup_namespace: str = _key("backupNamespace", DEFAULT_BACKUP_NAMESPACE)
    allow_partially_failed: bool = _key("allowPartiallyFailed", False)
    restore_namespace: str | None = _key("restoreNamespace", None)
    #: How long the sandbox of a finished test is kept (None: cleaned up at once).
    ttl: str | None = _key("ttl", None)
    sandbox: SandboxSettings = _key("sandbox", section=SandboxSettings)
    restore: RestoreSettings = _key("restore", section=RestoreSettings)
    workloads: WorkloadSettings = _key("workloads", section=WorkloadSettings)
    cleanup: CleanupSettings = _key("cleanup", section=CleanupSettings)
    objectives: Objectives = _key("objectives", section=Objectives)
    cost: CostSettings = _key("cost", section=CostSettings)

    @classmethod
    def of(cls, test: Mapping[str, Any]) -> RestoreTestSpec:
        """The spec of the test object ``test``, defaults applied."""
        return parse(cls, test.get("spec"))
