"""The caches the restore-test controller reads, their indexes, and the handlers that turn their
events into keys (and nothing else: sample-controller's handlers only enqueue)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from lazarus.api.v1alpha1 import ACTIVE_PHASES, Phase
from lazarus.controllers.restoretest import retention
from lazarus.controllers.restoretest.view import TestView
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
    SharedInformerFactory,
    final_object,
    object_key,
)
from lazarus.sandbox import SANDBOX_LABEL, TEST_NAME_LABEL, TEST_NAMESPACE_LABEL, TEST_UID_LABEL

# Restored workloads are watched by the label the resource modifiers put on everything a test
# restores (``lazarus.velero.resource_modifiers``): Velero's ``velero.io/restore-name`` is also on
# whatever any other restore of the cluster brought back, which the cache must not hold.
RESTORED_SELECTOR = f"{SANDBOX_LABEL}=true"
BACKUP_INDEX = "backup"
OWNER_INDEX = "test"
RETENTION_INDEX = "retention"
Obj = dict[str, Any]


def owner_key(obj: Obj) -> list[str]:
    """Index: the ``namespace/name`` of the test that owns a labelled object."""
    labels = obj.get("metadata", {}).get("labels") or {}
    namespace, name = labels.get(TEST_NAMESPACE_LABEL), labels.get(TEST_NAME_LABEL)
    return [f"{namespace}/{name}"] if namespace and name else []


def _backup_key(test: Obj) -> list[str]:
    """Index: the ``namespace/name`` of the Backup a test tests."""
    spec = TestView.of(test).spec
    return [f"{spec.backup_namespace}/{spec.backup_name}"]


def _phase(test: Obj) -> str:
    return (test.get("status") or {}).get("phase") or Phase.PENDING


class Informers:
    """The restore-test controller's informers (shared through ``factory``) and its reads of them."""

    def __init__(self, factory: SharedInformerFactory, velero_namespace: str) -> None:
        self._velero = velero_namespace
        self.tests = factory.informer_for(LAZARUS_RESTORE_TESTS)
        self.tests.add_indexers({BACKUP_INDEX: _backup_key, RETENTION_INDEX: retention.group_of})
        self.backups = factory.informer_for(BACKUPS, namespace=velero_namespace)
        self.restores = factory.informer_for(RESTORES, namespace=velero_namespace, label_selector=TEST_UID_LABEL)
        self.restores.add_indexers({OWNER_INDEX: owner_key})
        self.sandboxes = factory.informer_for(NAMESPACES, label_selector=RESTORED_SELECTOR)
        self.sandboxes.add_indexers({OWNER_INDEX: owner_key})
        self.workloads = {
            kind: factory.informer_for(resource, label_selector=RESTORED_SELECTOR)
            for kind, resource in (("Deployments", DEPLOYMENTS), ("StatefulSets", STATEFUL_SETS),
                                   ("DaemonSets", DAEMON_SETS))
        }  # fmt: skip

    # ----------------------------------------------------------------- reads

    def backup(self, name: str) -> Obj | None:
        return self.backups.store.get_by_key(f"{self._velero}/{name}")

    def restore(self, name: str) -> Obj | None:
        return self.restores.store.get_by_key(f"{self._velero}/{name}")

    def owned(self, key: str) -> Iterator[Obj]:
        """The sandboxes and Restores labelled as the test ``key``'s (whatever its UID)."""
        yield from self.sandboxes.store.by_index(OWNER_INDEX, key)
        yield from self.restores.store.by_index(OWNER_INDEX, key)

    def active_keys(self) -> list[str]:
        """Tests the cache shows running."""
        return [object_key(t) for t in self.tests.store.list() if _phase(t) in ACTIVE_PHASES]

    def waiting_keys(self) -> list[str]:
        """Tests the cache shows Pending (they may wait for a slot)."""
        return [object_key(t) for t in self.tests.store.list() if _phase(t) == Phase.PENDING]

    def retention_group(self, view: TestView) -> list[Obj]:
        """The tests in the retention group of ``view`` (none if it has no group)."""
        return [t for group in retention.group_of(view.obj) for t in self.tests.store.by_index(RETENTION_INDEX, group)]

    def restored_workloads(self, view: TestView, kinds: Iterable[str] | None = None) -> list[Obj]:
        """The restored workloads (of ``kinds``: ``Deployments``, ...; default all) in the test's
        sandboxes, through the namespace index."""
        wanted = set(self.workloads if kinds is None else kinds)
        return [
            obj
            for kind, informer in self.workloads.items()
            if kind in wanted
            for namespace in view.sandbox_namespaces
            for obj in informer.store.by_index(NAMESPACE_INDEX, namespace)
        ]

    # ----------------------------------------------------------------- handlers → keys

    def wire(
        self, enqueue: Callable[[str], None], *, on_slot_freed: Callable[[], None],
        on_test_deleted: Callable[[str], bool],
    ) -> None:  # fmt: skip
        """Route every event to the key of the test it concerns. ``on_slot_freed``: a test left the
        running phases; ``on_test_deleted(key)``: a test is gone (True if it held a slot)."""

        def test_updated(old: Obj, new: Obj) -> None:
            enqueue(object_key(new))
            if _phase(old) in ACTIVE_PHASES and _phase(new) not in ACTIVE_PHASES:
                on_slot_freed()

        def test_deleted(obj: Obj | DeletedFinalStateUnknown) -> None:
            key = object_key(obj)
            enqueue(key)  # the sync that finds it gone removes its leftovers
            held = on_test_deleted(key)
            if held or _phase(final_object(obj)) in ACTIVE_PHASES:
                on_slot_freed()

        def backup_changed(backup: Obj) -> None:
            for test in self.tests.store.by_index(BACKUP_INDEX, object_key(backup)):
                enqueue(object_key(test))

        def owned_changed(obj: Obj) -> None:
            for key in owner_key(obj):
                enqueue(key)

        def workload_changed(obj: Obj) -> None:
            owned_changed(self.sandboxes.store.get_by_key(obj["metadata"].get("namespace", "")) or {})

        self.tests.add_event_handler(lambda obj: enqueue(object_key(obj)), test_updated, test_deleted)
        self._on_any(self.backups, backup_changed)
        self._on_any(self.restores, owned_changed)
        self._on_any(self.sandboxes, owned_changed)
        for informer in self.workloads.values():
            self._on_any(informer, workload_changed)

    @staticmethod
    def _on_any(informer: SharedInformer, handler: Callable[[Obj], object]) -> None:
        def deliver(obj: Obj | DeletedFinalStateUnknown) -> None:
            handler(final_object(obj))

        informer.add_event_handler(deliver, lambda _old, new: deliver(new), deliver)
