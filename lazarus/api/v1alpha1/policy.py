"""The spec of a ``BackupTestPolicy``, the part its controller reads, with its defaults applied once
(the backup selector and the test template are read raw by ``lazarus.automation``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lazarus.api.v1alpha1.fields import json_key as _key
from lazarus.api.v1alpha1.fields import parse
from lazarus.api.v1alpha1.restoretest import DEFAULT_BACKUP_NAMESPACE


class ConcurrencyPolicy(StrEnum):
    """What to do when a run is due while the previous test still runs (CronJob's three answers)."""

    ALLOW = "Allow"
    FORBID = "Forbid"
    REPLACE = "Replace"


# Enough history to see a trend; one failure says what is wrong now.
DEFAULT_SUCCESSFUL_HISTORY, DEFAULT_FAILED_HISTORY = 3, 1


@dataclass(frozen=True)
class BackupTestPolicySpec:
    """``spec`` of a ``BackupTestPolicy``."""

    schedule: str | None = _key("schedule", None)
    time_zone: str | None = _key("timeZone", None)
    suspend: bool = _key("suspend", False)
    concurrency_policy: ConcurrencyPolicy = _key("concurrencyPolicy", ConcurrencyPolicy.FORBID)
    starting_deadline_seconds: int | None = _key("startingDeadlineSeconds", None)
    backup_namespace: str = _key("backupNamespace", DEFAULT_BACKUP_NAMESPACE)
    allow_cluster_wide_backups: bool = _key("allowClusterWideBackups", False)
    test_failed_backups: bool = _key("testFailedBackups", False)
    successful_tests_history_limit: int = _key("successfulTestsHistoryLimit", DEFAULT_SUCCESSFUL_HISTORY)
    failed_tests_history_limit: int = _key("failedTestsHistoryLimit", DEFAULT_FAILED_HISTORY)

    @classmethod
    def of(cls, policy: Mapping[str, Any]) -> BackupTestPolicySpec:
        """The spec of the policy object ``policy``, defaults applied."""
        return parse(cls, policy.get("spec"))
