"""I/O of reading what Velero wrote: a backup's resource list, a Restore's results and restored list."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from lazarus.api.v1alpha1 import FailureReason
from lazarus.controllers.restoretest.decisions import Fail
from lazarus.controllers.restoretest.restoring import restored_parity
from lazarus.controllers.restoretest.view import TestView, elapsed_since
from lazarus.kube.client import Rest
from lazarus.velero.backup_contents import BackupContents, backup_resource_list
from lazarus.velero.downloads import DownloadError, TargetKind, download_json
from lazarus.velero.restore_results import restore_results

# Seconds after a restore completed that its restored resource list may still be missing.
PARITY_LIST_GRACE = 60.0
# At most this many restore error/warning messages are kept in status.
MAX_MESSAGES = 50


class Reader:
    """Downloads Velero's artefacts through ``rest``; transient failures raise (retried)."""

    def __init__(self, rest: Rest, velero_namespace: str) -> None:
        self._rest = rest
        self._velero = velero_namespace

    def backup_contents(self, view: TestView) -> BackupContents | Fail:
        """The backup's resource list, or the failure of a test whose backup cannot be read."""
        name = view.spec.backup_name
        try:
            return backup_resource_list(self._rest, name, self._velero)
        except DownloadError as exc:
            if exc.transient:
                raise  # e.g. Velero restarting: retried with backoff
            return Fail(FailureReason.UNSAFE_RESTORE, f"cannot determine the namespaces in backup {name} from its "
                        f"contents: {exc}")  # fmt: skip

    def restore_details(self, restore: Mapping[str, Any]) -> dict[str, Any]:
        """``status.restore`` of a Restore Velero finished; its results only when it reported any."""
        status = restore.get("status") or {}
        progress = status.get("progress") or {}
        details: dict[str, Any] = {
            "restoreName": restore["metadata"]["name"],
            "veleroPhase": status.get("phase"),
            "progress": {"itemsRestored": int(progress.get("itemsRestored") or 0),
                         "totalItems": int(progress.get("totalItems") or 0)},
            "warnings": int(status.get("warnings") or 0),
            "errors": int(status.get("errors") or 0),
            "errorMessages": [],
        }  # fmt: skip
        if details["errors"] or details["warnings"] or status.get("failureReason"):
            messages = [f"velero: {status['failureReason']}"] if status.get("failureReason") else []
            try:
                results = restore_results(self._rest, restore["metadata"]["name"], self._velero)
                messages += results.errors + [f"warning: {w}" for w in results.warnings]
            except DownloadError as exc:
                messages.append(f"restore results unavailable: {exc}")
            details["errorMessages"] = [m[:1000] for m in messages[:MAX_MESSAGES]]
        return details

    def parity(self, view: TestView, restore: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        """The test's parity status completed with what the restore brought back.

        Velero uploads the restored resource list as the restore finishes; while it is not there
        yet the sync is retried, for at most ``PARITY_LIST_GRACE`` seconds after the restore
        completed; then parity is recorded as unavailable instead of failing the test.
        """
        recorded = view.section("parity")
        try:
            listed = download_json(self._rest, TargetKind.RESTORE_RESOURCE_LIST, restore["metadata"]["name"],
                                   self._velero)  # fmt: skip
        except DownloadError as exc:
            completed = (restore.get("status") or {}).get("completionTimestamp")
            if exc.transient or elapsed_since(completed, now) < PARITY_LIST_GRACE:
                raise
            unavailable = f"the restored resource list could not be read: {exc}"
            return {**recorded, "enforced": False, "unavailable": unavailable}
        return restored_parity(recorded, listed or {}, view.sandbox_namespaces)
