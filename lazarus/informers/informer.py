"""The shared informer: one reflector and one cache per query, feeding many event handlers.

Mirrors client-go's ``sharedIndexInformer``. Contract:

- ``start()`` runs three daemon threads: the reflector (list + watch into the cache), a
  dispatcher that calls the handlers, and (if ``resync_period`` > 0) a resync timer. ``stop()``
  stops them and joins them; an informer is started and stopped once.
- **Handlers run on the dispatcher thread, never on the watch thread**, one call at a time, in
  the order the cache changed: events for one informer are delivered in order, to each handler
  in registration order. The queue between the two threads is unbounded, so a slow handler
  delays its informer's later events but never the watch; handlers should only compute a key and
  put it on a workqueue (sample-controller style). A handler that raises is logged and the
  delivery goes on. Events still queued at ``stop()`` are dropped.
- ``on_add(obj)``, ``on_update(old, new)``, ``on_delete(obj)``. ``on_delete`` may be given a
  ``DeletedFinalStateUnknown`` tombstone instead of the object: the object vanished while the
  watch was down and a relist noticed (``store.object_key`` and ``store.final_object`` accept
  both). After a relist, objects still present arrive as updates (old, new) even when unchanged.
- A handler added while the informer already holds objects first gets an ``on_add`` for each
  cached object, then every later event, with nothing missed or repeated.
- **Resync**: every ``resync_period`` seconds (injected clock) each handler gets
  ``on_update(obj, obj)`` for every cached object, without any API call. ``is_resync(old, new)``
  tells such updates (and relist updates of unchanged objects) from real changes: the
  resourceVersion did not move.
- ``has_synced``: the first list is in the cache (controllers start workers only then);
  ``wait_for_cache_sync(timeout)`` blocks for it. Objects from ``store`` are read-only.
"""

from __future__ import annotations

import queue
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from lazarus.clock import Clock, RealClock
from lazarus.informers.reflector import Reflector
from lazarus.informers.resource import Query
from lazarus.informers.store import DeletedFinalStateUnknown, IndexFunc, Store
from lazarus.informers.transport import ListerWatcher, Obj

__all__ = ["DEFAULT_RESYNC_PERIOD", "STOP_JOIN_TIMEOUT", "EventHandler", "SharedInformer", "is_resync"]

log = structlog.get_logger(__name__)

# A safety net, not a trigger: once every 10 minutes every cached object is handed to the
# handlers again, so a key whose reconcile was lost (a bug, an error path that forgot to
# requeue) is retried. It costs no API request, only one cheap reconcile per object per period.
DEFAULT_RESYNC_PERIOD = 600.0
# How long stop() waits for each thread. The dispatcher finishes the handler call in progress; the
# reflector may be inside a LIST request that cannot be interrupted. Threads are daemons, so one
# that outlives this cannot keep the process alive.
STOP_JOIN_TIMEOUT = 5.0

OnAdd = Callable[[Obj], object]
OnUpdate = Callable[[Obj, Obj], object]
OnDelete = Callable[[Obj | DeletedFinalStateUnknown], object]


@dataclass(frozen=True, eq=False)
class EventHandler:
    """One registration's callbacks; any may be ``None`` (not interested)."""

    on_add: OnAdd | None = None
    on_update: OnUpdate | None = None
    on_delete: OnDelete | None = None


def is_resync(old: Obj, new: Obj) -> bool:
    """Whether an update carries no change: a resync, or a relist of an unchanged object."""
    return old is new or old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion")


_ADD, _UPDATE, _DELETE = "add", "update", "delete"


@dataclass(frozen=True)
class _Notification:
    targets: tuple[EventHandler, ...]
    """The handlers registered when the cache changed: a later handler learns of it by its adds."""
    kind: str
    args: tuple[Any, ...]


_STOP_DISPATCHING = _Notification((), "stop", ())


