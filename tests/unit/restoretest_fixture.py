"""The restore-test controller's unit-test fixture, sample-controller style.

Preloaded informer stores (never started), a recording REST fake whose PATCH returns the merged
object (the cache is *not* updated: as on a real cluster, it lags until the test calls
``observe``), a fake Velero reader, wall-clock time from ``now`` and the queue on a ``FakeClock``,
and health checks on an executor that runs them at once.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from concurrent.futures import Executor, Future
from datetime import UTC, datetime, timedelta
from typing import Any

from lazarus.controllers.context import Context
from lazarus.controllers.restoretest import RestoreTestReconciler
from lazarus.controllers.restoretest.decisions import Fail
from lazarus.controllers.restoretest.deleting import FINALIZER
from lazarus.controllers.restoretest.restoring import restored_parity
from lazarus.controllers.restoretest.sandboxkey import SECRET_NAME
from lazarus.controllers.restoretest.view import TestView
from lazarus.informers import BACKUPS, LAZARUS_RESTORE_TESTS, NAMESPACES, RESTORES, SharedInformerFactory
from lazarus.informers.informer import _deliver
from lazarus.kube.client import ApiError
from lazarus.lifecycle.durations import format_time
from lazarus.sandbox import PROOF_ANNOTATION, SANDBOX_LABEL, TEST_UID_LABEL, owner_labels, sandbox_name, sandbox_proof
from lazarus.settings import Settings
from lazarus.velero.backup_contents import BackupContents, backup_contents_from_map
from tests.fakeclock import FakeClock

NOW = datetime(2026, 1, 10, 4, 0, 0, tzinfo=UTC)
UID = "0f3c2a1b-aaaa-bbbb-cccc-000000000001"
TEST_KEY = "team-a/shop-check"
RESTORE_NAME = f"lazarus-{UID[:18]}"
SANDBOX = sandbox_name("lazarus-sbx-", UID, "shop")  # the test's one sandbox, of source namespace shop
SANDBOX_KEY = bytes(range(32))  # the sandbox proofs' key, in the fixture's key Secret
SANDBOX_KEY_PATH = f"/api/v1/namespaces/lazarus-system/secrets/{SECRET_NAME}"


def stamp(moment: datetime) -> str:
    return format_time(moment)


def merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """A JSON merge patch (RFC 7386) of ``patch`` onto a copy of ``target``."""
    merged = copy.deepcopy(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


class FakeRest:
    """Records every request. PATCH of a test merges into ``objects`` and returns the result; POST
    of a name in ``objects`` answers 409; GET answers from ``objects`` (404 otherwise); list GETs
    answer no items."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, Any] | None]] = []
        self.objects: dict[str, dict[str, Any]] = {}  # path → object
        self.refuse: dict[tuple[str, str], ApiError] = {}  # (method, path) → error

    def request(self, method: str, path: str, *, body: dict[str, Any] | None = None, **_: Any) -> dict[str, Any]:
        self.requests.append((method, path, copy.deepcopy(body)))
        if (method, path) in self.refuse:
            raise self.refuse[(method, path)]
        if method == "PATCH":
            target = path.removesuffix("/status")
            merged = merge(self.objects[target], body or {})
            merged["metadata"]["resourceVersion"] = str(int(merged["metadata"]["resourceVersion"]) + 1)
            self.objects[target] = merged
            return copy.deepcopy(merged)
        if method == "POST":
            if "/events" in path:
                return body or {}
            item = f"{path}/{(body or {})['metadata']['name']}"
            if item in self.objects:
                raise ApiError(409, "AlreadyExists")
            created = merge(body or {}, {"metadata": {"uid": f"uid-of-{(body or {})['metadata']['name']}"}})
            self.objects[item] = created
            return copy.deepcopy(created)
        if method == "GET":
            if path in self.objects:
                return copy.deepcopy(self.objects[path])
            if path.endswith(("/pods", "/persistentvolumeclaims", "/events")):
                return {"items": []}
            raise ApiError(404, "NotFound")
        return {}

    def writes(self, method: str | None = None) -> list[tuple[str, str, dict[str, Any] | None]]:
        """The requests other than reads and Events, in order."""
        return [r for r in self.requests if r[0] != "GET" and "/events" not in r[1] and method in (None, r[0])]

    def status_patches(self) -> list[dict[str, Any]]:
        return [body["status"] for m, path, body in self.requests if m == "PATCH" and path.endswith("/status")
                and body is not None and "status" in body]  # fmt: skip

    def events(self) -> list[tuple[str, str]]:
        """(type, reason) of the recorded Events."""
        return [(b["type"], b["reason"]) for m, p, b in self.requests if m == "POST" and "/events" in p and b]


