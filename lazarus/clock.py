"""An injectable clock, so that time-driven code can be tested without real waiting.

Contract:

- ``now()`` is monotonic seconds (never wall-clock time: it must not jump when the system clock
  is set); only differences between two readings mean anything.
- ``sleep(seconds)`` blocks the caller for that much clock time.
- ``wait_event(event, seconds)`` sleeps like ``sleep`` but returns early (True) once ``event`` is
  set: how a loop that sleeps between attempts stays responsive to a stop signal.
- ``wait(condition, deadline)`` blocks on a ``threading.Condition`` the caller holds until the
  condition is notified or the clock reaches ``deadline`` (``None``: no deadline). It may return
  early, so callers re-check their state in a loop, as with ``Condition.wait``.

``RealClock`` is the production clock. ``FakeClock`` only moves when a test calls ``step``; a
step wakes every thread parked in ``FakeClock.wait``, which is how a background thread (such as
the delaying queue's) learns that time moved.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Protocol


class Clock(Protocol):
    """What time-driven code needs from a clock."""

    def now(self) -> float:
        """Return monotonic seconds."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds`` of clock time."""
        ...

    def wait_event(self, event: threading.Event, seconds: float) -> bool:
        """Sleep ``seconds`` or until ``event`` is set; return whether it is set."""
        ...

    def wait(self, condition: threading.Condition, deadline: float | None) -> None:
        """Wait on ``condition`` (held by the caller) until notified or ``now() >= deadline``."""
        ...


class RealClock:
    """The system's monotonic clock."""

    def now(self) -> float:
        """Return ``time.monotonic()``."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Sleep for real."""
        time.sleep(max(0.0, seconds))

    def wait_event(self, event: threading.Event, seconds: float) -> bool:
        """``event.wait`` with a real timeout."""
        return event.wait(max(0.0, seconds))

    def wait(self, condition: threading.Condition, deadline: float | None) -> None:
        """Wait on ``condition`` with a real timeout up to ``deadline``."""
        if deadline is None:
            condition.wait()
        else:
            condition.wait(max(0.0, deadline - time.monotonic()))


class FakeClock:
    """A clock for tests: time stands still until ``step`` moves it.

    ``sleep`` steps the clock instead of blocking (as k8s.io/utils/clock/testing does), so code that
    sleeps runs at once and the test sees the time it slept.
    """

    def __init__(self, start: float = 0.0) -> None:
        """Start the clock at ``start`` seconds."""
        self._lock = threading.Lock()
        self._now = start
        self._tokens = itertools.count()
        self._waiters: dict[int, threading.Condition] = {}

    def now(self) -> float:
        """Return the fake time."""
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        """Advance the clock by ``seconds`` (see the class docstring)."""
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
        try:
            condition.wait()
        finally:
            with self._lock:
                self._waiters.pop(token, None)
