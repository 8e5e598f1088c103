"""The reflector: keeps a sink (a store) in step with the API server by LIST then WATCH.

Mirrors client-go's ``tools/cache.Reflector``. ``run()`` (on its own thread) loops until ``stop()``:

1. **List**, paginated (``limit`` 500, following ``continue``). If a continue token expires
   (410) mid-way, the list starts again from the first page. The items go to
   ``sink.replace(items, resourceVersion)`` in one piece; that makes the reflector synced.
2. **Watch** from the list's resourceVersion with bookmarks and a server-side timeout drawn
   from 5–10 minutes (random, so informers do not all re-watch at once); the client's read
   timeout sits a little above it (see ``transport``). ``ADDED``/``MODIFIED``/``DELETED`` go to
   ``sink.add``/``update``/``delete``; every event, bookmarks included, moves the resourceVersion.
3. A watch that **ends normally** (the server's timeout) is started again from the last seen
   resourceVersion, without a list.
4. **Expired** (410 Gone, as an HTTP status or as a watch ``ERROR`` event, or "too old resource
   version"): list again at once; the sink's ``replace`` turns objects that vanished in the gap
   into tombstones. A second expiry in a row without any event in between waits a backoff first.
5. **Other errors** wait a backoff (0.8 s doubling to 30 s, with jitter, reset after two healthy
   minutes: see ``backoff``), then: after a connection failure, a timeout, a 429 or a 5xx, watch
   again from the last resourceVersion (the server's history still covers it, or it answers 410);
   after another API error (403, 404, ...), list again. A watch that ends normally within a second
   without an event counts as an error, so a misbehaving server cannot make us spin.

Objects are prepared before they reach the sink: ``metadata.managedFields`` is removed (large and
useless to us) and ``kind``/``apiVersion``, which list items lack, are filled in from the
``Resource``. The sink receives them as the only reference: from then on they are read-only.

``stop()`` is prompt: it wakes a backoff wait and closes a live watch (so a blocked read returns).
A LIST already in flight is not interrupted; it ends within its read timeout.

Health: ``has_synced`` (the first list reached the sink; it stays true across relists) and
``last_success`` (clock time of the last successful list, watch start or watch event), for a
"watch stuck" health check.
"""

from __future__ import annotations

import random
import threading
from typing import Protocol

import structlog
from prometheus_client import Counter

from lazarus.clock import Clock, RealClock
from lazarus.informers.backoff import Backoff
from lazarus.informers.resource import Query
from lazarus.informers.transport import CONNECTION_ERRORS, ApiError, ListerWatcher, Obj, WatchEvent, WatchStream

__all__ = ["MIN_WATCH_DURATION", "MIN_WATCH_TIMEOUT", "PAGE_SIZE", "Reflector", "ReflectorSink", "WatchEndedTooSoon"]

log = structlog.get_logger(__name__)

# Informer health, per resource (a handful of resources: bounded labels). A relist after startup,
# or errors that keep growing, mean a cache that falls behind.
LISTS = Counter("lazarus_informer_lists_total", "Complete LISTs of a resource by its informers.", ["resource"])
WATCH_EVENTS = Counter(
    "lazarus_informer_watch_events_total", "Watch events received by informers.", ["resource", "type"]
)
ERRORS = Counter("lazarus_informer_errors_total", "Failed lists and watches of informers (retried).", ["resource"])

# client-go's page size: big enough that 10,000 objects take 20 requests, small enough that one
# page is a modest response for the API server and etcd.
PAGE_SIZE = 500
# client-go's minWatchTimeout: each watch asks the server to end it after 5–10 minutes (drawn at
# random). A watch that ends is renewed from the last resourceVersion, which costs one request;
# ending now and then re-balances connections across API servers and bounds how long a
# connection that silently died can go unnoticed (see transport.WATCH_READ_MARGIN).
MIN_WATCH_TIMEOUT = 300
# client-go: a watch that ends normally sooner than this without delivering an event is treated
# as a failure (and backed off), otherwise a server that closes watches at once would make us
# re-watch in a tight loop.
MIN_WATCH_DURATION = 1.0


class ReflectorSink(Protocol):
    """Where a reflector delivers what it lists and watches (a ``Store`` is one)."""

    def replace(self, items: list[Obj], resource_version: str) -> object:
        """Make the contents exactly ``items`` (a full list at ``resource_version``)."""
        ...

    def add(self, obj: Obj) -> object:
        """An object was added (``ADDED``)."""
        ...

    def update(self, obj: Obj) -> object:
        """An object was changed (``MODIFIED``)."""
        ...

    def delete(self, obj: Obj) -> object:
        """An object was deleted (``DELETED``; ``obj`` is its final state)."""
        ...


class WatchEndedTooSoon(Exception):
    """A watch ended normally within ``MIN_WATCH_DURATION`` without delivering any event."""


class _Stopped(Exception):
    """``stop()`` was called: unwind the loop."""


