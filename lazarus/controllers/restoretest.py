"""The restore-test controller: takes a ``LazarusRestoreTest`` from Pending to a verified,
measured and cleaned-up result.

Phases: ``Pending`` → ``Restoring`` → ``Verifying`` → ``Checking`` → ``Succeeded`` / ``Failed``,
then cleanup. Each sync does the next step that the cached state calls for and writes it to
status; the status write (or the watched object it created) brings the key back. Everything the
controller creates has a name derived from the test's UID (sandbox namespaces, the Velero Restore,
its resource-modifier ConfigMap), so a crash or a new leader at any point resumes without a second
restore and without leaking an object. A finalizer guarantees cleanup when the test is deleted;
sandboxes whose test is gone (or was recreated under the same name) are removed when seen.

Outcomes follow the controller contract: a user error (missing backup, unsafe restore, ...) ends
the test ``Failed`` with a reason and is not retried; API errors are raised and retried.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import structlog

from lazarus.automation.backups import velero_findings
from lazarus.baseline import BASELINE_DRIFT, BaselineStore, compare_with_baseline, record_baseline
from lazarus.checks import run_health_checks
from lazarus.controllers.base import Controller
from lazarus.cost import COST_LIMIT_EXCEEDED, GUARD_INTERVAL, CostGuard, measure_cost, planned_requests, prices_of
from lazarus.cost.quota import sandbox_quota_objects
from lazarus.informers import (
    BACKUPS,
    DAEMON_SETS,
    DEPLOYMENTS,
    LAZARUS_RESTORE_TESTS,
    NAMESPACE_INDEX,
    NAMESPACES,
    RESTORES,
    STATEFUL_SETS,
    DeletedFinalStateUnknown,
    SharedInformer,
    final_object,
    object_key,
)
from lazarus.kube.client import ApiError, Rest
from lazarus.kube.conditions import TRUE, get_condition
from lazarus.kube.events import NORMAL, WARNING, EventRecorder
from lazarus.lifecycle import parity, workloads
from lazarus.lifecycle.cluster_objects import ClusterObjectDeleter, created_cluster_objects
from lazarus.lifecycle.diagnostics import collect as collect_diagnostics
from lazarus.lifecycle.durations import parse_duration, parse_time
from lazarus.lifecycle.retention import kept_until_deleted
from lazarus.lifecycle.status import (
    ACTIVE_PHASES,
    CHECKING,
    CLEANUP_COMPLETED,
    HEALTH_CHECKS_COMPLETED,
    PENDING,
    RESTORE_COMPLETED,
    RESTORING,
    SUCCEEDED,
    TERMINAL_PHASES,
    VERIFYING,
    WORKLOADS_READY,
    StatusWriter,
    now_text,
)
from lazarus.metrics import observe_finished_test, register_cache_metrics
from lazarus.notify import send_notifications
from lazarus.operator import Context
from lazarus.sandbox import (
    SANDBOX_LABEL,
    TEST_NAME_LABEL,
    TEST_NAMESPACE_LABEL,
    TEST_UID_LABEL,
    is_generated_sandbox,
    namespace_body,
    namespace_mapping,
    network_policy_body,
    owned_by,
    owner_labels,
)
from lazarus.sources import source_of
from lazarus.velero.backup_contents import BackupContents, backup_resource_list
from lazarus.velero.downloads import DownloadError, TargetKind, download_json
from lazarus.velero.resource_modifiers import resource_modifiers_configmap
from lazarus.velero.restore_results import restore_results
from lazarus.velero.restore_spec import UnsafeRestoreError, restore_body, restore_safety

log = structlog.get_logger(__name__)

FINALIZER = "lazarus.io/cleanup"
RESTORED_BY_LABEL = "velero.io/restore-name"
BACKUP_INDEX = "backup"
OWNER_INDEX = "test"

# Velero phases.
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
RESTORE_TERMINAL = ("Completed", "PartiallyFailed", "Failed", "FailedValidation")
RESTORE_NOT_STARTED = ("", "New")
# Seconds a just-created Restore is trusted to exist before the informer shows it.
CREATED_EXPECTATION = 30.0
# Seconds after a restore completed that its restored resource list may still be missing.
PARITY_LIST_GRACE = 60.0
# A test found finished longer ago than this is not reported again (see _report_finished).
REPORT_WINDOW = 3600.0
# At most this many restore error/warning messages are kept in status.
MAX_MESSAGES = 50
# Event reason: the API server refused a call of this test's sync (RBAC).
FORBIDDEN = "Forbidden"
# A namespace name as Velero reads it literally (no glob characters).
_LITERAL_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def _owner_key(obj: dict[str, Any]) -> list[str]:
    """Index: the ``namespace/name`` of the test that owns a labelled object."""
    labels = obj.get("metadata", {}).get("labels") or {}
    namespace, name = labels.get(TEST_NAMESPACE_LABEL), labels.get(TEST_NAME_LABEL)
    return [f"{namespace}/{name}"] if namespace and name else []


def _backup_key(test: dict[str, Any]) -> list[str]:
    spec = test.get("spec") or {}
    return [f"{spec.get('backupNamespace', 'velero')}/{spec.get('backupName')}"]


def _elapsed_since(timestamp: str | None) -> float:
    return 0.0 if not timestamp else (datetime.now(UTC) - parse_time(timestamp)).total_seconds()


class RestoreTestReconciler:
    """Owns the informers, the queue and the sync function of restore tests."""

    def __init__(self, context: Context) -> None:
        settings = context.settings
        self.settings = settings
        self.rest: Rest = context.rest
        self.status = StatusWriter(context.rest, EventRecorder(context.rest, settings.identity))
        factory = context.informers
        self.tests = factory.informer_for(LAZARUS_RESTORE_TESTS)
        self.tests.add_indexers({BACKUP_INDEX: _backup_key})
        self.backups = factory.informer_for(BACKUPS, namespace=settings.velero_namespace)
        self.restores = factory.informer_for(
            RESTORES, namespace=settings.velero_namespace, label_selector=TEST_UID_LABEL
        )
        self.restores.add_indexers({OWNER_INDEX: _owner_key})
        self.sandboxes = factory.informer_for(NAMESPACES, label_selector=f"{SANDBOX_LABEL}=true")
        self.sandboxes.add_indexers({OWNER_INDEX: _owner_key})
        self.workloads = {
            kind: factory.informer_for(resource, label_selector=RESTORED_BY_LABEL)
            for kind, resource in (
                ("Deployments", DEPLOYMENTS),
                ("StatefulSets", STATEFUL_SETS),
                ("DaemonSets", DAEMON_SETS),
            )
        }
        self.controller = Controller(
            "restoretest", self.sync, workers=settings.workers, on_forbidden=self._report_forbidden
        )
        self._admission = threading.Lock()
        self._restores_created: dict[str, float] = {}
        self.cluster_objects = ClusterObjectDeleter(context.rest)
        self.baselines = BaselineStore(context.rest, settings.namespace)
        self.prices = prices_of(settings)
        self.cost_guard = CostGuard(context.rest, self.prices, settings.test_timeout)
        register_cache_metrics(
            self.tests.store.list,
            self.sandboxes.store.list,
            lambda name: self.backups.store.get_by_key(f"{settings.velero_namespace}/{name}"),
        )
        self._wire_handlers()

    # ----------------------------------------------------------------- event handlers → keys

    def _wire_handlers(self) -> None:
        enqueue = self.controller.enqueue
        self.tests.add_event_handler(enqueue, lambda old, new: self._on_test_update(old, new), enqueue)
        self._on_any(self.backups, self._enqueue_tests_of_backup)
        self._on_any(self.restores, self._enqueue_owner)
        self._on_any(self.sandboxes, self._enqueue_owner)
        for informer in self.workloads.values():
            self._on_any(informer, self._enqueue_owner_of_namespace)

    @staticmethod
    def _on_any(informer: SharedInformer, handler: Callable[[dict[str, Any]], None]) -> None:
        def deliver(obj: dict[str, Any] | DeletedFinalStateUnknown) -> None:
            handler(final_object(obj))

        informer.add_event_handler(deliver, lambda _old, new: deliver(new), deliver)

    def _on_test_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.controller.enqueue(new)
        was = (old.get("status") or {}).get("phase")
        now = (new.get("status") or {}).get("phase")
        if was in ACTIVE_PHASES and now not in ACTIVE_PHASES:
            # A slot was freed: let waiting tests try again.
            for test in self.tests.store.list():
                if (test.get("status") or {}).get("phase") in (None, "", PENDING):
                    self.controller.enqueue(test)

    def _enqueue_tests_of_backup(self, backup: dict[str, Any]) -> None:
        for test in self.tests.store.by_index(BACKUP_INDEX, object_key(backup)):
            self.controller.enqueue(test)

    def _enqueue_owner(self, obj: dict[str, Any]) -> None:
        for key in _owner_key(obj):
            self.controller.queue.add(key)

    def _enqueue_owner_of_namespace(self, obj: dict[str, Any]) -> None:
        sandbox = self.sandboxes.store.get_by_key(obj["metadata"].get("namespace", ""))
        if sandbox is not None:
            self._enqueue_owner(sandbox)

    def _report_forbidden(self, key: str, error: ApiError) -> None:
        """A Warning Event on the test: the API server's 403 message names the verb, the resource and
        the ServiceAccount; the sync is retried with backoff (see ``Controller``)."""
        test = self.tests.store.get_by_key(key)
        if test is not None:
            self.status.event(test, WARNING, FORBIDDEN, f"{error.message or error}; grant it to the operator "
                              "(README: Install, RBAC) — retrying with backoff")  # fmt: skip

    # ----------------------------------------------------------------- sync

    def sync(self, key: str) -> None:
        """Advance the test ``key`` by one step (see the module docstring)."""
        test = self.tests.store.get_by_key(key)
        self._delete_orphans(key, test)
        if test is None:
            return
        spec, status = test.get("spec") or {}, test.get("status") or {}
        with structlog.contextvars.bound_contextvars(
            test=key, backup=spec.get("backupName"), phase=status.get("phase") or PENDING
        ):
            self._advance(key, test)

    def _advance(self, key: str, test: dict[str, Any]) -> None:
        if test["metadata"].get("deletionTimestamp"):
            self._finalize(test)
            return
        if FINALIZER not in (test["metadata"].get("finalizers") or []):
            # Go on with the object the PATCH returned: waiting for its watch event would add a
            # round trip to every test's start.
            test = self._set_finalizers(test, [*(test["metadata"].get("finalizers") or []), FINALIZER])
        phase = (test.get("status") or {}).get("phase") or ""
        if phase in TERMINAL_PHASES:
            if "notifications" not in test["status"]:
                test = self._report_finished(test)
            self._clean_up_finished(test)
        elif phase in (RESTORING, VERIFYING, CHECKING):
            left = self.settings.test_timeout - _elapsed_since(test["status"].get("startTime"))
            if left <= 0:
                self.status.fail(test, "Timeout", f"the test did not finish within {self.settings.test_timeout:.0f}s")
                return
            self.controller.queue.add_after(key, left)  # nothing else may bring the key back in time
            if ((test["spec"].get("cost") or {}).get("maxCost")) is not None:
                limit = self.cost_guard.exceeded(test, planned_requests(self._restored_workloads(test)))
                if limit is not None:
                    self.status.fail(test, "CostLimitExceeded", limit.message, extra={"cost": limit.cost.to_status()})
                    return
                self.controller.queue.add_after(key, GUARD_INTERVAL)  # the guard looks again
            {RESTORING: self._restore, VERIFYING: self._verify, CHECKING: self._check}[phase](test)
        else:
            self._admit(test)

    # ----------------------------------------------------------------- Pending → Restoring

    def _admit(self, test: dict[str, Any]) -> None:
        spec = test["spec"]
        if spec.get("backupNamespace", "velero") != self.settings.velero_namespace:
            self.status.fail(
                test,
                "BackupNotFound",
                f"backups are read from the Velero namespace "
                f"{self.settings.velero_namespace!r}, not {spec.get('backupNamespace')!r}",
            )
            return
        backup = self.backups.store.get_by_key(f"{self.settings.velero_namespace}/{spec['backupName']}")
        if backup is None:
            self.status.fail(
                test,
                "BackupNotFound",
                f"Velero backup {self.settings.velero_namespace}/{spec['backupName']} does not exist",
            )
            return
        backup_phase = (backup.get("status") or {}).get("phase") or ""
        if backup_phase in BACKUP_IN_PROGRESS:
            self._pending(test, "WaitingForBackup", f"backup {spec['backupName']} is {backup_phase or 'New'}")
            return
        if backup_phase != BACKUP_USABLE and not (backup_phase == BACKUP_PARTIAL and spec.get("allowPartiallyFailed")):
            self.status.fail(
                test,
                "BackupNotCompleted",
                f"backup {spec['backupName']} ended {backup_phase}{velero_findings(backup)}; "
                "only Completed backups are tested"
                + ("" if backup_phase != BACKUP_PARTIAL else " (set allowPartiallyFailed to test it)"),
            )
            return
        expiration = (backup.get("status") or {}).get("expiration")
        if expiration and parse_time(expiration) < datetime.now(UTC):
            self.status.fail(test, "BackupExpired", f"backup {spec['backupName']} expired at {expiration}")
            return
        with self._admission:
            active = sum((t.get("status") or {}).get("phase") in ACTIVE_PHASES for t in self.tests.store.list())
            if active >= self.settings.max_concurrent_tests:
                self._pending(
                    test,
                    "WaitingForSlot",
                    f"waiting for a free slot: {active} running, at most {self.settings.max_concurrent_tests} at once",
                )
                return
            self._start(test, backup)

    def _pending(self, test: dict[str, Any], reason: str, message: str) -> None:
        status = test.get("status") or {}
        if status.get("phase") != PENDING or status.get("reason") != reason:
            self.status.transition(test, PENDING, reason, message)

    def _start(self, test: dict[str, Any], backup: dict[str, Any]) -> None:
        spec = test["spec"]
        contents: BackupContents | None = None
        in_backup = listed_namespaces(backup)
        if in_backup is None:  # a wildcard or pattern: the backup's contents say which
            contents = self._backup_contents(test)
            if contents is None:
                return
            in_backup = set(contents.namespaces)
        restore_spec = spec.get("restore") or {}
        included = set(restore_spec.get("includedNamespaces") or []) - {"*"}
        sources = sorted(
            ns
            for ns in in_backup
            if (not included or ns in included) and ns not in set(restore_spec.get("excludedNamespaces") or [])
        )
        if not sources:
            self._nothing_to_restore(test)
            return
        sandbox = spec.get("sandbox") or {}
        try:
            mapping = namespace_mapping(
                sandbox.get("namespacePrefix", "lazarus-sbx-"),
                test["metadata"]["uid"],
                sources,
                spec.get("restoreNamespace"),
            )
        except ValueError as exc:
            self.status.fail(test, "InvalidSpec", str(exc))
            return
        restore_name = _restore_name(test)
        try:
            self._restore_objects(test, mapping, restore_name)  # fail before creating anything
        except UnsafeRestoreError as exc:
            self.status.fail(test, "UnsafeRestore", str(exc))
            return
        # Sandboxes and the Restore are created in this same sync (one status write and one watch
        # round trip less than a separate step); a crash before the status write recomputes the
        # same names next time and finds them created.
        if not self._prepare_sandboxes(test, mapping) or not self._create_restore(test, restore_name, mapping):
            return
        self.status.transition(
            test,
            RESTORING,
            "RestoreCreated",
            f"created Velero restore {self.settings.velero_namespace}/{restore_name} of backup {spec['backupName']}: "
            + ", ".join(f"{s} → {t}" for s, t in mapping.items()),
            extra={
                "startTime": now_text(),
                "namespaceMapping": mapping,
                "sandboxNamespaces": sorted(mapping.values()),
                "restore": {"restoreName": restore_name, "safety": list(restore_safety(restore_spec).reasons)},
                **(_expectations(contents, mapping, spec) if contents is not None else {}),
            },
        )

    def _nothing_to_restore(self, test: dict[str, Any]) -> None:
        self.status.fail(
            test,
            "NothingToRestore",
            f"backup {test['spec']['backupName']} holds no namespaced resources in the namespaces this test selects",
        )

    def _backup_contents(self, test: dict[str, Any]) -> BackupContents | None:
        """The backup's resource list; None if the test failed because it cannot be read."""
        name = test["spec"]["backupName"]
        try:
            return backup_resource_list(self.rest, name, self.settings.velero_namespace)
        except DownloadError as exc:
            if exc.transient:
                raise  # e.g. Velero restarting: retried with backoff
            self.status.fail(
                test, "UnsafeRestore", f"cannot determine the namespaces in backup {name} from its contents: {exc}"
            )
            return None

    # ----------------------------------------------------------------- Restoring → Verifying

    def _restore(self, test: dict[str, Any]) -> None:
        status = test["status"]
        timeout = parse_duration((test["spec"].get("restore") or {}).get("timeout", "30m"))
        restore_name = status["restore"]["restoreName"]
        restore = self.restores.store.get_by_key(f"{self.settings.velero_namespace}/{restore_name}")
        if restore is None:
            if _elapsed_since(status.get("startTime")) > timeout:
                self.status.fail(test, "Timeout", f"the Velero restore did not start within {timeout:.0f}s")
                return
            if self._awaiting_restore(restore_name):
                return  # created a moment ago; its watch event brings the key back
            mapping = status["namespaceMapping"]
            if self._prepare_sandboxes(test, mapping):
                self._create_restore(test, restore_name, mapping)
            return
        self._restores_created.pop(restore_name, None)
        phase = (restore.get("status") or {}).get("phase") or ""
        if phase not in RESTORE_TERMINAL:
            if _elapsed_since(status.get("startTime")) > timeout:
                self.status.fail(
                    test, "Timeout", f"Velero restore {restore_name} still {phase or 'New'} after {timeout:.0f}s"
                )
            else:
                self.controller.queue.add_after(object_key(test), timeout - _elapsed_since(status.get("startTime")))
            return
        details = self._restore_details(restore)
        if phase != "Completed":
            self.status.fail(
                test,
                "RestoreFailed" if phase != "PartiallyFailed" else "RestorePartiallyFailed",
                f"Velero restore {restore_name} ended {phase}: "
                + ("; ".join(details["errorMessages"][:3]) or "see the restore's logs"),
                extra={"restore": details},
            )
            return
        if "expected" not in (status.get("parity") or {}):
            # The backup listed its namespaces, so the Restore was created without reading its
            # contents (the fast path); they are needed now, for parity and the workloads to wait for.
            contents = self._backup_contents(test)
            if contents is None:
                return
            if not set(contents.namespaces) & set(status["namespaceMapping"]):
                self._nothing_to_restore(test)
                return
            expectations = _expectations(contents, status["namespaceMapping"], test["spec"])
            test = {**test, "status": {**status, **expectations}}
        checked = self._parity(test, restore)
        if checked.get("missing") and checked.get("enforced"):
            gaps = ", ".join(f"{kind}: {n} of {checked['expected'][kind]}" for kind, n in checked["missing"].items())
            message = f"Velero restore {restore_name} completed but items of the backup did not come back ({gaps})"
            self.status.fail(test, "ResourcesMissing", message, extra={"restore": details, "parity": checked})
            return
        progress = details.get("progress") or {}
        recovered, total = int(progress.get("itemsRestored") or 0), int(progress.get("totalItems") or 0)
        self.status.transition(
            test,
            VERIFYING,
            "RestoreCompleted",
            f"Velero restore {restore_name} completed: {recovered}/{total} items",
            condition=(RESTORE_COMPLETED, TRUE),
            extra={
                "restore": details,
                "parity": checked,
                "workloads": test["status"].get("workloads") or {},
                "verifyStartTime": now_text(),
                "result": {"resourcesRecovered": recovered, "resourcesFailed": max(total - recovered, 0)},
            },
        )

    def _prepare_sandboxes(self, test: dict[str, Any], mapping: dict[str, str]) -> bool:
        """Create the sandbox namespaces and their NetworkPolicies; False if the test failed."""
        labels = (test["spec"].get("sandbox") or {}).get("labels") or {}
        for source, sandbox in mapping.items():
            if not self._create_namespace(test, namespace_body(test, sandbox, source, labels)):
                return False
            self._create(
                f"/apis/networking.k8s.io/v1/namespaces/{sandbox}/networkpolicies",
                network_policy_body(test, sandbox, self.settings.namespace),
            )
            for collection, body in sandbox_quota_objects(test, sandbox):
                self._create(collection, body)
        return True

    def _create_namespace(self, test: dict[str, Any], body: dict[str, Any]) -> bool:
        name = body["metadata"]["name"]
        if self.sandboxes.store.get_by_key(name) is not None and owned_by(
            self.sandboxes.store.get_by_key(name) or {}, test
        ):
            return True
        try:
            self.rest.request("POST", "/api/v1/namespaces", body=body)
            return True
        except ApiError as exc:
            if not exc.conflict:
                raise
        existing = self.rest.request("GET", f"/api/v1/namespaces/{name}")
        if owned_by(existing, test) and not existing["metadata"].get("deletionTimestamp"):
            return True
        self.status.fail(
            test,
            "UnsafeRestore",
            f"namespace {name} already exists and is not this test's sandbox: "
            "Lazarus never restores into a namespace it did not create",
        )
        return False

    def _create(self, collection: str, body: dict[str, Any]) -> bool:
        """POST ``body``; True if created, False if it already existed (idempotent retries)."""
        try:
            self.rest.request("POST", collection, body=body)
        except ApiError as exc:
            if not exc.conflict:
                raise
            return False
        return True

    def _awaiting_restore(self, restore_name: str) -> bool:
        """Whether this process created the Restore less than ``CREATED_EXPECTATION`` seconds ago.

        The informer may not have it yet; without this, a sync in that window would POST the
        sandbox objects and the Restore again (client-go controllers call this "expectations").
        """
        created = self._restores_created.get(restore_name)
        return created is not None and time.monotonic() - created < CREATED_EXPECTATION

    def _restore_objects(
        self, test: dict[str, Any], mapping: dict[str, str], restore_name: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The resource-modifier ConfigMap and the Velero Restore; raises ``UnsafeRestoreError``."""
        restore_spec = test["spec"].get("restore") or {}
        velero = self.settings.velero_namespace
        configmap = resource_modifiers_configmap(
            restore_name, velero, list(mapping), owner_labels(test),
            pvs_restored=restore_safety(restore_spec).restore_pv_objects,
        )  # fmt: skip
        body = restore_body(
            name=restore_name,
            namespace=velero,
            backup_name=test["spec"]["backupName"],
            namespace_mapping=mapping,
            restore_spec=restore_spec,
            resource_modifier_configmap=configmap["metadata"]["name"],
            labels=owner_labels(test),
        )
        return configmap, body

    def _create_restore(self, test: dict[str, Any], restore_name: str, mapping: dict[str, str]) -> bool:
        """Create the modifier ConfigMap and the Velero Restore; False if the test failed."""
        velero = self.settings.velero_namespace
        try:
            configmap, body = self._restore_objects(test, mapping, restore_name)
        except UnsafeRestoreError as exc:
            self.status.fail(test, "UnsafeRestore", str(exc))
            return False
        self._create(f"/api/v1/namespaces/{velero}/configmaps", configmap)
        self._create(f"/apis/velero.io/v1/namespaces/{velero}/restores", body)
        self._restores_created[restore_name] = time.monotonic()
        return True

    def _parity(self, test: dict[str, Any], restore: dict[str, Any]) -> dict[str, Any]:
        """The test's parity status completed with what the restore brought back.

        Velero uploads the restored resource list as the restore finishes; while it is not there
        yet the sync is retried, for at most ``PARITY_LIST_GRACE`` seconds after the restore
        completed; then parity is recorded as unavailable instead of failing the test.
        """
        recorded = dict(test["status"].get("parity") or {})
        try:
            listed = download_json(
                self.rest, TargetKind.RESTORE_RESOURCE_LIST, restore["metadata"]["name"], self.settings.velero_namespace
            )
        except DownloadError as exc:
            completed = (restore.get("status") or {}).get("completionTimestamp")
            if exc.transient or _elapsed_since(completed) < PARITY_LIST_GRACE:
                raise
            recorded.update(enforced=False, unavailable=f"the restored resource list could not be read: {exc}")
            return recorded
        restored = parity.restored_counts(listed or {}, test["status"]["sandboxNamespaces"])
        recorded.update(restored=restored, missing=parity.missing(recorded.get("expected") or {}, restored))
        return recorded

    def _restore_details(self, restore: dict[str, Any]) -> dict[str, Any]:
        status = restore.get("status") or {}
        details: dict[str, Any] = {
            "restoreName": restore["metadata"]["name"],
            "veleroPhase": status.get("phase"),
            "progress": {
                "itemsRestored": int((status.get("progress") or {}).get("itemsRestored") or 0),
                "totalItems": int((status.get("progress") or {}).get("totalItems") or 0),
            },
            "warnings": int(status.get("warnings") or 0),
            "errors": int(status.get("errors") or 0),
            "errorMessages": [],
        }
        if details["errors"] or details["warnings"] or status.get("failureReason"):
            messages = [f"velero: {status['failureReason']}"] if status.get("failureReason") else []
            try:
                results = restore_results(self.rest, restore["metadata"]["name"], self.settings.velero_namespace)
                messages += results.errors + [f"warning: {w}" for w in results.warnings]
            except DownloadError as exc:
                messages.append(f"restore results unavailable: {exc}")
            details["errorMessages"] = [m[:1000] for m in messages[:MAX_MESSAGES]]
        return details

    # ----------------------------------------------------------------- Verifying → Checking

    def _restored_workloads(self, test: dict[str, Any], kinds: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The restored workloads (of ``kinds``: ``Deployments``, ...; default all) in the test's
        sandboxes, from the informers' caches."""
        sandboxes = (test.get("status") or {}).get("sandboxNamespaces") or []
        wanted = set(self.workloads if kinds is None else kinds)
        return [
            obj
            for kind, informer in self.workloads.items()
            if kind in wanted
            for namespace in sandboxes
            for obj in informer.store.by_index(NAMESPACE_INDEX, namespace)
        ]

    def _verify(self, test: dict[str, Any]) -> None:
        status = test["status"]
        wait_for = (test["spec"].get("workloads") or {}).get("waitFor", ["Deployments", "StatefulSets", "DaemonSets"])
        seen = self._restored_workloads(test, wait_for)
        expected = int((status.get("workloads") or {}).get("expected") or 0)
        not_ready = sorted(workloads.describe(o) for o in seen if not workloads.is_ready(o))
        if len(seen) >= expected and not not_ready:
            self.status.transition(
                test,
                CHECKING,
                "WorkloadsReady",
                f"{len(seen)} restored workloads are ready",
                condition=(WORKLOADS_READY, TRUE),
                extra={
                    "workloads": {"expected": expected, "ready": len(seen), "notReady": [], "readyTime": now_text()}
                },
            )
            return
        timeout = parse_duration((test["spec"].get("workloads") or {}).get("readyTimeout", "10m"))
        waited = _elapsed_since(status.get("verifyStartTime"))
        if waited < timeout:
            self.controller.queue.add_after(object_key(test), timeout - waited)
            return
        missing = max(expected - len(seen), 0)
        detail = not_ready[:20] + ([f"{missing} workloads in the backup were not restored"] if missing else [])
        diagnostics = collect_diagnostics(self.rest, sorted(status.get("sandboxNamespaces") or []))
        self.status.fail(
            test,
            "WorkloadsNotReady",
            f"not ready after {timeout:.0f}s: {'; '.join(detail)}",
            extra={
                "workloads": {"expected": expected, "ready": len(seen) - len(not_ready), "notReady": detail},
                "diagnostics": diagnostics,
            },
        )

    # ----------------------------------------------------------------- Checking → result

    def _check(self, test: dict[str, Any]) -> None:
        """Run the health checks, measure RTO and RPO, and decide the result.

        The checks block this worker for at most ``healthChecks.timeout``; running them again
        after a crash is safe (they only read, and the custom-check Job is adopted by name).
        """
        status, spec = test["status"], test["spec"]
        backup = self.backups.store.get_by_key(f"{self.settings.velero_namespace}/{spec['backupName']}") or {}
        backup_start = (backup.get("status") or {}).get("startTimestamp")
        backup_time = parse_time(backup_start) if backup_start else None
        report = run_health_checks(self.rest, test, status.get("namespaceMapping") or {}, backup_time=backup_time)
        finished = datetime.now(UTC)  # after the checks: RTO includes them
        rto = round((finished - parse_time(status["startTime"])).total_seconds(), 3)
        newest = report.newest_data or backup_time
        rpo = round(max((finished - newest).total_seconds(), 0.0), 3) if newest else None
        result = dict(status.get("result") or {})
        result.update({"success": True, "rto": rto, "rpo": rpo, "message": "restore verified"})
        baseline = compare_with_baseline(
            self.baselines, test, source_of(test, backup), health_checks=report.status, rto=rto
        )
        extra = {"completionTime": now_text(), "healthChecks": report.status, "baseline": baseline.status}
        if not report.passed:
            result.update({"success": False, "message": report.summary})
            self.status.fail(test, "HealthChecksFailed", report.summary, extra={**extra, "result": result})
            return
        objectives = spec.get("objectives") or {}
        missed = []
        if "rtoSeconds" in objectives and rto > objectives["rtoSeconds"]:
            missed.append(f"RTO {rto:.0f}s > objective {objectives['rtoSeconds']}s")
        if rpo is not None and "rpoSeconds" in objectives and rpo > objectives["rpoSeconds"]:
            missed.append(f"RPO {rpo:.0f}s > objective {objectives['rpoSeconds']}s")
        if missed:
            result.update({"success": False, "message": "; ".join(missed)})
            self.status.fail(test, "ObjectiveMissed", "; ".join(missed), extra={**extra, "result": result})
            return
        if baseline.fails_test:
            result.update({"success": False, "message": baseline.message})
            self.status.fail(test, "BaselineDrift", baseline.message, extra={**extra, "result": result})
            return
        if baseline.drifted:
            self.status.event(test, WARNING, BASELINE_DRIFT, baseline.message)
        self.status.transition(
            test,
            SUCCEEDED,
            "Succeeded",
            f"backup {spec['backupName']} restored and verified in {rto:.1f}s; {report.summary}",
            condition=(HEALTH_CHECKS_COMPLETED, TRUE),
            extra={**extra, "result": result},
        )

    # ----------------------------------------------------------------- reporting

    def _report_finished(self, test: dict[str, Any]) -> dict[str, Any]:
        """Metrics, an Event on the Backup and the notifications of a test that just finished.

        Done once: ``status.notifications`` (written here, ``[]`` when none are configured) marks
        it. A crash or a conflict before that write repeats it (a notification may then be sent
        twice; PagerDuty deduplicates). Tests that finished more than ``REPORT_WINDOW`` ago (e.g.
        before an upgrade that added this step) are only marked: no flood of stale notifications.
        """
        status = test["status"]
        backup = self.backups.store.get_by_key(f"{self.settings.velero_namespace}/{test['spec']['backupName']}")
        entries: list[dict[str, Any]] = []
        written: dict[str, Any] = {}
        if _elapsed_since(status.get("completionTime")) < REPORT_WINDOW:
            # Both read the API and may raise: before anything is sent, so a retry repeats nothing.
            written["cost"] = measure_cost(self.rest, test, self.prices).to_status()
            written.update(record_baseline(self.baselines, test, source_of(test, backup)))
            observe_finished_test({**test, "status": {**status, "cost": written["cost"]}}, backup)
            if backup is not None:
                succeeded = status.get("phase") == SUCCEEDED
                self.status.event(
                    backup,
                    NORMAL if succeeded else WARNING,
                    "RestoreTestSucceeded" if succeeded else "RestoreTestFailed",
                    f"restore test {object_key(test)}: {status.get('message', '')}"[:1024],
                )
            entries = send_notifications(self.rest, test, self.settings, backup)
        return self.status.patch(test, {**written, "notifications": entries})

    # ----------------------------------------------------------------- cleanup

    def _cleanup_due_in(self, test: dict[str, Any]) -> float | None:
        """Seconds until the sandbox of a finished test is removed; None: kept until the test is deleted."""
        spec, status = test["spec"], test["status"]
        if kept_until_deleted(test):
            return None
        # A test stopped for its cost is not kept running up more (unless the spec keeps it).
        failed = status.get("phase") != SUCCEEDED and status.get("reason") != COST_LIMIT_EXCEEDED
        keep = parse_duration(spec["ttl"]) if spec.get("ttl") else (self.settings.failure_retention if failed else 0.0)
        return keep - _elapsed_since(status.get("completionTime"))

    def _clean_up_finished(self, test: dict[str, Any]) -> None:
        if (get_condition(test["status"].get("conditions"), CLEANUP_COMPLETED) or {}).get("status") == TRUE:
            return
        due_in = self._cleanup_due_in(test)
        if due_in is None:
            return
        if due_in > 0:
            self.controller.queue.add_after(object_key(test), due_in)
            return
        if self._delete_test_objects(test):
            self.status.set_condition(
                test, CLEANUP_COMPLETED, TRUE, "CleanupCompleted", "sandbox namespaces and the Velero restore removed"
            )

    def _finalize(self, test: dict[str, Any]) -> None:
        if self._delete_test_objects(test):
            self._set_finalizers(test, [f for f in test["metadata"].get("finalizers") or [] if f != FINALIZER])

    def _delete_test_objects(self, test: dict[str, Any]) -> bool:
        """``_delete_owned`` for ``test``; True once all of it is gone.

        The resource-modifier ConfigMap is found through its Restore; if the Restore was never seen
        to finish (e.g. its creation was refused after the ConfigMap's), the ConfigMap is deleted
        by its name too, so it cannot be left behind (even for a test still Pending: the ConfigMap
        is created before the Restore and before the status says so).
        """
        if not ((test.get("status") or {}).get("restore") or {}).get("veleroPhase"):
            self._delete(f"/api/v1/namespaces/{self.settings.velero_namespace}/configmaps/{_restore_name(test)}")
        return self._delete_owned(object_key(test), test["metadata"]["uid"])

    def _delete_orphans(self, key: str, test: dict[str, Any] | None) -> None:
        """Delete sandboxes/restores labelled for ``key`` whose test is gone or has another UID.

        A namespace is deleted only if its name is the one Lazarus generates for those labels
        (``is_generated_sandbox``); others are reported and left alone.
        """
        uid = test["metadata"]["uid"] if test is not None else None
        stale = {o["metadata"]["labels"][TEST_UID_LABEL] for o in self._owned(key)} - {uid}
        for orphan_uid in stale:
            log.info("removing leftovers of a deleted test", test=key, uid=orphan_uid)
            self._delete_owned(key, orphan_uid, orphan=True)

    def _owned(self, key: str) -> Iterable[dict[str, Any]]:
        yield from self.sandboxes.store.by_index(OWNER_INDEX, key)
        yield from self.restores.store.by_index(OWNER_INDEX, key)

    def _delete_owned(self, key: str, uid: str, *, orphan: bool = False) -> bool:
        """Delete everything of test ``uid``; True once the cache shows all of it gone. Nothing is
        deleted while Velero is still working on the test's Restore (see below)."""
        velero = self.settings.velero_namespace
        remaining = [o for o in self._owned(key) if (o["metadata"].get("labels") or {}).get(TEST_UID_LABEL) == uid]
        running = [o["metadata"]["name"] for o in remaining if _velero_is_restoring(o)]
        if running:
            # Deleting a Restore Velero is working on blocks Velero's restore finalizer (it
            # retries the status update of the gone Restore for its whole --resource-timeout,
            # stalling every other restore), and a sandbox deleted under a running restore can
            # be created again by Velero, without Lazarus's labels. The Restore's next update
            # brings the test back here.
            log.info("waiting for Velero to finish the restore before removing it", restore=running[0], test=key)
            return False
        for obj in remaining:
            name = obj["metadata"]["name"]
            if obj["metadata"].get("deletionTimestamp"):
                continue  # already going: deleting again costs a request and changes nothing
            if obj.get("kind") == "Namespace":
                if orphan and not is_generated_sandbox(obj):
                    log.warning("not deleting a namespace labelled as a sandbox of a missing test: its name is "
                                "not one Lazarus generated", namespace=name, test=key)  # fmt: skip
                    continue
                self._delete(f"/api/v1/namespaces/{name}")
            else:
                self._delete_restored_cluster_objects(obj)
                self._delete(f"/apis/velero.io/v1/namespaces/{velero}/restores/{name}")
                self._delete(f"/api/v1/namespaces/{velero}/configmaps/{name}")
        return not remaining

    def _delete_restored_cluster_objects(self, restore: dict[str, Any]) -> None:
        """Delete the cluster-scoped objects ``restore`` created (before the Restore itself: its
        restored resource list is what names them). See ``lazarus.lifecycle.cluster_objects``."""
        if (restore.get("spec") or {}).get("includeClusterResources") is not True:
            return
        name = restore["metadata"]["name"]
        try:
            listed = download_json(self.rest, TargetKind.RESTORE_RESOURCE_LIST, name, self.settings.velero_namespace)
        except DownloadError as exc:
            if exc.transient:
                raise
            log.warning("cannot list the cluster-scoped objects of a restore; find any left with the label "
                        f"velero.io/restore-name={name}", restore=name, error=str(exc))  # fmt: skip
            return
        for obj in created_cluster_objects(listed or {}):
            self.cluster_objects.delete(obj, name)

    def _delete(self, path: str) -> None:
        try:
            self.rest.request("DELETE", path, body={"propagationPolicy": "Background"})
        except ApiError as exc:
            if not exc.not_found:
                raise

    def _set_finalizers(self, test: dict[str, Any], finalizers: list[str]) -> dict[str, Any]:
        """PATCH the finalizers (409 if ``test`` is stale); the updated test."""
        metadata = test["metadata"]
        path = f"{LAZARUS_RESTORE_TESTS.collection_path(metadata['namespace'])}/{metadata['name']}"
        body = {"metadata": {"resourceVersion": metadata["resourceVersion"], "finalizers": finalizers}}
        return self.rest.request("PATCH", path, body=body, content_type="application/merge-patch+json")


def _velero_is_restoring(obj: dict[str, Any]) -> bool:
    """Whether ``obj`` is a Velero Restore that Velero has started and not finished."""
    phase = (obj.get("status") or {}).get("phase") or ""
    return obj.get("kind") == "Restore" and phase not in (*RESTORE_NOT_STARTED, *RESTORE_TERMINAL)


def _restore_name(test: dict[str, Any]) -> str:
    """The deterministic name of the test's Velero Restore (and its resource-modifier ConfigMap)."""
    return f"lazarus-{test['metadata']['uid'][:18]}"


def listed_namespaces(backup: dict[str, Any]) -> set[str] | None:
    """The namespaces a backup's spec names literally; None when only its contents can tell.

    Velero backs up ``includedNamespaces`` minus ``excludedNamespaces``; a ``*``, a glob pattern
    or an empty list (all namespaces) leaves the set open.
    """
    spec = backup.get("spec") or {}
    included = spec.get("includedNamespaces") or []
    if not included or not all(_LITERAL_NAMESPACE.fullmatch(ns) for ns in included):
        return None
    return set(included) - set(spec.get("excludedNamespaces") or [])


def _expectations(contents: BackupContents, mapping: dict[str, str], spec: dict[str, Any]) -> dict[str, Any]:
    """The status the backup's contents decide: workloads to wait for and per-kind parity."""
    restore_spec = spec.get("restore") or {}
    return {
        "workloads": {"expected": _expected_workloads(contents, mapping, spec)},
        "parity": {
            "expected": parity.expected_counts(contents, list(mapping)),
            "enforced": not any(
                restore_spec.get(k) for k in ("includedResources", "excludedResources", "labelSelector")
            ),
        },
    }


def _expected_workloads(contents: BackupContents, mapping: dict[str, str], spec: dict[str, Any]) -> int:
    """How many workloads of the waited-for kinds the backup holds in the restored namespaces."""
    wait_for = (spec.get("workloads") or {}).get("waitFor", ["Deployments", "StatefulSets", "DaemonSets"])
    kinds = {workloads.KIND_OF_SPEC[k] for k in wait_for if k in workloads.KIND_OF_SPEC}
    return sum(
        1
        for kind, items in contents.items.items()
        if kind.rsplit("/", 1)[-1] in kinds
        for item in items
        if item.split("/", 1)[0] in mapping
    )


def restore_test_controller(context: Context) -> Controller:
    """Controller factory for ``lazarus run``."""
    return RestoreTestReconciler(context).controller
