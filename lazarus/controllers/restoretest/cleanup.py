"""Cleanup, retention and orphans: what of a test's objects to delete, and when.

Everything a test created carries its owner labels and is found through the caches' owner
index. ``deletions`` decides for the objects of one test UID; nothing is deleted while Velero is
still working on the test's Restore: deleting a Restore Velero works on blocks Velero's restore
finalizer (it retries the status update of the gone Restore for its whole ``--resource-timeout``,
stalling every other restore), and a sandbox deleted under a running restore can be created again
by Velero, without Lazarus's labels. The Restore's next update brings the test back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lazarus.api.v1alpha1 import ConditionType, FailureReason, Phase
from lazarus.controllers.restoretest.view import RESTORE_NOT_STARTED, RESTORE_TERMINAL, TestView
from lazarus.kube.conditions import TRUE, get_condition
from lazarus.lifecycle.durations import parse_duration
from lazarus.lifecycle.retention import kept_until_deleted
from lazarus.sandbox import TEST_UID_LABEL

Obj = Mapping[str, Any]


def cleaned_up(view: TestView) -> bool:
    """Whether the sandbox of the finished test is already gone."""
    return (get_condition(view.status.get("conditions"), ConditionType.CLEANUP_COMPLETED) or {}).get("status") == TRUE


def due_in(view: TestView, failure_retention: float, now: datetime) -> float | None:
    """Seconds until the sandbox of a finished test is removed; None: kept until the test is deleted."""
    if kept_until_deleted(dict(view.obj)):
        return None
    # A test stopped for its cost is not kept running up more (unless the spec keeps it).
    failed = view.phase != Phase.SUCCEEDED and view.status.get("reason") != FailureReason.COST_LIMIT_EXCEEDED
    keep = parse_duration(view.spec.ttl) if view.spec.ttl else (failure_retention if failed else 0.0)
    return keep - view.elapsed("completionTime", now)


def velero_is_restoring(obj: Obj) -> bool:
    """Whether ``obj`` is a Velero Restore that Velero has started and not finished."""
    phase = (obj.get("status") or {}).get("phase") or ""
    return obj.get("kind") == "Restore" and phase not in (*RESTORE_NOT_STARTED, *RESTORE_TERMINAL)


@dataclass(frozen=True)
class Deletions:
    """The objects of one test UID to delete now; ``done`` once none is left in the cache."""

    delete: tuple[Obj, ...] = ()
    waiting_for: str | None = None
    """A Restore Velero is still working on: nothing is deleted until it finishes."""
    refused: tuple[str, ...] = ()
    """Namespaces labelled as the test's that Lazarus cannot prove it made: left alone."""
    done: bool = False


def deletions(owned: Iterable[Obj], uid: str, ours: Callable[[Obj], bool]) -> Deletions:
    """What to delete of test ``uid`` among ``owned`` (its labelled objects in the caches).

    A namespace is deleted only if ``ours(namespace)``: Lazarus proves it made it (see
    ``Deleter``); the others are ``refused`` and do not hold up ``done``. Objects already being
    deleted are not deleted again.
    """
    labelled = [o for o in owned if (o["metadata"].get("labels") or {}).get(TEST_UID_LABEL) == uid]
    refused = tuple(o["metadata"]["name"] for o in labelled if o.get("kind") == "Namespace" and not ours(o))
    remaining = [o for o in labelled if not (o.get("kind") == "Namespace" and o["metadata"]["name"] in refused)]
    running = [o["metadata"]["name"] for o in remaining if velero_is_restoring(o)]
    if running:
        return Deletions(waiting_for=running[0])
    delete = tuple(o for o in remaining if not o["metadata"].get("deletionTimestamp"))
    return Deletions(delete=delete, refused=refused, done=not remaining)


def stale_uids(owned: Iterable[Obj], uid: str | None) -> set[str]:
    """UIDs of tests that labelled ``owned`` objects but are not the cached test (``uid``)."""
    return {o["metadata"]["labels"][TEST_UID_LABEL] for o in owned if o["metadata"]["labels"][TEST_UID_LABEL] != uid}
