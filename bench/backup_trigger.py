"""backup-trigger: a Backup of an opted-in Schedule turns ``Completed`` → its LazarusRestoreTest
exists → its Velero Restore exists.

Set-up: a namespace for the operator (its Lease and the tests it creates), a paused Velero
Schedule annotated ``lazarus.io/validate: "true"``, and a fresh ``lazarus run`` without leader
election (no slot limit in the way, failed tests cleaned up at once). Then ``BACKUPS``
backups, one at a time, written the way Velero writes them: created ``InProgress`` with the
Schedule's label and a literal ``includedNamespaces``, then updated to ``Completed`` with a
completion time later than the previous one's. The next backup completes once the previous one's
test has ended and been cleaned up (Velero fails its Restore at once: the backup has no files), as
in a cluster where backups complete minutes apart; so each figure is the operator's reaction to
one backup, not its throughput under a burst. Needs the test bed's Velero server.

Measured in this process, by one clock: the watch event of the Backup's update to ``Completed``
→ the watch event that adds its test → the watch event that adds the Velero Restore of that test
(``lazarus run``'s watches, handlers, queues and syncs, the creates, and the watches back to us).
Percentiles nearest-rank. ARCHITECTURE.md's target (p50 ≤ 100 ms, p99 ≤ 1 s) is for the whole
chain. The backups have no files in object storage, so a real Velero then fails each Restore: the
benchmark measures Lazarus's reaction, not Velero's work (the ``restore-test`` benchmark does).

Clean-up: the Backups and the Schedule are deleted as plain objects (they have no files in the
object store; no storage-location label, so Velero's sync never knew them); the sandboxes and
Restores of the tests are deleted by their labels, and the tests lose their restore-test
finalizer once ``lazarus run`` stopped, so the namespace can go.
"""

from __future__ import annotations

import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.cluster import BENCH_LABEL, Watches, bench_namespace, connect, lazarus_run
from bench.measure import Benchmark, Figure, percentile, progress
from lazarus.api.v1alpha1 import ConditionType
from lazarus.informers import BACKUPS, LAZARUS_RESTORE_TESTS, RESTORES
from lazarus.informers.transport import Obj
from lazarus.kube.client import ApiError, Rest
from lazarus.kube.conditions import TRUE
from lazarus.sandbox import TEST_NAMESPACE_LABEL

BACKUPS_COUNT = 100
VELERO_NAMESPACE = "velero"
VELERO_API = f"/apis/velero.io/v1/namespaces/{VELERO_NAMESPACE}"
TEST_TIMEOUT_S = 30.0
SETTLE_TIMEOUT_S = 120.0


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Seen(Watches):
    """When this process's watches saw each backup complete, each test and each Restore appear."""

    def __init__(self, rest: Rest, namespace: str, schedule: str) -> None:
        super().__init__(rest.api)
        self.completed: dict[str, float] = {}
        self.tested: dict[str, float] = {}
        self.restored: dict[str, float] = {}
        self.settled: set[str] = set()
        backups = self.factory.informer_for(
            BACKUPS, namespace=VELERO_NAMESPACE, label_selector=f"velero.io/schedule-name={schedule}"
        )
        backups.add_event_handler(self._on_backup, lambda _old, new: self._on_backup(new))
        tests = self.factory.informer_for(LAZARUS_RESTORE_TESTS)
        tests.add_event_handler(
            lambda test: self._on_test(test, namespace), lambda _old, new: self._on_test(new, namespace)
        )
        restores = self.factory.informer_for(
            RESTORES, namespace=VELERO_NAMESPACE, label_selector=f"{TEST_NAMESPACE_LABEL}={namespace}"
        )
        restores.add_event_handler(self._on_restore)

    def _on_backup(self, backup: Obj) -> None:
        if (backup.get("status") or {}).get("phase") == "Completed":
            with self.changed:
                self.completed.setdefault(backup["metadata"]["name"], time.monotonic())

    def _on_test(self, test: Obj, namespace: str) -> None:
        if test["metadata"]["namespace"] == namespace:
            with self.changed:
                self.tested.setdefault(test["spec"]["backupName"], time.monotonic())
                conditions = (test.get("status") or {}).get("conditions") or []
                if any(c["type"] == ConditionType.CLEANUP_COMPLETED and c["status"] == TRUE for c in conditions):
                    self.settled.add(test["spec"]["backupName"])
                self.changed.notify_all()

    def _on_restore(self, restore: Obj) -> None:
        with self.changed:
            self.restored.setdefault(restore["spec"]["backupName"], time.monotonic())
            self.changed.notify_all()

    def wait_for_restore(self, backup: str) -> tuple[float, float]:
        """Seconds from the backup's Completed event to its test's and its Restore's creation events."""
        with self.changed:
            if not self.changed.wait_for(lambda: backup in self.restored, TEST_TIMEOUT_S):
                raise TimeoutError(f"no Restore of backup {backup} within {TEST_TIMEOUT_S:.0f} s")
            return self.tested[backup] - self.completed[backup], self.restored[backup] - self.completed[backup]

    def wait_settled(self, backup: str) -> None:
        """Until the test of ``backup`` ended and was cleaned up (Velero fails its restore at once)."""
        with self.changed:
            if not self.changed.wait_for(lambda: backup in self.settled, SETTLE_TIMEOUT_S):
                raise TimeoutError(f"the test of backup {backup} was not cleaned up within {SETTLE_TIMEOUT_S:.0f} s")


