"""I/O of cleanup: delete a test's objects (``cleanup.deletions`` decides which) and finalizers.

Every delete of an object seen in a cache carries its UID as a precondition: a namespace or a
Restore recreated under the same name since (by anyone) is never deleted in its place; a 404 or a
409 on the precondition means it is gone already. The resource-modifier ConfigMap of a Restore
never seen is deleted by name (no UID is known; its name holds the test's UID).

A namespace labelled as a test's is deleted only if Lazarus can prove it made it: its UID is one
the test recorded (``status.sandboxUIDs``) or it carries a valid sandbox proof
(``lazarus.sandbox.proven_sandbox``). Any other is left alone with a warning, so a label set on a
namespace (by mistake or not) never makes Lazarus delete it; without a usable proof key only the
recorded ones are deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import structlog

from lazarus.controllers.restoretest.cleanup import Obj, deletions
from lazarus.controllers.restoretest.sandboxkey import SandboxKey, SandboxKeyError
from lazarus.controllers.restoretest.view import TestView
from lazarus.kube.client import ApiError, Rest
from lazarus.kube.resources import LAZARUS_RESTORE_TESTS
from lazarus.lifecycle.cluster_objects import ClusterObjectDeleter, created_cluster_objects
from lazarus.sandbox import proven_sandbox
from lazarus.velero.downloads import DownloadError, TargetKind, download_json

log = structlog.get_logger(__name__)

FINALIZER = "lazarus.io/cleanup"


class Deleter:
    """Deletes what a test created through ``rest``."""

    def __init__(self, rest: Rest, velero_namespace: str, key: SandboxKey) -> None:
        """``key``: the sandbox proofs' key."""
        self._rest = rest
        self._key = key
        self._velero = velero_namespace
        self._cluster_objects = ClusterObjectDeleter(rest)

    def test_objects(self, view: TestView, owned: Iterable[Mapping[str, Any]]) -> bool:
        """Delete everything of the test ``view``; True once the caches show all of it gone.

        If the Restore was never seen to finish (e.g. its creation was refused after the
        ConfigMap's), the ConfigMap is deleted by name too, so it cannot be left behind (even for
        a test still Pending: it is created before the Restore and before the status says so).
        """
        if not view.section("restore").get("veleroPhase"):
            self._delete(f"/api/v1/namespaces/{self._velero}/configmaps/{view.restore_name}")
        return self.owned(view.key, view.uid, owned, frozenset(view.section("sandboxUIDs").values()))

    def owned(
        self, key: str, uid: str, owned: Iterable[Mapping[str, Any]], recorded: frozenset[str] = frozenset()
    ) -> bool:
        """Delete the objects of test ``uid`` among ``owned`` (its namespaces: those of the
        ``recorded`` UIDs and the proven ones); True once none of them is left."""
        decided = deletions(owned, uid, self._ours(key, uid, recorded))
        if decided.waiting_for is not None:
            log.info("waiting for Velero to finish the restore before removing it", restore=decided.waiting_for,
                     test=key)  # fmt: skip
            return False
        for name in decided.refused:
            log.warning("not deleting a namespace labelled as a test's sandbox: Lazarus cannot prove it made it",
                        namespace=name, test=key)  # fmt: skip
        for obj in decided.delete:
            metadata = obj["metadata"]
            if obj.get("kind") == "Namespace":
                self._delete(f"/api/v1/namespaces/{metadata['name']}", metadata.get("uid"))
            else:
                self._cluster_objects_of(obj)
                self._delete(f"/apis/velero.io/v1/namespaces/{self._velero}/restores/{metadata['name']}",
                             metadata.get("uid"))  # fmt: skip
                self._delete(f"/api/v1/namespaces/{self._velero}/configmaps/{metadata['name']}")
        return decided.done

    def _ours(self, key: str, uid: str, recorded: frozenset[str]) -> Callable[[Obj], bool]:
        """Whether a namespace labelled for test ``uid`` is provably one Lazarus made for it."""
        try:
            proof_key: bytes | None = self._key.value()
        except SandboxKeyError as exc:
            log.error("cannot check sandbox proofs: deleting only recorded sandboxes", test=key, error=str(exc))
            proof_key = None

        def ours(namespace: Obj) -> bool:
            if namespace["metadata"].get("uid") in recorded:
                return True
            return proof_key is not None and proven_sandbox(namespace, uid, proof_key)

        return ours

    def set_finalizers(self, test: Mapping[str, Any], finalizers: list[str]) -> dict[str, Any]:
        """PATCH the finalizers (409 if ``test`` is stale); the updated test."""
        metadata = test["metadata"]
        path = f"{LAZARUS_RESTORE_TESTS.collection_path(metadata['namespace'])}/{metadata['name']}"
        body = {"metadata": {"resourceVersion": metadata["resourceVersion"], "finalizers": finalizers}}
        return self._rest.request("PATCH", path, body=body, content_type="application/merge-patch+json")

    def _cluster_objects_of(self, restore: Mapping[str, Any]) -> None:
        """Delete the cluster-scoped objects ``restore`` created (before the Restore itself: its
        restored resource list is what names them). See ``lazarus.lifecycle.cluster_objects``."""
        if (restore.get("spec") or {}).get("includeClusterResources") is not True:
            return
        name = restore["metadata"]["name"]
        try:
            listed = download_json(self._rest, TargetKind.RESTORE_RESOURCE_LIST, name, self._velero)
        except DownloadError as exc:
            if exc.transient:
                raise
            log.warning("cannot list the cluster-scoped objects of a restore; find any left with the label "
                        f"velero.io/restore-name={name}", restore=name, error=str(exc))  # fmt: skip
            return
        for obj in created_cluster_objects(listed or {}):
            self._cluster_objects.delete(obj, name)

    def _delete(self, path: str, uid: str | None = None) -> None:
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        if uid is not None:
            body["preconditions"] = {"uid": uid}
        try:
            self._rest.request("DELETE", path, body=body)
        except ApiError as exc:
            if not (exc.not_found or (uid is not None and exc.conflict)):
                raise
