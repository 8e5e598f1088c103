"""The history of finished tests: which to delete, and deleting one safely.

Finished tests are the audit trail, but they must not pile up without bound: each source keeps
the newest ones of each outcome (``beyond_limits``); a policy sets its own limits, other tests
made for a source (Schedule opt-in, labelled Backups, ``lazarus test``) keep
``DEFAULT_KEPT_SUCCEEDED`` / ``DEFAULT_KEPT_FAILED`` and none finished more than
``DEFAULT_MAX_AGE`` ago. Deleting a test lets its finalizer clean up what it created.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from lazarus.api.v1alpha1 import Phase
from lazarus.kube.client import ApiError, Rest
from lazarus.kube.resources import LAZARUS_RESTORE_TESTS
from lazarus.lifecycle.durations import parse_time

# Kept per source, newest first: enough for a trend and for the baselines' history of good tests.
DEFAULT_KEPT_SUCCEEDED = 10
# Failures are kept fewer: the newest ones say what is wrong now.
DEFAULT_KEPT_FAILED = 5
# A finished test older than this (seconds: 30 days) is deleted whatever the count.
DEFAULT_MAX_AGE = 30 * 86400.0

Obj = Mapping[str, Any]


def finished_at(test: Obj) -> str:
    """When ``test`` finished (its creation if the status does not say)."""
    return str((test.get("status") or {}).get("completionTime") or test["metadata"].get("creationTimestamp") or "")


def beyond_limits(tests: Iterable[Obj], limits: Mapping[Phase, int]) -> list[Obj]:
    """The finished ``tests`` beyond ``limits`` (phase → how many to keep), oldest dropped first."""
    listed = list(tests)
    beyond: list[Obj] = []
    for phase, limit in limits.items():
        ended = sorted((t for t in listed if (t.get("status") or {}).get("phase") == phase), key=finished_at,
                       reverse=True)  # fmt: skip
        beyond += ended[limit:]
    return beyond


def expired(tests: Iterable[Obj], now: datetime, max_age: float = DEFAULT_MAX_AGE) -> list[Obj]:
    """The finished ``tests`` that finished more than ``max_age`` seconds before ``now``."""
    return [
        t for t in tests
        if (t.get("status") or {}).get("phase") in (Phase.SUCCEEDED, Phase.FAILED) and finished_at(t)
        and (now - parse_time(finished_at(t))).total_seconds() > max_age
    ]  # fmt: skip


def delete_test(rest: Rest, test: Obj) -> None:
    """Delete ``test``, only if it is still the object of that UID (a 404 or 409: it is gone)."""
    metadata = test["metadata"]
    path = f"{LAZARUS_RESTORE_TESTS.collection_path(metadata['namespace'])}/{metadata['name']}"
    body = {"propagationPolicy": "Background", "preconditions": {"uid": metadata["uid"]}}
    try:
        rest.request("DELETE", path, body=body)
    except ApiError as exc:
        if not (exc.not_found or exc.conflict):
            raise
