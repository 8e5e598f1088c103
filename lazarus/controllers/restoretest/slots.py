"""The ``--max-concurrent-tests`` slots, counted without trusting a lagging cache.

The cache shows a test Restoring only once the watch brings back the status PATCH that moved it
there. Counting active tests from the cache alone lets two workers, woken together when a slot
frees, both see it free. So an admitted test holds its slot here (client-go's "expectations")
from the moment it is admitted until the cache shows it past Pending, or it is released (its start
failed, or it was deleted). Only counting and reserving are under the lock: never any I/O.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable


class Slots:
    """Thread-safe reservations of admitted tests not yet seen active in the cache."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._admitted: set[str] = set()

    def take(self, key: str, active_in_cache: Iterable[str]) -> bool:
        """Reserve a slot for ``key``; False when every slot is taken."""
        active = set(active_in_cache)
        with self._lock:
            running = active | self._admitted
            if key not in running and len(running) >= self.limit:
                return False
            self._admitted.add(key)
            return True

    def running(self, active_in_cache: Iterable[str]) -> int:
        """How many tests hold a slot."""
        with self._lock:
            return len(set(active_in_cache) | self._admitted)

    def observed(self, key: str) -> None:
        """The cache shows ``key`` past Pending: it is counted from the cache from now on."""
        self.release(key)

    def release(self, key: str) -> bool:
        """``key`` no longer needs its reservation (start failed, or the test is gone); True if it
        held one."""
        with self._lock:
            held = key in self._admitted
            self._admitted.discard(key)
            return held
