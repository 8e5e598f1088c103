"""The shared informer factory: one informer (one watch, one cache) per query, however many users.

Mirrors client-go's ``SharedInformerFactory``. ``informer_for`` returns the same ``SharedInformer``
for the same resource, namespace and selectors, so two controllers that watch Backups share one
watch and one cache; each adds its own handlers. ``start()`` starts every informer created so
far that is not running yet (call it again after asking for more), ``wait_for_cache_sync`` waits
for all of them, ``stop()`` stops them all. Thread-safe.
"""

from __future__ import annotations

import threading
import time

from kubernetes import client

from lazarus.clock import Clock
from lazarus.informers.informer import DEFAULT_RESYNC_PERIOD, SharedInformer
from lazarus.informers.resource import Query, Resource
from lazarus.informers.transport import ListerWatcher, RestTransport

__all__ = ["SharedInformerFactory"]


class SharedInformerFactory:
    """Creates and shares informers that all use one transport and resync period."""

    def __init__(
        self, lister_watcher: ListerWatcher, *, resync_period: float = DEFAULT_RESYNC_PERIOD, clock: Clock | None = None
    ) -> None:
        """Build informers on ``lister_watcher`` (see ``for_api_client`` for the usual one)."""
        self._lister_watcher = lister_watcher
        self._resync_period = resync_period
        self._clock = clock
        self._lock = threading.Lock()
        self._informers: dict[Query, SharedInformer] = {}
        self._stopped = False

    @classmethod
    def for_api_client(
        cls, api_client: client.ApiClient, *, resync_period: float = DEFAULT_RESYNC_PERIOD
    ) -> SharedInformerFactory:
        """A factory whose informers list and watch through ``api_client``."""
        return cls(RestTransport(api_client), resync_period=resync_period)

    def informer_for(
        self,
        resource: Resource,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> SharedInformer:
        """The informer for this resource and scope, created on first use."""
        query = Query(resource, namespace, label_selector, field_selector)
        with self._lock:
            if self._stopped:
                raise RuntimeError("the informer factory has been stopped")
            informer = self._informers.get(query)
            if informer is None:
                informer = SharedInformer(
                    query, self._lister_watcher, resync_period=self._resync_period, clock=self._clock
                )
                self._informers[query] = informer
            return informer

    def informers(self) -> list[SharedInformer]:
        """Every informer created so far (e.g. for readiness and liveness checks)."""
        with self._lock:
            return list(self._informers.values())

    def start(self) -> None:
        """Start every informer not started yet."""
        for informer in self.informers():
            informer.start()

    def wait_for_cache_sync(self, timeout: float | None) -> bool:
        """Wait up to ``timeout`` real seconds in all (``None``: no limit) for every informer to sync."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for informer in self.informers():
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not informer.wait_for_cache_sync(remaining):
                return False
        return True

    def stop(self) -> None:
        """Stop every informer; the factory cannot be used afterwards."""
        with self._lock:
            self._stopped = True
        for informer in self.informers():
            informer.stop()
