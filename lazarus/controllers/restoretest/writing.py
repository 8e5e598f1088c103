"""Writing what the phase functions decided: status transitions, requeues, and the Warning Events
of syncs that cannot go on (a refused call, a sync that keeps failing)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from lazarus.api.v1alpha1 import Phase
from lazarus.controllers.restoretest.decisions import Advance, Decision, Fail, RequeueAfter, Wait
from lazarus.controllers.restoretest.view import TestView
from lazarus.controllers.workqueue import RateLimitingQueue
from lazarus.kube.client import ApiError
from lazarus.kube.conditions import TRUE
from lazarus.kube.events import WARNING
from lazarus.lifecycle.status import StatusWriter

log = structlog.get_logger(__name__)

# Event reason: the API server refused a call of this test's sync (RBAC).
FORBIDDEN = "Forbidden"
# Event reason: the test's sync keeps failing on something unexpected (a malformed status, a bug).
SYNC_FAILED = "SyncFailed"


class Writer:
    """Acts on decisions through ``status`` (the API) and ``queue`` (requeues)."""

    def __init__(
        self, status: StatusWriter, queue: RateLimitingQueue[str], cached_test: Callable[[str], dict[str, Any] | None]
    ) -> None:
        """``cached_test(key)``: the test in the cache, for the Events of a key."""
        self._status = status
        self._queue = queue
        self._cached_test = cached_test

    def apply(self, view: TestView, decision: Decision | None) -> None:
        """Act on a phase function's decision (None: nothing to do)."""
        test = dict(view.obj)
        if isinstance(decision, Fail):
            log.info("test failed", reason=decision.reason, message=decision.message)
            self._status.fail(test, decision.reason, decision.message, extra=dict(decision.extra))
        elif isinstance(decision, Wait):
            if view.phase != Phase.PENDING or view.status.get("reason") != decision.reason:
                log.info("test waiting", reason=decision.reason, message=decision.message)
                self._status.transition(test, Phase.PENDING, decision.reason, decision.message)
        elif isinstance(decision, Advance):
            log.info("test moving on", to=decision.phase, reason=decision.reason)
            condition = (decision.condition, TRUE) if decision.condition is not None else None
            self._status.transition(test, decision.phase, decision.reason, decision.message, condition=condition,
                                    extra=dict(decision.extra))  # fmt: skip
        elif isinstance(decision, RequeueAfter):
            self._queue.add_after(view.key, decision.seconds)

    def forbidden(self, key: str, error: ApiError) -> None:
        """A Warning Event on the test: the API server's 403 message names the verb, the resource and
        the ServiceAccount; the sync is retried with backoff (see ``Controller``)."""
        test = self._cached_test(key)
        if test is not None:
            self._status.event(test, WARNING, FORBIDDEN, f"{error.message or error}; grant it to the operator "
                               "(README: Install, RBAC) — retrying with backoff")  # fmt: skip

    def failing(self, key: str, error: Exception) -> None:
        """A Warning Event on the test whose sync keeps failing on something unexpected (see
        ``Controller``): retried when the test changes, not before."""
        test = self._cached_test(key)
        if test is not None:
            self._status.event(test, WARNING, SYNC_FAILED, f"the operator cannot process this test: {error!r}; not "
                               "retried until the test changes (check its status, or report a bug)")  # fmt: skip
