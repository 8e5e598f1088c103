"""A thread pool whose threads never hold up the process's exit.

``concurrent.futures.ThreadPoolExecutor`` joins its threads at interpreter exit, so a health check
still running (up to ``healthChecks.timeout``, 10 minutes by default) would hold up the exit after
SIGTERM's drain for as long as it lasts, past the Deployment's grace period, until the kubelet's
SIGKILL. Checks only read, and the next leader runs them again: they may die with the process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any


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
