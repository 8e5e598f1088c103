"""The controller loop every Lazarus controller runs on (client-go's sample-controller shape).

Event handlers only compute a key (``namespace/name``) and enqueue it. ``workers`` threads take
keys from a rate-limited workqueue and call ``sync(key)``, which reads the informer cache,
compares desired with actual state and acts, idempotently. The outcome decides what happens next:

- ``sync`` returns: success, the key's failure history is forgotten;
- ``sync`` raises ``PermanentError``: a user error that retrying cannot fix; ``sync`` must already
  have recorded it (status, event); the key is not requeued;
- ``sync`` raises anything else: transient; logged and requeued with per-key exponential backoff.
  A 403 from the API server is retried too (an administrator may fix the RBAC), but it is logged
  as an error and handed to ``on_forbidden`` (e.g. to record an Event), once per key and message
  until a sync of that key succeeds: a missing permission is reported, never just retried.
- ``sync`` raises one of ``PROGRAMMING_ERRORS`` (a ``KeyError`` on a malformed status, ...): a bug
  or an object the code did not expect, which retrying alone will not fix. It is retried
  ``MAX_PROGRAMMING_RETRIES`` times with backoff (a race may explain it), then logged as an error,
  handed to ``on_programming_error`` (e.g. a Warning Event) and dropped: the next change of the
  object enqueues its key again.

The workqueue guarantees one key is never synced by two workers at once. Workers start only after
the caches the controller reads have synced. ``stop`` hands out no more keys: each worker finishes
the key it holds and exits; keys still queued are dropped (whoever leads next lists every object
again). ``join`` waits for the workers within one timeout for all of them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

from lazarus.controllers.workqueue import RateLimitingQueue
from lazarus.informers.store import DeletedFinalStateUnknown, object_key
from lazarus.kube.client import ApiError

log = structlog.get_logger(__name__)


# Exceptions that mean a bug or an unexpected object rather than a passing failure of the API.
# (Not ValueError: several user errors are ValueErrors, and they are handled where they arise.)
PROGRAMMING_ERRORS: tuple[type[Exception], ...] = (KeyError, TypeError, AttributeError, IndexError)
# Retries of a programming error before the key is dropped (backoff 5 ms … 80 ms).
MAX_PROGRAMMING_RETRIES = 5


class PermanentError(Exception):
    """A failure retrying cannot fix (bad user input); already recorded by the sync function."""


class Controller:
    """Worker threads draining one rate-limited queue into one ``sync`` function."""

    def __init__(
        self,
        name: str,
        sync: Callable[[str], None],
        *,
        workers: int = 2,
        queue: RateLimitingQueue[str] | None = None,
        on_forbidden: Callable[[str, ApiError], None] | None = None,
        on_programming_error: Callable[[str, Exception], None] | None = None,
    ) -> None:
        self.name = name
        self._sync = sync
        self._workers = workers
        self.queue: RateLimitingQueue[str] = queue if queue is not None else RateLimitingQueue(name)
        self._threads: list[threading.Thread] = []
        # Guards _threads against a start racing a stop; set once stop was called.
        self._lifecycle = threading.Lock()
        self._stopping = threading.Event()
        self._on_forbidden = on_forbidden
        self._on_programming_error = on_programming_error
        # key → the 403 message last reported for it (a key is synced by one worker at a time).
        self._forbidden: dict[str, str] = {}

    def enqueue(self, obj: dict[str, Any] | DeletedFinalStateUnknown) -> None:
        """Event-handler helper: enqueue the object's (or tombstone's) key."""
        self.queue.add(object_key(obj))

    def forget(self, key: str) -> None:
        """Drop what the controller remembers of ``key`` (its object is gone)."""
        self._forbidden.pop(key, None)

    def start(self) -> None:
        """Start the worker threads (call only once the controller's caches have synced); a no-op
        once ``stop`` was called."""
        with self._lifecycle:
            if self._stopping.is_set():
                return
            for index in range(self._workers):
                thread = threading.Thread(target=self._run_worker, name=f"{self.name}-worker-{index}", daemon=True)
                thread.start()
                self._threads.append(thread)
        log.info("controller started", controller=self.name, workers=self._workers)

    def stop(self) -> None:
        """Hand out no more keys: each worker finishes the key it holds, then exits. Returns at once."""
        with self._lifecycle:
            self._stopping.set()
        self.queue.shutdown()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the workers to exit, ``timeout`` real seconds at most for all of them together
        (``None``: no limit); return whether every worker has exited."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lifecycle:
            threads = list(self._threads)
        for thread in threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in threads)

    def shutdown(self, timeout: float | None = None) -> bool:
        """``stop``, then ``join`` within ``timeout``; return whether every worker has exited."""
        self.stop()
        return self.join(timeout)

    def _run_worker(self) -> None:
        while self.process_next_item():
            pass

    def process_next_item(self) -> bool:
        """Take one key, sync it, and decide whether to requeue; False once stopped."""
        if self._stopping.is_set():
            return False
        key, shutting_down = self.queue.get()
        if shutting_down or key is None:
            return False
        if self._stopping.is_set():  # stopped while this worker waited: leave the key
            self.queue.done(key)
            return False
        try:
            self._sync(key)
        except PermanentError as exc:
            log.warning("sync failed permanently; not retrying", controller=self.name, key=key, error=str(exc))
            self.queue.forget(key)
        except Exception as exc:  # noqa: BLE001 - any other failure is retried (see the module docstring)
            retries = self.queue.num_requeues(key)
            if isinstance(exc, PROGRAMMING_ERRORS) and not isinstance(exc, ApiError):
                self._programming_error(key, exc, retries)
            elif isinstance(exc, ApiError) and exc.status == 403:
                self._report_forbidden(key, exc, retries)
                self.queue.add_rate_limited(key)
            else:
                log.warning("sync failed; will retry", controller=self.name, key=key, error=str(exc), retries=retries)
                self.queue.add_rate_limited(key)
        else:
            self._forbidden.pop(key, None)
            self.queue.forget(key)
        finally:
            self.queue.done(key)
        return True

    def _programming_error(self, key: str, error: Exception, retries: int) -> None:
        if retries < MAX_PROGRAMMING_RETRIES:
            log.warning("sync failed unexpectedly; will retry", controller=self.name, key=key, error=repr(error),
                        retries=retries)  # fmt: skip
            self.queue.add_rate_limited(key)
            return
        log.error("sync keeps failing unexpectedly; dropping the key until its object changes", controller=self.name,
                  key=key, error=repr(error), retries=retries, exc_info=error)  # fmt: skip
        self.queue.forget(key)
        if self._on_programming_error is not None:
            try:
                self._on_programming_error(key, error)
            except Exception as exc:  # noqa: BLE001 - reporting must never stop the worker
                log.warning("could not report a failing sync", controller=self.name, key=key, error=repr(exc))

    def _report_forbidden(self, key: str, error: ApiError, retries: int) -> None:
        log.error("sync forbidden by the API server (RBAC): grant the permission; will retry",
                  controller=self.name, key=key, error=error.message or str(error), retries=retries)  # fmt: skip
        if self._on_forbidden is not None and self._forbidden.get(key) != error.message:
            self._forbidden[key] = error.message
            try:
                self._on_forbidden(key, error)
            except Exception as exc:  # noqa: BLE001 - reporting must never stop the worker
                log.warning("could not report a forbidden sync", controller=self.name, key=key, error=repr(exc))