class FakeReader:
    """Velero's artefacts: the backup's contents, the Restore's details and restored list."""

    def __init__(self) -> None:
        self.contents: BackupContents | Fail = backup_contents_from_map({"apps/v1/Deployment": ["shop/web"]})
        self.restored: dict[str, Any] = {"apps/v1/Deployment": ["sbx/web"]}
        self.reads: list[str] = []

    def backup_contents(self, view: TestView) -> BackupContents | Fail:
        self.reads.append("contents")
        return self.contents

    def restore_details(self, restore: dict[str, Any]) -> dict[str, Any]:
        status = restore.get("status") or {}
        return {"restoreName": restore["metadata"]["name"], "veleroPhase": status.get("phase"),
                "progress": {"itemsRestored": 4, "totalItems": 4}, "warnings": 0, "errors": 0,
                "errorMessages": list(status.get("messages") or [])}  # fmt: skip

    def parity(self, view: TestView, restore: dict[str, Any], now: datetime) -> dict[str, Any]:
        return restored_parity(view.section("parity"), self.restored, view.sandbox_namespaces)


class InlineExecutor(Executor):
    """Runs a submitted function at once (its Future is done when ``submit`` returns), or, with
    ``hold``, keeps it pending until ``release``."""

    def __init__(self) -> None:
        self.hold = False
        self.pending: list[tuple[Future[Any], Callable[[], Any]]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()

        def call() -> None:
            try:
                future.set_result(fn(*args, **kwargs))
            except Exception as exc:  # noqa: BLE001 - handed to whoever takes the result, as a pool does
                future.set_exception(exc)

        if self.hold:
            self.pending.append((future, call))
        else:
            call()
        return future

    def release(self) -> None:
        for _future, call in self.pending:
            call()
        self.pending.clear()


def restore_test(name: str = "shop-check", uid: str = UID, status: dict[str, Any] | None = None,
                 **spec: Any) -> dict[str, Any]:  # fmt: skip
    return {
        "apiVersion": "lazarus.io/v1alpha1", "kind": "LazarusRestoreTest",
        "metadata": {"name": name, "namespace": "team-a", "uid": uid, "resourceVersion": "10", "generation": 1,
                     "finalizers": [FINALIZER]},
        "spec": {"backupName": "shop-1", **spec},
        "status": status or {},
    }  # fmt: skip


def backup(name: str = "shop-1", phase: str = "Completed", namespaces: list[str] | None = None,
           **status: Any) -> dict[str, Any]:  # fmt: skip
    return {
        "apiVersion": "velero.io/v1", "kind": "Backup",
        "metadata": {"name": name, "namespace": "velero", "uid": f"uid-{name}"},
        "spec": {"includedNamespaces": ["shop"] if namespaces is None else namespaces},
        "status": {"phase": phase, "startTimestamp": stamp(NOW - timedelta(hours=1)), **status},
    }  # fmt: skip


def velero_restore(test: dict[str, Any], phase: str = "Completed", **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "velero.io/v1", "kind": "Restore",
        "metadata": {"name": RESTORE_NAME, "namespace": "velero", "uid": "uid-restore", "labels": owner_labels(test)},
        "spec": {"backupName": "shop-1"},
        "status": {"phase": phase, "completionTimestamp": stamp(NOW), **status},
    }  # fmt: skip


def sandbox(test: dict[str, Any], name: str, uid: str = "uid-sbx", *, proof: str | None = None,
            **metadata: Any) -> dict[str, Any]:  # fmt: skip
    """A sandbox namespace of ``test`` as Lazarus makes it; ``proof`` overrides its valid proof."""
    labels = {**owner_labels(test), SANDBOX_LABEL: "true"}
    if proof is None:
        proof = sandbox_proof(SANDBOX_KEY, test["metadata"]["uid"], name)
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "uid": uid, "labels": labels, "annotations": {PROOF_ANNOTATION: proof},
                         **metadata}}  # fmt: skip


