"""A restore test as the phase functions see it: typed spec, raw status, and Velero's vocabulary.

``TestView`` is built once per sync from the cached object, which it never changes; the phase
functions read it and the cache, and return decisions (``decisions``) for the controller to act on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lazarus.api.v1alpha1 import Phase, RestoreTestSpec
from lazarus.lifecycle.durations import parse_time

# Velero phases of a Backup.
BACKUP_USABLE = "Completed"
BACKUP_PARTIAL = "PartiallyFailed"
BACKUP_IN_PROGRESS = (
    "",
    "New",
    "InProgress",
    "WaitingForPluginOperations",
    "WaitingForPluginOperationsPartiallyFailed",
    "Finalizing",
    "FinalizingPartiallyFailed",
)
# Velero phases of a Restore.
RESTORE_COMPLETED = "Completed"
RESTORE_PARTIAL = "PartiallyFailed"
RESTORE_TERMINAL = (RESTORE_COMPLETED, RESTORE_PARTIAL, "Failed", "FailedValidation")
RESTORE_NOT_STARTED = ("", "New")


@dataclass(frozen=True)
class TestView:
    """One cached ``LazarusRestoreTest``: ``obj`` is the cache's (read-only) dict."""

    obj: Mapping[str, Any]
    spec: RestoreTestSpec
    status: Mapping[str, Any]

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> TestView:
        """The view of the test object ``obj``."""
        return cls(obj, RestoreTestSpec.of(obj), obj.get("status") or {})

    @property
    def key(self) -> str:
        """``namespace/name``."""
        return f"{self.obj['metadata']['namespace']}/{self.obj['metadata']['name']}"

    @property
    def uid(self) -> str:
        return str(self.obj["metadata"]["uid"])

    @property
    def phase(self) -> Phase:
        """The phase; a test without one is Pending."""
        return Phase(self.status.get("phase") or Phase.PENDING)

    @property
    def restore_name(self) -> str:
        """The deterministic name of the test's Velero Restore (and its resource-modifier ConfigMap)."""
        return f"lazarus-{self.uid[:18]}"

    @property
    def mapping(self) -> dict[str, str]:
        """Source → sandbox namespace, as recorded at the start (empty before)."""
        return dict(self.status.get("namespaceMapping") or {})

    @property
    def sandbox_namespaces(self) -> list[str]:
        return sorted(self.status.get("sandboxNamespaces") or [])

    def section(self, name: str) -> dict[str, Any]:
        """The status section ``name`` (a copy; empty when absent)."""
        return dict(self.status.get(name) or {})

    def elapsed(self, field: str, now: datetime) -> float:
        """Seconds from the status timestamp ``field`` to ``now``; 0 when it is not set."""
        return elapsed_since(self.status.get(field), now)


def elapsed_since(stamp: str | None, now: datetime) -> float:
    """Seconds from the timestamp ``stamp`` to ``now``; 0 when it is not set."""
    return (now - parse_time(stamp)).total_seconds() if stamp else 0.0