def _backup_body(name: str, schedule: str, namespace: str, finished: datetime) -> dict[str, Any]:
    return {
        "apiVersion": BACKUPS.api_version, "kind": BACKUPS.kind,
        "metadata": {"name": name, "namespace": VELERO_NAMESPACE,
                     "labels": {"velero.io/schedule-name": schedule, BENCH_LABEL[0]: BENCH_LABEL[1]}},
        "spec": {"includedNamespaces": [namespace], "ttl": "1h0m0s"},
        "status": {"phase": "InProgress", "version": 1, "startTimestamp": _stamp(finished - timedelta(seconds=1)),
                   "expiration": _stamp(finished + timedelta(hours=1))},
    }  # fmt: skip


def _delete(rest: Rest, path: str) -> None:
    try:
        rest.request("DELETE", path)
    except ApiError as error:
        if not error.not_found:
            raise


def _measure(rest: Rest, seen: _Seen, schedule: str, namespace: str) -> list[tuple[float, float]]:
    start = datetime.now(UTC).replace(microsecond=0)
    latencies = []
    for index in range(BACKUPS_COUNT):
        name = f"{schedule}-{index:03d}"
        finished = start + timedelta(seconds=index + 1)
        rest.request("POST", f"{VELERO_API}/backups", body=_backup_body(name, schedule, namespace, finished))
        patch = {"status": {"phase": "Completed", "completionTimestamp": _stamp(finished)}}
        rest.request("PATCH", f"{VELERO_API}/backups/{name}", body=patch, content_type="application/merge-patch+json")
        latencies.append(seen.wait_for_restore(name))
        seen.wait_settled(name)
    return latencies


def run(kubeconfig: str | None) -> list[Figure]:
    """Create ``BACKUPS_COUNT`` completed backups of an opted-in Schedule; time each one's test."""
    assert kubeconfig is not None
    schedule = f"bench-trigger-{uuid.uuid4().hex[:6]}"
    with connect(kubeconfig) as rest, bench_namespace(rest, "trigger") as namespace, ExitStack() as stack:
        stack.callback(_strip_finalizers, rest, namespace)
        rest.request("POST", f"{VELERO_API}/schedules", body={
            "apiVersion": "velero.io/v1", "kind": "Schedule",
            "metadata": {"name": schedule, "namespace": VELERO_NAMESPACE,
                         "annotations": {"lazarus.io/validate": "true"}, "labels": dict([BENCH_LABEL])},
            "spec": {"schedule": "0 0 1 1 *", "paused": True, "template": {"includedNamespaces": [namespace]}},
        })  # fmt: skip
        stack.callback(_delete, rest, f"{VELERO_API}/schedules/{schedule}")
        stack.callback(_delete_backups, rest, schedule)
        seen = _Seen(rest, namespace, schedule)
        stack.callback(seen.stop)
        seen.start()
        stack.callback(_delete_test_objects, rest, namespace)
        operator = stack.enter_context(lazarus_run(
            kubeconfig, "--no-leader-elect", "--namespace", namespace, "--max-concurrent-tests", str(BACKUPS_COUNT),
            "--failure-retention", "0",
        ))  # fmt: skip
        progress(f"lazarus run ready in {operator.wait_ready():.1f} s")
        measured = _measure(rest, seen, schedule, namespace)
    figures = []
    for leg, index in (("test created", 0), ("Velero Restore created", 1)):
        latencies = [pair[index] * 1000 for pair in measured]
        p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
        progress(f"{len(latencies)} backups: Completed → {leg}: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        whole = index == 1
        figures += [
            Figure(f"Backup Completed → {leg}, p50 of {BACKUPS_COUNT}", p50, "ms", target=100 if whole else None),
            Figure(f"Backup Completed → {leg}, p99 of {BACKUPS_COUNT}", p99, "ms", target=1000 if whole else None),
            Figure(f"Backup Completed → {leg}, max", max(latencies), "ms", detail=True),
        ]
    return figures


def _delete_test_objects(rest: Rest, namespace: str) -> None:
    """Delete the sandboxes and Restores of the benchmark's tests (by their owner label)."""
    selector = {"labelSelector": f"{TEST_NAMESPACE_LABEL}={namespace}"}
    for sandbox in rest.request("GET", "/api/v1/namespaces", query=selector).get("items") or []:
        _delete(rest, f"/api/v1/namespaces/{sandbox['metadata']['name']}")
    for restore in rest.request("GET", f"{VELERO_API}/restores", query=selector).get("items") or []:
        _delete(rest, f"{VELERO_API}/restores/{restore['metadata']['name']}")
        _delete(rest, f"/api/v1/namespaces/{VELERO_NAMESPACE}/configmaps/{restore['metadata']['name']}")


def _delete_backups(rest: Rest, schedule: str) -> None:
    selector = {"labelSelector": f"velero.io/schedule-name={schedule}"}
    listed = rest.request("GET", f"{VELERO_API}/backups", query=selector)
    for backup in listed.get("items") or []:
        _delete(rest, f"{VELERO_API}/backups/{backup['metadata']['name']}")


def _strip_finalizers(rest: Rest, namespace: str) -> None:
    """Let the namespace go: no operator is left to remove the restore-test finalizers."""
    path = LAZARUS_RESTORE_TESTS.collection_path(namespace)
    for test in rest.request("GET", path).get("items") or []:
        rest.request("PATCH", f"{path}/{test['metadata']['name']}", body={"metadata": {"finalizers": None}},
                     content_type="application/merge-patch+json")  # fmt: skip


BENCHMARK = Benchmark(
    "backup-trigger",
    f"Backup Completed → LazarusRestoreTest created → Velero Restore created, {BACKUPS_COUNT} backups of a Schedule",
    True,
    run,
)