class Fixture:
    """One reconciler on preloaded caches (see the module docstring)."""

    def __init__(self, **settings: Any) -> None:
        self.rest = FakeRest()
        self.rest.objects[SANDBOX_KEY_PATH] = {"metadata": {"name": SECRET_NAME},
                                               "data": {"key": base64.b64encode(SANDBOX_KEY).decode()}}  # fmt: skip
        self.clock = FakeClock()
        self.now = NOW
        self.executor = InlineExecutor()
        options: dict[str, Any] = {"namespace": "lazarus-system", "identity": "unit", "velero_namespace": "velero",
                                   "max_concurrent_tests": 2, **settings}  # fmt: skip
        self.leading = True  # whether this replica holds the lease (a test may take it away)
        self.context = Context(Settings(**options), self.rest,  # type: ignore[arg-type]
                               SharedInformerFactory(lister_watcher=None),  # type: ignore[arg-type]  # never started
                               lambda: self.leading)  # fmt: skip
        self.reconciler = RestoreTestReconciler(self.context, now=lambda: self.now, clock=self.clock,
                                                check_executor=self.executor)  # fmt: skip
        self.reader = FakeReader()
        self.reconciler.reader = self.reader  # type: ignore[assignment]

    def store(self, resource: Any) -> Any:
        cache = self.reconciler.cache
        return {LAZARUS_RESTORE_TESTS: cache.tests, BACKUPS: cache.backups, RESTORES: cache.restores,
                NAMESPACES: cache.sandboxes}[resource].store  # fmt: skip

    def add(self, resource: Any, *objects: dict[str, Any]) -> None:
        """Preload objects into a cache (tests are also known to the REST fake, for PATCH)."""
        for obj in objects:
            self.store(resource).add(obj)
            if resource is LAZARUS_RESTORE_TESTS:
                metadata = obj["metadata"]
                self.rest.objects[f"/apis/lazarus.io/v1alpha1/namespaces/{metadata['namespace']}/"
                                  f"lazarusrestoretests/{metadata['name']}"] = copy.deepcopy(obj)  # fmt: skip

    def observe(self, key: str = TEST_KEY) -> dict[str, Any]:
        """The watch event of the test's last write reaches the cache; the test as cached now."""
        namespace, name = key.split("/")
        obj = self.rest.objects[f"/apis/lazarus.io/v1alpha1/namespaces/{namespace}/lazarusrestoretests/{name}"]
        self.store(LAZARUS_RESTORE_TESTS).add(copy.deepcopy(obj))
        return obj

    def delete_event(self, resource: Any, obj: dict[str, Any]) -> None:
        """The watch reports ``obj`` deleted: the cache drops it and the handlers hear of it."""
        informer = {LAZARUS_RESTORE_TESTS: self.reconciler.cache.tests}[resource]
        informer._distributor.delete(obj)
        while not informer._distributor.queue.empty():
            _deliver(informer._distributor.queue.get())

    def queued(self) -> list[str]:
        """The keys queued now (taken off the queue)."""
        keys = []
        while self.reconciler.controller.queue.len():
            key, _ = self.reconciler.controller.queue.get()
            assert key is not None
            keys.append(key)
            self.reconciler.controller.queue.done(key)
        return keys

    def sync(self, key: str = TEST_KEY) -> None:
        self.reconciler.sync(key)

    def last_status(self) -> dict[str, Any]:
        return self.rest.status_patches()[-1]


def owned_uid(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["labels"][TEST_UID_LABEL])
