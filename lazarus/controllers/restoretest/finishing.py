"""I/O of a finished test and of tests that are gone: sandbox cleanup, retention, orphans.

What to delete and when is decided by ``cleanup`` and ``retention``; this acts on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import structlog

from lazarus.api.v1alpha1 import ConditionType, TransitionReason
from lazarus.controllers.restoretest import cleanup, retention
from lazarus.controllers.restoretest.deleting import Deleter
from lazarus.controllers.restoretest.informers import Informers
from lazarus.controllers.restoretest.view import TestView
from lazarus.controllers.workqueue import RateLimitingQueue
from lazarus.informers import object_key
from lazarus.kube.client import Rest
from lazarus.kube.conditions import TRUE
from lazarus.lifecycle.history import DEFAULT_MAX_AGE, delete_test
from lazarus.lifecycle.status import StatusWriter

log = structlog.get_logger(__name__)


class Finisher:
    """Cleans up after finished and deleted tests."""

    def __init__(
        self, rest: Rest, cache: Informers, deleter: Deleter, status: StatusWriter, queue: RateLimitingQueue[str],
        failure_retention: float, now: Callable[[], datetime],
    ) -> None:  # fmt: skip
        self._rest = rest
        self._cache = cache
        self._deleter = deleter
        self._status = status
        self._queue = queue
        self._failure_retention = failure_retention
        self._now = now

    def clean_up(self, view: TestView) -> None:
        """Remove the sandbox of a finished test once its retention (``cleanup.due_in``) is over."""
        if cleanup.cleaned_up(view):
            return
        due_in = cleanup.due_in(view, self._failure_retention, self._now())
        if due_in is None:
            return
        if due_in > 0:
            self._queue.add_after(view.key, due_in)
            return
        if self._deleter.test_objects(view, self._cache.owned(view.key)):
            self._status.set_condition(dict(view.obj), ConditionType.CLEANUP_COMPLETED, TRUE,
                                       TransitionReason.CLEANUP_COMPLETED,
                                       "sandbox namespaces and the Velero restore removed")  # fmt: skip

    def retain(self, view: TestView) -> None:
        """Delete the tests of the finished test's retention group beyond its limits (``retention``);
        come back when this one becomes too old."""
        group = self._cache.retention_group(view)
        if not group:
            return
        for test in retention.to_delete(group, self._now()):
            log.info("deleting a test beyond its source's retention", test=object_key(dict(test)))
            delete_test(self._rest, test)
        self._queue.add_after(view.key, max(DEFAULT_MAX_AGE - view.elapsed("completionTime", self._now()), 0)
                                        + 1.0)  # fmt: skip

    def delete_orphans(self, key: str, test: dict[str, Any] | None) -> None:
        """Delete sandboxes/restores labelled for ``key`` whose test is gone or has another UID."""
        owned: Iterable[dict[str, Any]] = self._cache.owned(key)
        for orphan_uid in cleanup.stale_uids(owned, test["metadata"]["uid"] if test is not None else None):
            log.info("removing leftovers of a deleted test", test=key, uid=orphan_uid)
            self._deleter.owned(key, orphan_uid, self._cache.owned(key))
