"""Pending → Restoring: whether a test may start, and what it restores into which sandboxes.

``check_backup`` judges the backup; the controller then takes a slot (``slots``) and asks ``plan``
for the namespace mapping. When the backup's spec does not name its namespaces literally (``*``, a
pattern, or no list: ``needs_contents``), ``plan`` takes them from the backup's resource list,
which the controller reads first: the set of namespaces is never guessed (fail closed).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lazarus.api.v1alpha1 import FailureReason, PendingReason
from lazarus.automation.backups import velero_findings
from lazarus.controllers.restoretest.decisions import Fail, Wait
from lazarus.controllers.restoretest.objects import restore_objects, restore_section
from lazarus.controllers.restoretest.view import BACKUP_IN_PROGRESS, BACKUP_PARTIAL, BACKUP_USABLE, TestView
from lazarus.lifecycle import parity, workloads
from lazarus.lifecycle.durations import parse_time
from lazarus.sandbox import namespace_mapping
from lazarus.velero.backup_contents import BackupContents
from lazarus.velero.restore_spec import UnsafeRestoreError, restore_safety

# A namespace name as Velero reads it literally (no glob characters).
_LITERAL_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


@dataclass(frozen=True)
class Start:
    """Create the sandboxes and the Restore, then move to Restoring with ``status``."""

    mapping: dict[str, str]
    status: Mapping[str, Any] = field(default_factory=dict)


def check_backup(
    view: TestView, backup: Mapping[str, Any] | None, velero_namespace: str, now: datetime
) -> Fail | Wait | None:
    """Why the test cannot start on ``backup`` (None: it can, given a slot)."""
    name = view.spec.backup_name
    if view.spec.backup_namespace != velero_namespace:
        return Fail(FailureReason.BACKUP_NOT_FOUND, f"backups are read from the Velero namespace "
                    f"{velero_namespace!r}, not {view.spec.backup_namespace!r}")  # fmt: skip
    if backup is None:
        return Fail(FailureReason.BACKUP_NOT_FOUND, f"Velero backup {velero_namespace}/{name} does not exist")
    status = backup.get("status") or {}
    phase = status.get("phase") or ""
    if phase in BACKUP_IN_PROGRESS:
        return Wait(PendingReason.WAITING_FOR_BACKUP, f"backup {name} is {phase or 'New'}")
    if phase != BACKUP_USABLE and not (phase == BACKUP_PARTIAL and view.spec.allow_partially_failed):
        hint = " (set allowPartiallyFailed to test it)" if phase == BACKUP_PARTIAL else ""
        return Fail(FailureReason.BACKUP_NOT_COMPLETED, f"backup {name} ended {phase}{velero_findings(dict(backup))}; "
                    f"only Completed backups are tested{hint}")  # fmt: skip
    expiration = status.get("expiration")
    if expiration and parse_time(expiration) < now:
        return Fail(FailureReason.BACKUP_EXPIRED, f"backup {name} expired at {expiration}")
    return None


def waiting_for_slot(active: int, limit: int) -> Wait:
    """The Pending reason of a test that found every slot taken."""
    return Wait(PendingReason.WAITING_FOR_SLOT, f"waiting for a free slot: {active} running, at most {limit} at once")


def listed_namespaces(backup: Mapping[str, Any]) -> set[str] | None:
    """The namespaces a backup's spec names literally; None when only its contents can tell.

    Velero backs up ``includedNamespaces`` minus ``excludedNamespaces``; a ``*``, a glob pattern
    or an empty list (all namespaces) leaves the set open.
    """
    spec = backup.get("spec") or {}
    included = spec.get("includedNamespaces") or []
    if not included or not all(_LITERAL_NAMESPACE.fullmatch(ns) for ns in included):
        return None
    return set(included) - set(spec.get("excludedNamespaces") or [])


def nothing_to_restore(view: TestView) -> Fail:
    return Fail(FailureReason.NOTHING_TO_RESTORE, f"backup {view.spec.backup_name} holds no namespaced "
                "resources in the namespaces this test selects")  # fmt: skip


def needs_contents(backup: Mapping[str, Any]) -> bool:
    """Whether only the backup's resource list can tell which namespaces it holds."""
    return listed_namespaces(backup) is None


def plan(
    view: TestView, backup: Mapping[str, Any], velero_namespace: str, contents: BackupContents | None
) -> Fail | Start:
    """The sandboxes and status of the test's start; ``contents`` required if ``needs_contents``."""
    in_backup = listed_namespaces(backup)
    if in_backup is None:
        if contents is None:
            raise ValueError("plan needs the backup's contents when its spec does not list its namespaces")
        in_backup = set(contents.namespaces)
    selected = view.spec.restore
    included = set(selected.included_namespaces) - {"*"}
    sources = sorted(
        ns for ns in in_backup if (not included or ns in included) and ns not in set(selected.excluded_namespaces)
    )
    if not sources:
        return nothing_to_restore(view)
    try:
        mapping = namespace_mapping(view.spec.sandbox.namespace_prefix, view.uid, sources, view.spec.restore_namespace)
    except ValueError as exc:
        return Fail(FailureReason.INVALID_SPEC, str(exc))
    try:
        restore_objects(view, mapping, velero_namespace)  # fail before creating anything
    except UnsafeRestoreError as exc:
        return Fail(FailureReason.UNSAFE_RESTORE, str(exc))
    status: dict[str, Any] = {
        "namespaceMapping": mapping,
        "sandboxNamespaces": sorted(mapping.values()),
        "restore": {"restoreName": view.restore_name, "safety": list(restore_safety(restore_section(view)).reasons)},
    }
    if contents is not None:
        status.update(expectations(view, contents, mapping))
    return Start(mapping, status)


def expectations(view: TestView, contents: BackupContents, mapping: Mapping[str, str]) -> dict[str, Any]:
    """The status the backup's contents decide: workloads to wait for and per-kind parity."""
    kinds = {workloads.KIND_OF_SPEC[k] for k in view.spec.workloads.wait_for if k in workloads.KIND_OF_SPEC}
    expected = sum(
        1
        for kind, items in contents.items.items()
        if kind.rsplit("/", 1)[-1] in kinds
        for item in items
        if item.split("/", 1)[0] in mapping
    )
    return {
        "workloads": {"expected": expected},
        "parity": {
            "expected": parity.expected_counts(contents, list(mapping)),
            "enforced": not view.spec.restore.filters_resources,
        },
    }
