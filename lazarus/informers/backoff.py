"""Exponential backoff with jitter and a reset after a healthy period (client-go's reflector backoff).

Contract: each ``next_delay()`` records a failure and returns how long to wait before retrying.
The n-th consecutive delay is ``min(maximum, initial * factor**n * (1 + jitter * r))`` with ``r``
uniform in ``[0, 1)``: the jitter spreads clients that failed together (e.g. every informer when
the API server restarts) so they do not retry in lockstep, and no wait ever exceeds ``maximum``.
When ``reset_after`` seconds have passed since the previous failure, the sequence starts again
from ``initial``: the connection was healthy for a while, so the next failure is a new incident.
Times come from the injected clock; the random source is injectable for tests.
"""

from __future__ import annotations

import random

from lazarus.clock import Clock

__all__ = [
    "BACKOFF_FACTOR",
    "BACKOFF_INITIAL",
    "BACKOFF_JITTER",
    "BACKOFF_MAX",
    "BACKOFF_RESET_AFTER",
    "Backoff",
]

# client-go's reflector defaults (NewExponentialBackoffManager(800ms, 30s, 2min, 2.0, 1.0)):
# the first retry after 0.8 s (a blip, e.g. one dropped connection, is over by then), doubling
# up to 30 s (an API server that is down for minutes costs two requests a minute per informer,
# and we notice its return within 30 s).
BACKOFF_INITIAL = 0.8
BACKOFF_MAX = 30.0
BACKOFF_FACTOR = 2.0
# Each delay is stretched by a random fraction of itself, up to 100 % (client-go's jitter 1.0).
BACKOFF_JITTER = 1.0
# Two healthy minutes and the next failure starts again from 0.8 s.
BACKOFF_RESET_AFTER = 120.0


class Backoff:
    """Delays for retrying after consecutive failures (see the module docstring)."""

    def __init__(
        self,
        clock: Clock,
        *,
        initial: float = BACKOFF_INITIAL,
        maximum: float = BACKOFF_MAX,
        factor: float = BACKOFF_FACTOR,
        jitter: float = BACKOFF_JITTER,
        reset_after: float = BACKOFF_RESET_AFTER,
        rng: random.Random | None = None,
    ) -> None:
        """Read time from ``clock``; ``rng`` (default: a fresh ``random.Random``) draws the jitter."""
        self._clock = clock
        self._initial = initial
        self._maximum = maximum
        self._factor = factor
        self._jitter = jitter
        self._reset_after = reset_after
        self._rng = rng or random.Random()
        self._base = initial
        self._last_failure: float | None = None

    def next_delay(self) -> float:
        """Record a failure now and return the seconds to wait before the next attempt."""
        now = self._clock.now()
        if self._last_failure is not None and now - self._last_failure >= self._reset_after:
            self._base = self._initial
        self._last_failure = now
        delay = min(self._maximum, self._base * (1.0 + self._jitter * self._rng.random()))
        self._base = min(self._maximum, self._base * self._factor)
        return delay