class Reflector:
    """Lists and watches one ``Query`` into a ``ReflectorSink`` (see the module docstring)."""

    def __init__(
        self,
        query: Query,
        lister_watcher: ListerWatcher,
        sink: ReflectorSink,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        page_size: int = PAGE_SIZE,
        min_watch_timeout: int = MIN_WATCH_TIMEOUT,
    ) -> None:
        """Reflect ``query`` (fetched with ``lister_watcher``) into ``sink``; nothing runs until ``run``."""
        self._query = query
        self._lw = lister_watcher
        self._sink = sink
        self._clock: Clock = clock or RealClock()
        self._rng = rng or random.Random()
        self._page_size = page_size
        self._min_watch_timeout = min_watch_timeout
        self._backoff = Backoff(self._clock, rng=self._rng)
        self._log = log.bind(query=str(query))
        self._metric_resource = f"{query.resource.plural}.{query.resource.group}".rstrip(".")
        self._stop = threading.Event()
        self._wake = threading.Condition()
        self._synced = threading.Event()
        self._stream_lock = threading.Lock()
        self._stream: WatchStream | None = None
        self._resource_version = ""
        self._last_success: float | None = None
        self._expired_in_a_row = 0

    @property
    def has_synced(self) -> bool:
        """Whether the first list has been delivered to the sink."""
        return self._synced.is_set()

    def wait_for_sync(self, timeout: float | None) -> bool:
        """Block up to ``timeout`` real seconds (``None``: no limit) for ``has_synced``; return it."""
        return self._synced.wait(timeout)

    @property
    def resource_version(self) -> str:
        """The last resourceVersion seen (from a list, an event or a bookmark)."""
        return self._resource_version

    @property
    def last_success(self) -> float | None:
        """Clock time of the last successful list, watch start or watch event (``None``: none yet)."""
        return self._last_success

    def run(self) -> None:
        """List and watch until ``stop()``; never raises (errors are logged and retried)."""
        relist = True
        while not self._stop.is_set():
            try:
                if relist:
                    self._list()
                    relist = False
                self._watch()
            except Exception as error:
                if self._stop.is_set():
                    break
                relist = relist or self._needs_relist(error)
                self._sleep(self._delay_after(error, relist))

    def stop(self) -> None:
        """Make ``run`` return promptly: wake a backoff wait and close the live watch."""
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        with self._stream_lock:
            stream = self._stream
        if stream is not None:
            stream.close()

    def _list(self) -> None:
        items: list[Obj] = []
        token: str | None = None
        while True:
            try:
                page = self._lw.list(self._query, limit=self._page_size, continue_token=token)
            except ApiError as error:
                if token is None or not error.expired:
                    raise
                self._log.info("list continue token expired: listing again from the start", error=str(error))
                items, token = [], None
                continue
            if self._stop.is_set():
                raise _Stopped
            items.extend(self._prepare(obj) for obj in page.items)
            if page.continue_token is None:
                break
            token = page.continue_token
        self._sink.replace(items, page.resource_version)
        LISTS.labels(self._metric_resource).inc()
        self._resource_version = page.resource_version
        self._last_success = self._clock.now()
        self._synced.set()
        self._log.debug("listed", objects=len(items), resource_version=page.resource_version)

    def _watch(self) -> None:
        timeout = int(self._min_watch_timeout * (1.0 + self._rng.random()))
        started = self._clock.now()
        stream = self._lw.watch(self._query, resource_version=self._resource_version, timeout_seconds=timeout)
        with self._stream_lock:
            self._stream = stream
        events = 0
        try:
            if self._stop.is_set():  # stop() ran before the stream was visible to it
                raise _Stopped
            self._last_success = self._clock.now()
            for event in stream:
                self._handle(event)
                events += 1
        finally:
            with self._stream_lock:
                self._stream = None
            stream.close()
        if self._stop.is_set():
            raise _Stopped
        if events == 0 and self._clock.now() - started < MIN_WATCH_DURATION:
            raise WatchEndedTooSoon(f"watch from resourceVersion {self._resource_version} ended at once")
        self._log.debug("watch ended", events=events, resource_version=self._resource_version)

    def _handle(self, event: WatchEvent) -> None:
        WATCH_EVENTS.labels(self._metric_resource, event.type).inc()
        if event.type == "ERROR":
            raise ApiError.from_status(event.object)
        if event.type == "ADDED":
            self._sink.add(self._prepare(event.object))
        elif event.type == "MODIFIED":
            self._sink.update(self._prepare(event.object))
        elif event.type == "DELETED":
            self._sink.delete(self._prepare(event.object))
        elif event.type != "BOOKMARK":
            self._log.warning("ignoring a watch event of unknown type", type=event.type)
            return
        resource_version = (event.object.get("metadata") or {}).get("resourceVersion")
        if resource_version:
            self._resource_version = resource_version
        self._last_success = self._clock.now()
        self._expired_in_a_row = 0

    def _prepare(self, obj: Obj) -> Obj:
        obj.setdefault("kind", self._query.resource.kind)
        obj.setdefault("apiVersion", self._query.resource.api_version)
        metadata = obj.get("metadata")
        if metadata:
            metadata.pop("managedFields", None)
        return obj

    @staticmethod
    def _needs_relist(error: Exception) -> bool:
        """Whether ``error`` means the cache can no longer be caught up by watching."""
        return isinstance(error, ApiError) and (error.expired or not error.transient)

    def _delay_after(self, error: Exception, relist: bool) -> float:
        """Log and count ``error``; return how long to wait before trying again."""
        ERRORS.labels(self._metric_resource).inc()
        if isinstance(error, ApiError) and error.expired:
            self._expired_in_a_row += 1
            if self._expired_in_a_row == 1:
                self._log.info("resourceVersion expired: listing again", error=str(error))
                return 0.0
        delay = self._backoff.next_delay()
        if isinstance(error, (ApiError, WatchEndedTooSoon, *CONNECTION_ERRORS)):
            self._log.warning("list/watch failed", error=repr(error), retry_in=round(delay, 2), relist=relist)
        else:  # not a failure of the server or the network: a bug, so show where
            self._log.error("list/watch failed unexpectedly", retry_in=round(delay, 2), relist=relist, exc_info=error)
        return delay

    def _sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of clock time, or less if ``stop()`` is called."""
        deadline = self._clock.now() + seconds
        with self._wake:
            while not self._stop.is_set() and self._clock.now() < deadline:
                self._clock.wait(self._wake, deadline)
