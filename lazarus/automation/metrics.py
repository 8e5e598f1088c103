"""Prometheus metrics of automatic testing (registered in the default registry on import)."""

from __future__ import annotations

from prometheus_client import Counter

BACKUPS_UNSUCCESSFUL = Counter(
    "lazarus_backups_unsuccessful_total",
    "Opted-in Velero backups seen ending PartiallyFailed, Failed or FailedValidation, by phase and "
    "Schedule (empty: not made by a Schedule). Counted once per backup by each operator process.",
    ["phase", "schedule"],
)
TESTS_CREATED = Counter(
    "lazarus_automatic_tests_created_total",
    "LazarusRestoreTests Lazarus created by itself, by source: schedule (a Schedule's opt-in), "
    "backup (a Backup's label) or policy (a BackupTestPolicy's cron run).",
    ["source"],
)
POLICY_RUNS_SKIPPED = Counter(
    "lazarus_policy_runs_skipped_total",
    "BackupTestPolicy runs that created no test, by reason: ConcurrencyForbidden, MissedSchedule, "
    "NoBackupFound. Counted once per run by each operator process.",
    ["reason"],
)
