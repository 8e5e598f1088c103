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

A run starts only while ``may_start()`` says this replica holds the lease, asked when the run
is submitted and again when its thread starts (it may have waited for a free slot meanwhile): a
replica that is shutting down, or about to lose the lease, starts no check that the next leader
would run at the same time.

The pool's threads are daemon threads (``lazarus.daemonpool``), as are the runner's own, so a
check still running does not hold up the exit after SIGTERM's drain.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future

from lazarus.checks.runner import HealthCheckReport


class NotLeading(RuntimeError):
    """A check run was not started: this replica no longer holds the lease."""


class CheckRuns:
    """The running and finished check runs of tests, on ``executor``."""

    def __init__(
        self, executor: Executor, on_done: Callable[[str], None], may_start: Callable[[], bool]
    ) -> None:
        """``on_done(key)`` is called (on the pool's thread) when the run of ``key`` has finished;
        ``may_start()``: whether this replica may start a run now (leadership)."""
        self._executor = executor
        self._on_done = on_done
        self._may_start = may_start
        self._lock = threading.Lock()
        self._runs: dict[str, tuple[str, Future[HealthCheckReport]]] = {}

    def result(self, key: str, uid: str, run: Callable[[], HealthCheckReport]) -> HealthCheckReport | None:
        """The report of the finished run of test ``key``/``uid``, or None while it runs (started
        now if none was and ``may_start()``). A run that raised re-raises here, and is dropped:
        the retry starts anew."""

        def guarded() -> HealthCheckReport:
            if not self._may_start():
                raise NotLeading("the health checks were not started: this replica no longer holds the lease")
            return run()

        with self._lock:
            current = self._runs.get(key)
            if current is None or current[0] != uid:
                if not self._may_start():
                    return None  # the next leader runs them
                future = self._executor.submit(guarded)
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
