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

``RealClock`` is the production clock. Tests inject ``tests.fakeclock.FakeClock``, which only
moves when the test steps it (test doubles stay out of the production package).
"""

from __future__ import annotations

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
