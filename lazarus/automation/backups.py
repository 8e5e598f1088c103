"""Facts about Velero Backups, and which of them get tested.

Two selections, both pure and deterministic given the cached objects:

``fresh_backups`` / ``schedule_selection`` (Schedule opt-in)
    A Schedule's finished backups are ordered by the time they finished (``completionTimestamp``,
    then name). The *last tested* backup is the newest one that already has a Lazarus-made test.
    Every backup that finished after it is fresh; of the fresh ones that may be tested, every Nth
    is selected. With none tested yet (the Schedule was just opted in), only the newest testable
    backup is selected: opting in a Schedule with a month of backups must not start a month of
    tests. So restarts and leader changes re-select exactly what was selected before (the names
    are deterministic, a second create is a 409), a test deleted by hand is not made again
    (unless it was the newest), and backups that finish while the operator is down are tested
    when it is back. Ordering by finish time, not creation, means a long backup that finishes
    after a newer short one is still fresh. (Two backups of one Schedule finishing in the same
    second are ordered by name.)

``policy_selection`` (cron runs)
    The newest matching backup (``Latest``) or one of the newest ``lastN`` (``RandomOfLastN``),
    chosen by a generator seeded with the policy and run, so a retried run picks the same one.

Safe by default: ``cluster_wide`` names why a backup covers the whole cluster or cluster-scoped
resources; such backups are tested only where a policy explicitly allows it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from lazarus.lifecycle.durations import parse_time

Backup = dict[str, Any]

COMPLETED = "Completed"
PARTIALLY_FAILED = "PartiallyFailed"
FAILED = "Failed"
FAILED_VALIDATION = "FailedValidation"
TERMINAL_PHASES = (COMPLETED, PARTIALLY_FAILED, FAILED, FAILED_VALIDATION)
UNSUCCESSFUL_PHASES = (PARTIALLY_FAILED, FAILED, FAILED_VALIDATION)
LATEST, RANDOM_OF_LAST_N = "Latest", "RandomOfLastN"


def phase(backup: Backup) -> str:
    """The Velero phase (``""`` before Velero has seen the backup)."""
    return str((backup.get("status") or {}).get("phase") or "")


def velero_findings(backup: Backup) -> str:
    """What Velero said of a backup that did not complete: its validation errors, or how many errors
    and warnings it logged (and the command that lists them). Empty when it said nothing."""
    status = backup.get("status") or {}
    if status.get("validationErrors"):
        return ": " + "; ".join(str(error) for error in status["validationErrors"])
    errors, warnings = int(status.get("errors") or 0), int(status.get("warnings") or 0)
    if not errors and not warnings:
        return ""
    return f" with {errors} errors and {warnings} warnings (velero backup logs {backup['metadata']['name']})"


def is_terminal(backup: Backup) -> bool:
    """Whether Velero is done with the backup (``Deleting`` is not: it is going away)."""
    return phase(backup) in TERMINAL_PHASES


def finished_order(backup: Backup) -> tuple[datetime, str]:
    """Sort key: when the backup finished (start or creation time if Velero wrote no end), name."""
    status, metadata = backup.get("status") or {}, backup["metadata"]
    stamp = status.get("completionTimestamp") or status.get("startTimestamp") or metadata["creationTimestamp"]
    return parse_time(str(stamp)), metadata["name"]


def is_expired(backup: Backup, now: datetime) -> bool:
    """Whether the backup is past its expiration (Velero is about to delete it)."""
    expiration = (backup.get("status") or {}).get("expiration")
    return expiration is not None and parse_time(str(expiration)) <= now


def cluster_wide(backup_spec: Mapping[str, Any]) -> str | None:
    """Why a backup (or Schedule template) with this spec covers more than some namespaces, or
    None. Velero backs up cluster-scoped resources when asked to, or by default when it backs up
    every namespace."""
    namespaces = backup_spec.get("includedNamespaces") or []
    if not namespaces or "*" in namespaces:
        return "it backs up every namespace of the cluster"
    if backup_spec.get("includeClusterResources") is True or backup_spec.get("includedClusterScopedResources"):
        return "it includes cluster-scoped resources"
    return None


def fresh_backups(backups: Sequence[Backup], tested: set[str], testable: Callable[[Backup], bool]) -> list[Backup]:
    """The finished backups after the last tested one, oldest first (see the module docstring);
    with none tested, those from the newest testable one on (all, if none is testable)."""
    finished = sorted((b for b in backups if is_terminal(b)), key=finished_order)
    names = [b["metadata"]["name"] for b in finished]
    last = max((i for i, name in enumerate(names) if name in tested), default=None)
    if last is not None:
        return finished[last + 1 :]
    start = max((i for i, b in enumerate(finished) if testable(b)), default=0)
    return finished[start:]


def schedule_selection(
    backups: Sequence[Backup], tested: set[str], testable: Callable[[Backup], bool], every: int
) -> list[Backup]:
    """Of the fresh backups, every ``every``-th testable one (the first fresh one when none of
    the Schedule's backups is tested yet)."""
    candidates = [b for b in fresh_backups(backups, tested, testable) if testable(b)]
    if not any(b["metadata"]["name"] in tested for b in backups):
        return candidates[-1:]
    return candidates[every - 1 :: every]


def matches_selector(labels: Mapping[str, str], selector: Mapping[str, Any] | None) -> bool:
    """Whether ``labels`` satisfy a metav1.LabelSelector (None or empty: everything)."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for requirement in selector.get("matchExpressions") or []:
        key, operator, values = requirement["key"], requirement["operator"], requirement.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def policy_selection(candidates: Sequence[Backup], strategy: str, last_n: int, seed: str) -> Backup | None:
    """The backup one policy run tests, from usable ``candidates``; None if there is none."""
    newest = sorted(candidates, key=finished_order, reverse=True)
    if not newest:
        return None
    if strategy == RANDOM_OF_LAST_N:
        return random.Random(seed).choice(newest[:last_n])
    return newest[0]