class _Distributor:
    """Applies the reflector's changes to the store and queues a notification for each.

    One lock orders cache changes, handler registration and resync, so the queue holds exactly
    the order in which the cache changed and what each handler must hear of it.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._handlers: tuple[EventHandler, ...] = ()
        self.queue: queue.SimpleQueue[_Notification] = queue.SimpleQueue()

    # The reflector's sink.

    def replace(self, items: list[Obj], resource_version: str) -> None:
        with self._lock:
            changes = self.store.replace(items, resource_version)
            for tombstone in changes.deleted:
                self._notify(self._handlers, _DELETE, tombstone)
            for old, new in changes.updated:
                self._notify(self._handlers, _UPDATE, old, new)
            for obj in changes.added:
                self._notify(self._handlers, _ADD, obj)

    def add(self, obj: Obj) -> None:
        with self._lock:
            old = self.store.add(obj)
            if old is None:
                self._notify(self._handlers, _ADD, obj)
            else:
                self._notify(self._handlers, _UPDATE, old, obj)

    update = add
    """An ``ADDED`` for a cached key is an update and a ``MODIFIED`` for an unknown key an add."""

    def delete(self, obj: Obj) -> None:
        with self._lock:
            self.store.delete(obj)
            self._notify(self._handlers, _DELETE, obj)

    # The informer's side.

    def add_handler(self, handler: EventHandler) -> None:
        with self._lock:
            self._handlers += (handler,)
            for obj in self.store.list():
                self._notify((handler,), _ADD, obj)

    def resync(self) -> None:
        with self._lock:
            for obj in self.store.list():
                self._notify(self._handlers, _UPDATE, obj, obj)

    def _notify(self, targets: tuple[EventHandler, ...], kind: str, *args: Any) -> None:
        if targets:
            self.queue.put(_Notification(targets, kind, args))


def _deliver(notification: _Notification) -> None:
    for handler in notification.targets:
        callback: Callable[..., object] | None = {
            _ADD: handler.on_add,
            _UPDATE: handler.on_update,
            _DELETE: handler.on_delete,
        }[notification.kind]
        if callback is None:
            continue
        try:
            callback(*notification.args)
        except Exception:
            log.exception("event handler failed", notification=notification.kind, handler=repr(callback))


class SharedInformer:
    """A cache of one query's objects, kept current by a reflector, with event handlers."""

    def __init__(
        self,
        query: Query,
        lister_watcher: ListerWatcher,
        *,
        resync_period: float = DEFAULT_RESYNC_PERIOD,
        indexers: Mapping[str, IndexFunc] | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """Inform about ``query`` using ``lister_watcher``; ``resync_period`` 0 turns resync off."""
        self.query = query
        self._clock: Clock = clock or RealClock()
        self._resync_period = resync_period
        self._distributor = _Distributor(Store(indexers))
        self._reflector = Reflector(query, lister_watcher, self._distributor, clock=self._clock, rng=rng)
        self._wake = threading.Condition()
        self._stopping = False
        self._threads: list[threading.Thread] = []

    @property
    def store(self) -> Store:
        """The cache (read-only objects: see ``store``). Fill it only through the informer."""
        return self._distributor.store

    @property
    def has_synced(self) -> bool:
        """Whether the first list is in the cache."""
        return self._reflector.has_synced

    @property
    def last_success(self) -> float | None:
        """Clock time of the reflector's last successful list, watch start or event."""
        return self._reflector.last_success

    def add_event_handler(
        self, on_add: OnAdd | None = None, on_update: OnUpdate | None = None, on_delete: OnDelete | None = None
    ) -> EventHandler:
        """Register callbacks (see the module docstring); return the registration."""
        handler = EventHandler(on_add, on_update, on_delete)
        self._distributor.add_handler(handler)
        return handler

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        """Register more store indexes by name (see ``Store.add_indexers``)."""
        self.store.add_indexers(indexers)

    def wait_for_cache_sync(self, timeout: float | None) -> bool:
        """Block up to ``timeout`` real seconds (``None``: no limit) for ``has_synced``; return it."""
        return self._reflector.wait_for_sync(timeout)

    def start(self) -> None:
        """Start the dispatcher, reflector and resync threads; a no-op if already started."""
        with self._wake:
            if self._threads:
                return
            name = f"informer {self.query}"
            targets: list[tuple[str, Callable[[], None]]] = [
                ("dispatch", self._dispatch),
                ("reflector", self._reflector.run),
            ]
            if self._resync_period > 0:
                targets.append(("resync", self._resync_loop))
            self._threads = [threading.Thread(target=run, name=f"{name} {role}", daemon=True) for role, run in targets]
            for thread in self._threads:
                thread.start()

    def stop(self) -> None:
        """Stop every thread and join them (each for at most ``STOP_JOIN_TIMEOUT``)."""
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        self._reflector.stop()
        self._distributor.queue.put(_STOP_DISPATCHING)
        for thread in self._threads:
            thread.join(STOP_JOIN_TIMEOUT)
            if thread.is_alive():
                log.warning("informer thread did not stop in time", thread=thread.name)

    def _dispatch(self) -> None:
        while True:
            notification = self._distributor.queue.get()
            if self._stopping:
                return
            _deliver(notification)

    def _resync_loop(self) -> None:
        with self._wake:
            deadline = self._clock.now() + self._resync_period
            while not self._stopping:
                self._clock.wait(self._wake, deadline)
                if self._stopping or self._clock.now() < deadline:
                    continue
                deadline = self._clock.now() + self._resync_period
                if self.has_synced:
                    self._distributor.resync()
