"""I/O of a test's start: its sandbox namespaces (with NetworkPolicy and quota) and its Restore.

Every name comes from the test's UID, so a retry (or a new leader) finds what an earlier attempt
created: a 409 on a sandbox object counts as created. A namespace that already exists is adopted
only if it is this test's sandbox and is not being deleted; anything else is a clash and fails
the test: Lazarus never restores into a namespace it did not create. A label is no proof of who
made a namespace, so "this test's sandbox" means: once the test has recorded its sandboxes' UIDs
(``status.sandboxUIDs``, written with the move to Restoring), one of those; before that record
(a crash between creating a sandbox and the status write), a namespace that carries a valid
sandbox proof (``lazarus.sandbox.sandbox_proof``), which only the operator's key can make.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lazarus.api.v1alpha1 import FailureReason
from lazarus.controllers.restoretest.decisions import Fail
from lazarus.controllers.restoretest.objects import restore_objects
from lazarus.controllers.restoretest.sandboxkey import SandboxKey, SandboxKeyError
from lazarus.controllers.restoretest.view import TestView
from lazarus.cost.quota import sandbox_quota_objects
from lazarus.kube.client import ApiError, Rest
from lazarus.sandbox import namespace_body, network_policy_body, proven_sandbox, sandbox_proof
from lazarus.velero.restore_spec import UnsafeRestoreError


class Creator:
    """Creates a test's sandboxes and Restore through ``rest``."""

    def __init__(
        self,
        rest: Rest,
        velero_namespace: str,
        operator_namespace: str,
        cached_namespace: Callable[[str], Any],
        key: SandboxKey,
    ) -> None:
        """``cached_namespace(name)``: the sandbox informer's copy of a namespace, or None;
        ``key``: the sandbox proofs' key."""
        self._rest = rest
        self._key = key
        self._velero = velero_namespace
        self._operator_namespace = operator_namespace
        self._cached_namespace = cached_namespace

    def sandboxes_and_restore(self, view: TestView, mapping: dict[str, str]) -> Fail | dict[str, str]:
        """Create everything of the test's start; the sandboxes' UIDs, or a ``Fail`` if it must not go on."""
        uids = self.sandboxes(view, mapping)
        return uids if isinstance(uids, Fail) else self.restore(view, mapping) or uids

    def sandboxes(self, view: TestView, mapping: dict[str, str]) -> Fail | dict[str, str]:
        """Create the sandbox namespaces and their NetworkPolicies and quotas; their UIDs by name."""
        test = dict(view.obj)
        labels = dict(view.spec.sandbox.labels or {})
        recorded = set(view.section("sandboxUIDs").values())
        try:
            key = self._key.value()
        except SandboxKeyError as exc:
            return Fail(FailureReason.UNSAFE_RESTORE, f"cannot prove its sandboxes are Lazarus's: {exc}")
        uids: dict[str, str] = {}
        for source, sandbox in mapping.items():
            body = namespace_body(test, sandbox, source, labels, sandbox_proof(key, view.uid, sandbox))
            made = self._namespace(test, body, recorded, key)
            if isinstance(made, Fail):
                return made
            uids[sandbox] = made
            self._create(f"/apis/networking.k8s.io/v1/namespaces/{sandbox}/networkpolicies",
                         network_policy_body(test, sandbox, self._operator_namespace))  # fmt: skip
            for collection, body in sandbox_quota_objects(test, sandbox):
                self._create(collection, body)
        return uids

    def restore(self, view: TestView, mapping: dict[str, str]) -> Fail | None:
        """Create the resource-modifier ConfigMap and the Velero Restore."""
        try:
            configmap, body = restore_objects(view, mapping, self._velero)
        except UnsafeRestoreError as exc:
            return Fail(FailureReason.UNSAFE_RESTORE, str(exc))
        self._create(f"/api/v1/namespaces/{self._velero}/configmaps", configmap)
        self._create(f"/apis/velero.io/v1/namespaces/{self._velero}/restores", body)
        return None

    def _namespace(self, test: dict[str, Any], body: dict[str, Any], recorded: set[str], key: bytes) -> Fail | str:
        """The UID of the sandbox ``body`` (created now or adopted), or the clash."""
        name = body["metadata"]["name"]

        def adoptable(namespace: dict[str, Any]) -> bool:
            if recorded:
                return namespace["metadata"].get("uid") in recorded
            return proven_sandbox(namespace, test["metadata"]["uid"], key)

        cached = self._cached_namespace(name)
        if cached is not None and adoptable(cached):
            return str(cached["metadata"]["uid"])
        created = self._create("/api/v1/namespaces", body)
        if created is not None:
            return str(created["metadata"].get("uid", ""))
        existing = self._rest.request("GET", f"/api/v1/namespaces/{name}")
        if adoptable(existing) and not existing["metadata"].get("deletionTimestamp"):
            return str(existing["metadata"]["uid"])
        return Fail(FailureReason.UNSAFE_RESTORE, f"namespace {name} already exists and is not this test's "
                    "sandbox: Lazarus never restores into a namespace it did not create")  # fmt: skip

    def _create(self, collection: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """POST ``body``; the created object, or None if it already existed (idempotent retries)."""
        try:
            return self._rest.request("POST", collection, body=body)
        except ApiError as exc:
            if not exc.conflict:
                raise
            return None
