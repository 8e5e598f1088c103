"""``FakeClock``: the ``lazarus.clock.Clock`` of unit tests (k8s.io/utils/clock/testing's idea).

Time stands still until a test calls ``step``. ``sleep`` and ``wait_event`` step the clock instead
of blocking, so code that sleeps runs at once and the test sees the time it slept. A step wakes
every thread parked in ``wait``, which is how a background thread (such as the delaying queue's)
learns that time moved; ``wait_for_waiters`` lets a test wait until such a thread has acted on a
step and parked again, instead of sleeping for real and hoping it has.
"""

from __future__ import annotations

import itertools
import threading

# Real seconds ``wait_for_waiters`` allows another thread to park: a guard against a hang, not a
# timing assertion (a thread that parks at all parks within microseconds).
PARK_TIMEOUT = 5.0


class FakeClock:
    """A clock for tests: time stands still until ``step`` moves it (see the module docstring)."""

    def __init__(self, start: float = 0.0) -> None:
        """Start the clock at ``start`` seconds."""
        # One condition guards the time and the waiters; it is notified when a thread parks.
        self._lock = threading.Condition()
        self._now = start
        self._tokens = itertools.count()
        self._waiters: dict[int, threading.Condition] = {}

    def now(self) -> float:
        """Return the fake time."""
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        """Advance the clock by ``seconds`` (see the module docstring)."""
        self.step(seconds)

    def wait_event(self, event: threading.Event, seconds: float) -> bool:
        """Like ``sleep`` (steps the clock) unless ``event`` is already set."""
        if not event.is_set():
            self.step(seconds)
        return event.is_set()

    def step(self, seconds: float) -> None:
        """Advance the clock and wake every thread parked in ``wait``."""
        with self._lock:
            self._now += seconds
            waiters = list(self._waiters.values())
            self._waiters.clear()
        # Outside our lock: a parked waiter holds its condition while it registers with us.
        for condition in waiters:
            with condition:
                condition.notify_all()

    def has_waiters(self) -> bool:
        """Return whether some thread is parked in ``wait`` (and has not been woken since)."""
        with self._lock:
            return bool(self._waiters)

    def wait_for_waiters(self, timeout: float = PARK_TIMEOUT) -> None:
        """Block until some thread is parked in ``wait``; AssertionError after ``timeout`` real seconds.

        After a ``step``, this returns once the woken thread has done what the step made due and
        parked again: the point at which a test may look at its effects.
        """
        with self._lock:
            if not self._lock.wait_for(lambda: bool(self._waiters), timeout):
                raise AssertionError("no thread parked on the fake clock in time")

    def wait(self, condition: threading.Condition, deadline: float | None) -> None:
        """Park on ``condition`` until it is notified or a ``step`` happens.

        No lost wake-up: the caller holds ``condition`` from registration until
        ``Condition.wait`` releases it, and ``step`` must take ``condition`` to notify.
        """
        with self._lock:
            if deadline is not None and self._now >= deadline:
                return
            token = next(self._tokens)
            self._waiters[token] = condition
            self._lock.notify_all()
        try:
            condition.wait()
        finally:
            with self._lock:
                self._waiters.pop(token, None)
