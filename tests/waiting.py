"""Waiting for another thread in a test, without sleeping for a guessed time."""

from __future__ import annotations

import time
from collections.abc import Callable

# Real seconds a test lets another thread take to catch up: a guard against a hang, never a
# timing assertion (the threads of a unit test catch up within milliseconds).
JOIN_TIMEOUT = 5.0


def wait_until(predicate: Callable[[], object], timeout: float = JOIN_TIMEOUT) -> None:
    """Poll ``predicate`` in 1 ms steps; AssertionError if it is still false after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for another thread")
        time.sleep(0.001)
