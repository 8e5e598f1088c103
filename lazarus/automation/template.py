"""The ``LazarusRestoreTest`` Lazarus makes of a backup: from a policy's template or the default.

``RestoreTestTemplate.from_policy`` validates a ``BackupTestPolicy``'s template beyond what the CRD
schema can (the restore it would ask for must pass the same fail-closed checks the restore-test
controller applies, e.g. no Ingress in ``includedResources``), so bad input is reported on the
policy and the Schedule before any test exists. The default template (no policy named) is an
empty spec: restore every namespace of the backup into sandboxes, wait for workloads, check
parity; no health checks.

Created tests are labelled ``lazarus.io/created-by`` (``backup-trigger`` or ``policy``), with the
backup, Schedule and policy as label values (bounded to 63 characters) and the full backup name
as an annotation. Lazarus's labels win over the template's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lazarus.api.v1alpha1 import DEFAULT_BACKUP_NAMESPACE
from lazarus.automation.backups import FAILED, FAILED_VALIDATION, PARTIALLY_FAILED, cluster_wide
from lazarus.automation.names import bounded_name
from lazarus.automation.optin import schedule_of
from lazarus.kube.client import ApiError, Rest
from lazarus.kube.resources import LAZARUS_RESTORE_TESTS
from lazarus.velero.restore_spec import UnsafeRestoreError, restore_body

CREATED_BY_LABEL = "lazarus.io/created-by"
CREATED_BY_TRIGGER, CREATED_BY_POLICY = "backup-trigger", "policy"
# Tests made by ``lazarus test``.
CREATED_BY_CLI = "cli"
BACKUP_NAME_LABEL = "lazarus.io/backup-name"
SCHEDULE_LABEL = "lazarus.io/schedule-name"
POLICY_NAME_LABEL = "lazarus.io/policy-name"
BACKUP_ANNOTATION = "lazarus.io/backup"
SCHEDULED_TIME_ANNOTATION = "lazarus.io/scheduled-time"

# Stand-ins for validating a template's restore settings before any backup is known.
_PROBE_MAPPING = {"source": "lazarus-sbx-source-000000"}


class InvalidTemplate(ValueError):
    """A policy's template cannot make a valid test; the message names the problem."""


@dataclass(frozen=True)
class RestoreTestTemplate:
    """Where and how tests are made: namespace, metadata, spec and the policy's safety switches."""

    namespace: str
    """Namespace of the created tests: the policy's, or the operator's for the default."""
    spec: Mapping[str, Any] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    policy: Mapping[str, Any] | None = None
    """The policy the template comes from (None: the default template)."""
    allow_cluster_wide: bool = False
    test_failed_backups: bool = False

    @classmethod
    def from_policy(cls, policy: Mapping[str, Any]) -> RestoreTestTemplate:
        """The template of a policy; raise ``InvalidTemplate`` if it cannot make a valid test."""
        spec = policy.get("spec") or {}
        template = spec.get("template") or {}
        test_spec = template.get("spec") or {}
        try:
            restore_body(
                name="probe",
                namespace=DEFAULT_BACKUP_NAMESPACE,
                backup_name="probe",
                namespace_mapping=_PROBE_MAPPING,
                resource_modifier_configmap="probe",
                restore_spec=test_spec.get("restore"),
            )
        except UnsafeRestoreError as exc:
            raise InvalidTemplate(f"template.spec.restore: {exc}") from None
        metadata = template.get("metadata") or {}
        return cls(
            namespace=policy["metadata"]["namespace"],
            spec=test_spec,
            labels=metadata.get("labels") or {},
            annotations=metadata.get("annotations") or {},
            policy=policy,
            allow_cluster_wide=bool(spec.get("allowClusterWideBackups")),
            test_failed_backups=bool(spec.get("testFailedBackups")),
        )

    @property
    def source(self) -> str:
        """Where the template comes from, for messages."""
        if self.policy is None:
            return "the default template"
        return f"policy {self.policy['metadata']['namespace']}/{self.policy['metadata']['name']}"

    def tests_phase(self, phase: str) -> bool:
        """Whether a backup that ended in ``phase`` is tested under this template."""
        if phase == PARTIALLY_FAILED:
            return bool(self.spec.get("allowPartiallyFailed"))
        if phase in (FAILED, FAILED_VALIDATION):
            return self.test_failed_backups
        return phase == "Completed"

    def refusal(self, backup: Mapping[str, Any]) -> str | None:
        """Why this template does not test ``backup`` although its phase is tested, or None."""
        why = cluster_wide(backup.get("spec") or {})
        if why and not self.allow_cluster_wide:
            return (
                f"backup {backup['metadata']['name']} is not tested: {why}; only a policy with "
                f"allowClusterWideBackups tests such backups ({self.source} does not)"
            )
        return None

    def test_body(
        self,
        name: str,
        backup: Mapping[str, Any],
        *,
        created_by: str,
        annotations: Mapping[str, str] | None = None,
        owned_by_policy: bool = False,
    ) -> dict[str, Any]:
        """The ``LazarusRestoreTest`` ``name`` of ``backup``; ``owned_by_policy`` makes the policy
        its controlling owner (history pruning, garbage collection with the policy)."""
        metadata = backup["metadata"]
        labels = {**self.labels, CREATED_BY_LABEL: created_by, BACKUP_NAME_LABEL: bounded_name(metadata["name"])}
        schedule = schedule_of(backup)
        if schedule:
            labels[SCHEDULE_LABEL] = bounded_name(schedule)
        body: dict[str, Any] = {
            "apiVersion": LAZARUS_RESTORE_TESTS.api_version,
            "kind": LAZARUS_RESTORE_TESTS.kind,
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": labels,
                "annotations": {**self.annotations, **(annotations or {}), BACKUP_ANNOTATION: metadata["name"]},
            },
            "spec": {**self.spec, "backupName": metadata["name"], "backupNamespace": metadata["namespace"]},
        }
        if self.policy is not None:
            policy_meta = self.policy["metadata"]
            labels[POLICY_NAME_LABEL] = bounded_name(policy_meta["name"])
            if owned_by_policy:
                body["metadata"]["ownerReferences"] = [
                    {
                        "apiVersion": self.policy.get("apiVersion", "lazarus.io/v1alpha1"),
                        "kind": self.policy.get("kind", "BackupTestPolicy"),
                        "name": policy_meta["name"],
                        "uid": policy_meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": False,
                    }
                ]
        return body


def create_test(rest: Rest, body: Mapping[str, Any]) -> bool:
    """Create the test; True if created, False if a test of that name already exists (409: a
    restart or another leader made it — never a second test)."""
    path = LAZARUS_RESTORE_TESTS.collection_path(body["metadata"]["namespace"])
    try:
        rest.request("POST", path, body=dict(body))
    except ApiError as exc:
        if exc.conflict:
            return False
        raise
    return True
