"""Finished ``LazarusRestoreTest`` objects as the controller writes them, for observability tests."""

from __future__ import annotations

from typing import Any

# A database check as a user writes it (valid against the CRD).
ORDERS_DB = {
    "name": "orders-db",
    "type": "postgres",
    "serviceRef": {"name": "orders-db"},
    "queries": [
        {"name": "row-count", "sql": "SELECT count(*) FROM orders", "expectedRange": {"min": 100, "max": 1000}}
    ],
}


def finished_test(
    name: str = "shop-test",
    *,
    namespace: str = "team-a",
    backup: str = "shop-20260101",
    success: bool = True,
    reason: str | None = None,
    completed: str = "2026-01-10T04:10:00Z",
    started: str = "2026-01-10T04:00:00Z",
    restored: str = "2026-01-10T04:05:00Z",
    rto: float | None = 600.0,
    rpo: float | None = 3600.0,
    labels: dict[str, str] | None = None,
    spec: dict[str, Any] | None = None,
    health: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Succeeded (or Failed) test with a postgres check group and an HTTP endpoint."""
    result: dict[str, Any] = {"success": success, "message": "restore verified" if success else "checks failed",
                              "resourcesRecovered": 12, "resourcesFailed": 0}  # fmt: skip
    if rto is not None:
        result["rto"] = rto
    if rpo is not None:
        result["rpo"] = rpo
    default_health = {
        "phase": "Completed",
        "databases": [
            {
                "name": "orders-db",
                "status": "Passed" if success else "Failed",
                "checks": [
                    {"name": "row-count", "status": "Passed" if success else "Failed",
                     "result": "Count: 250 (within range 100-1000)" if success else "Count: 3 (outside 100-1000)",
                     "duration": 0.2},
                ],
            }
        ],
        "http": {"status": "Passed", "checks": [{"name": "health", "status": "Passed", "duration": 0.05,
                                                  "statusCode": 200}]},
    }  # fmt: skip
    return {
        "apiVersion": "lazarus.io/v1alpha1",
        "kind": "LazarusRestoreTest",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "labels": dict(labels or {})},
        "spec": {
            "backupName": backup,
            "healthChecks": {"databases": [ORDERS_DB]},
            **(spec or {}),
        },
        "status": {
            "phase": "Succeeded" if success else "Failed",
            "reason": reason or ("Succeeded" if success else "HealthChecksFailed"),
            "message": "backup restored and verified" if success else "1 of 2 checks failed: orders-db/row-count",
            "startTime": started,
            "verifyStartTime": restored,
            "completionTime": completed,
            "healthChecks": default_health if health is None else health,
            "result": result,
        },
    }


def backup(name: str, schedule: str | None = None) -> dict[str, Any]:
    """A Velero Backup, made by ``schedule`` when given."""
    labels = {"velero.io/schedule-name": schedule} if schedule else {}
    metadata = {"name": name, "namespace": "velero", "labels": labels}
    return {"apiVersion": "velero.io/v1", "kind": "Backup", "metadata": metadata, "status": {"phase": "Completed"}}
