"""Health checks run off the workers: a worker never waits minutes for a test's checks.

A check run can take up to ``healthChecks.timeout`` (10 minutes by default). Run on a worker, two
long runs would hold both workers and delay every other test's admission, timeout and cleanup.
So a sync of a Checking test starts its run on this pool and returns; the run's completion
requeues the key, and that sync takes the report. The report is kept until ``forget``: a sync
that fails after taking it (a conflict on the status write) takes the same report again rather
than running the checks again. Runs are keyed by test key and UID (a test deleted and recreated
under its name starts afresh); ``forget`` is called once the verdict is written and when the test
is deleted (a result still to come is then discarded). A run lost with the process is simply started again by
the next leader: checks only read, and a custom check's Job is adopted by name.

The pool's threads are daemon threads (``DaemonPool``): a ``concurrent.futures.ThreadPoolExecutor``
is joined at interpreter exit, so a check still running would hold up the exit after SIGTERM's
drain for as long as the check lasts, past the Deployment's grace period.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

from lazarus.checks.runner import HealthCheckReport


class DaemonPool(Executor):
    """Runs each submitted call on a daemon thread of its own, at most ``max_workers`` at once."""

    def __init__(self, max_workers: int, name: str) -> None:
        self._slots = threading.BoundedSemaphore(max_workers)
        self._name = name

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Start ``fn(*args, **kwargs)`` (it waits for a free slot); its Future."""
        future: Future[Any] = Future()

        def run() -> None:
            with self._slots:
                if not future.set_running_or_notify_cancel():
                    return
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:  # noqa: BLE001 - handed to whoever takes the result
                    future.set_exception(exc)

        threading.Thread(target=run, name=self._name, daemon=True).start()
        return future


class CheckRuns:
    """The running and finished check runs of tests, on ``executor``."""

    def __init__(self, executor: Executor, on_done: Callable[[str], None]) -> None:
        """``on_done(key)`` is called (on the pool's thread) when the run of ``key`` has finished."""
        self._executor = executor
        self._on_done = on_done
        self._lock = threading.Lock()
        self._runs: dict[str, tuple[str, Future[HealthCheckReport]]] = {}

    def result(self, key: str, uid: str, run: Callable[[], HealthCheckReport]) -> HealthCheckReport | None:
        """The report of the finished run of test ``key``/``uid``, or None while it runs (started
        now if none was). A run that raised re-raises here, and is dropped: the retry starts anew."""
        with self._lock:
            current = self._runs.get(key)
            if current is None or current[0] != uid:
                future = self._executor.submit(run)
                self._runs[key] = (uid, future)
                future.add_done_callback(lambda _f: self._on_done(key))
                return None
            future = current[1]
            if not future.done():
                return None
            if future.exception() is not None:
                del self._runs[key]
        return future.result()

    def forget(self, key: str) -> None:
        """Drop the run of ``key`` (its verdict is written, or its test is gone)."""
        with self._lock:
            self._runs.pop(key, None)
