"""The controllers' workqueue, mirroring client-go's ``util/workqueue``.

Three layers, each a subclass of the one before (as client-go composes them):

``WorkQueue``
    A FIFO of hashable keys (``"namespace/name"``) with a ``dirty`` set (keys waiting to be
    processed) and a ``processing`` set (keys handed out by ``get`` and not yet ``done``).
    Guarantees:

    - a key is never handed to two workers at once;
    - ``add`` of a key that is already waiting is a no-op (keys are deduplicated, so a burst of
      events for one object costs one reconcile);
    - a key added while it is being processed is queued again when its worker calls ``done``,
      so the change that caused the add is never lost;
    - keys come out in the order they were first added;
    - after ``shutdown`` adds are ignored, workers still get the keys already queued, and ``get``
      returns ``(None, True)`` once the queue is empty; ``shutdown_with_drain`` also waits until
      every key handed out has been ``done``.

    Every key returned by ``get`` must be given back with ``done``, whatever the outcome.

``DelayingQueue``
    Adds ``add_after(key, delay)``: the key is added once the injected clock reaches its ready
    time. Waiting keys are kept in a heap, the earliest ready time first; re-adding a waiting key
    keeps the earlier of its two ready times. A background thread moves ready keys into the
    queue; it stops (and waiting keys are dropped) on shutdown.

``RateLimitingQueue``
    Adds ``add_rate_limited(key)``, which delays the key by what its rate limiter says, and
    ``forget(key)``, which clears the key's failure history once it succeeded. The default
    limiter is client-go's: the larger of a per-key exponential backoff and an overall token
    bucket (see ``default_controller_rate_limiter``).

A named queue (one name per controller: names are metric label values, so they must stay few and
fixed) exports client-go's workqueue metrics, prefixed ``lazarus_workqueue_`` and labelled by
``name``. Every time is read from the injected ``lazarus.clock.Clock``.
"""

from __future__ import annotations

import heapq
import itertools
import re
import threading
from collections import deque
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from lazarus.clock import Clock, RealClock

__all__ = [
    "DEFAULT_BASE_DELAY",
    "DEFAULT_BURST",
    "DEFAULT_MAX_DELAY",
    "DEFAULT_QPS",
    "BucketRateLimiter",
    "DelayingQueue",
    "ItemExponentialFailureRateLimiter",
    "MaxOfRateLimiter",
    "RateLimiter",
    "RateLimitingQueue",
    "WorkQueue",
    "WorkQueueMetrics",
    "default_controller_rate_limiter",
    "default_metrics",
]

T = TypeVar("T", bound=Hashable)

# client-go's DefaultControllerRateLimiter, per key: the first retry after 5 ms (a conflict or a
# cache not yet caught up usually clears at once), doubling on each failure up to 1000 s (~17 min,
# reached after 18 failures), so a key that keeps failing costs about one attempt per 17 minutes.
DEFAULT_BASE_DELAY = 0.005
DEFAULT_MAX_DELAY = 1000.0
# client-go's DefaultControllerRateLimiter, overall: retries of all keys together pass a token
# bucket of 10 per second with a burst of 100, so a mass failure (API server down, every key
# failing) cannot turn into a retry storm against the API server.
DEFAULT_QPS = 10.0
DEFAULT_BURST = 100

# client-go's workqueue latency buckets: prometheus.ExponentialBuckets(10e-9, 10, 10).
_DURATION_BUCKETS = (1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
# Queue names are label values: short fixed identifiers, one per controller (never a key).
_QUEUE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,62}")


# --------------------------------------------------------------------------------------------
# Metrics


class WorkQueueMetrics:
    """The Prometheus metrics of all named queues, registered once in one registry.

    Production code uses the shared ``default_metrics()``; tests construct their own with a
    fresh ``CollectorRegistry``.
    """

    def __init__(self, registry: CollectorRegistry | None = REGISTRY) -> None:
        """Create the metrics and register them in ``registry`` (``None``: do not register)."""
        labels = ["name"]
        self.depth = Gauge(
            "lazarus_workqueue_depth", "Current depth of the workqueue.", labels, registry=registry
        )
        self.adds = Counter(
            "lazarus_workqueue_adds_total",
            "Total number of adds handled by the workqueue.",
            labels,
            registry=registry,
        )
        self.queue_duration = Histogram(
            "lazarus_workqueue_queue_duration_seconds",
            "How long in seconds an item stays in the workqueue before being requested.",
            labels,
            buckets=_DURATION_BUCKETS,
            registry=registry,
        )
        self.work_duration = Histogram(
            "lazarus_workqueue_work_duration_seconds",
            "How long in seconds processing an item from the workqueue takes.",
            labels,
            buckets=_DURATION_BUCKETS,
            registry=registry,
        )
        self.unfinished_work = Gauge(
            "lazarus_workqueue_unfinished_work_seconds",
            "How many seconds of work has been done that is in progress and has not been "
            "observed by work_duration. Large values indicate stuck workers.",
            labels,
            registry=registry,
        )
        self.longest_running_processor = Gauge(
            "lazarus_workqueue_longest_running_processor_seconds",
            "How many seconds the longest running processor of the workqueue has been running.",
            labels,
            registry=registry,
        )
        self.retries = Counter(
            "lazarus_workqueue_retries_total",
            "Total number of retries (rate-limited adds) handled by the workqueue.",
            labels,
            registry=registry,
        )


_default_metrics: WorkQueueMetrics | None = None
_default_metrics_lock = threading.Lock()


def default_metrics() -> WorkQueueMetrics:
    """Return the shared metrics registered in prometheus_client's default ``REGISTRY``."""
    global _default_metrics
    with _default_metrics_lock:
        if _default_metrics is None:
            _default_metrics = WorkQueueMetrics(REGISTRY)
        return _default_metrics


class _QueueMetrics:
    """One queue's metric hooks; this base records nothing (an unnamed queue)."""

    def add(self, item: Hashable, depth: int) -> None:
        """Record an accepted add."""

    def get(self, item: Hashable, depth: int) -> None:
        """Record a key handed to a worker."""

    def done(self, item: Hashable) -> None:
        """Record the end of a key's processing."""

    def retry(self) -> None:
        """Record a rate-limited add."""


class _PrometheusQueueMetrics(_QueueMetrics):
    """One named queue's metrics (client-go's defaultQueueMetrics); called under the queue lock."""

    def __init__(self, metrics: WorkQueueMetrics, name: str, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()  # the scrape thread reads the start times too
        self._add_times: dict[Hashable, float] = {}
        self._processing_start_times: dict[Hashable, float] = {}
        self._depth = metrics.depth.labels(name)
        self._adds = metrics.adds.labels(name)
        self._queue_duration = metrics.queue_duration.labels(name)
        self._work_duration = metrics.work_duration.labels(name)
        self._retries = metrics.retries.labels(name)
        # A queue of the same name made again (after a restart) takes the series over.
        self._depth.set(0)
        metrics.unfinished_work.labels(name).set_function(self._unfinished_work)
        metrics.longest_running_processor.labels(name).set_function(self._longest_running)

    def add(self, item: Hashable, depth: int) -> None:
        self._adds.inc()
        self._depth.set(depth)
        with self._lock:
            self._add_times.setdefault(item, self._clock.now())

    def get(self, item: Hashable, depth: int) -> None:
        self._depth.set(depth)
        now = self._clock.now()
        with self._lock:
            self._processing_start_times[item] = now
            added = self._add_times.pop(item, None)
        if added is not None:
            self._queue_duration.observe(now - added)

    def done(self, item: Hashable) -> None:
        with self._lock:
            started = self._processing_start_times.pop(item, None)
        if started is not None:
            self._work_duration.observe(self._clock.now() - started)

    def retry(self) -> None:
        self._retries.inc()

    def _ages(self) -> list[float]:
        now = self._clock.now()
        with self._lock:
            return [now - started for started in self._processing_start_times.values()]

    def _unfinished_work(self) -> float:
        return sum(self._ages())

    def _longest_running(self) -> float:
        return max(self._ages(), default=0.0)


def _queue_metrics(
    name: str | None, clock: Clock, metrics: WorkQueueMetrics | None
) -> _QueueMetrics:
    if name is None:
        return _QueueMetrics()
    if not _QUEUE_NAME.fullmatch(name):
        raise ValueError(f"workqueue name {name!r} must match {_QUEUE_NAME.pattern}")
    return _PrometheusQueueMetrics(metrics or default_metrics(), name, clock)


# --------------------------------------------------------------------------------------------
# Queues


class WorkQueue(Generic[T]):
    """FIFO of keys with client-go's dirty/processing semantics (see the module docstring)."""

    def __init__(
        self,
        name: str | None = None,
        *,
        clock: Clock | None = None,
        metrics: WorkQueueMetrics | None = None,
    ) -> None:
        """Create a queue; a ``name`` (one per controller) turns its metrics on."""
        self.name = name
        self._clock: Clock = clock if clock is not None else RealClock()
        self._metrics = _queue_metrics(name, self._clock, metrics)
        self._cond = threading.Condition()
        self._queue: deque[T] = deque()
        self._dirty: set[T] = set()
        self._processing: set[T] = set()
        self._shutting_down = False
        self._drain = False

    def add(self, item: T) -> None:
        """Queue ``item`` unless already waiting; if it is being processed, queue it on ``done``."""
        with self._cond:
            if self._shutting_down or item in self._dirty:
                return
            self._dirty.add(item)
            self._metrics.add(item, len(self._dirty))
            if item in self._processing:
                return
            self._queue.append(item)
            self._cond.notify()

    def get(self) -> tuple[T | None, bool]:
        """Block until a key is available: ``(key, False)``, or ``(None, True)`` at shutdown."""
        with self._cond:
            while not self._queue and not self._shutting_down:
                self._cond.wait()
            if not self._queue:
                return None, True
            item = self._queue.popleft()
            self._processing.add(item)
            self._dirty.discard(item)
            self._metrics.get(item, len(self._dirty))
            return item, False

    def done(self, item: T) -> None:
        """Mark ``item`` processed; if it was added meanwhile, queue it again."""
        with self._cond:
            if item not in self._processing:
                return  # not handed out: queueing it again could give it to two workers
            self._metrics.done(item)
            self._processing.discard(item)
            if item in self._dirty:
                self._queue.append(item)
                self._cond.notify()
            elif not self._processing:
                self._cond.notify_all()  # wakes shutdown_with_drain

    def len(self) -> int:
        """Return the number of keys queued (not counting keys being processed)."""
        with self._cond:
            return len(self._queue)

    def shutdown(self) -> None:
        """Stop accepting adds; workers drain the queued keys, then ``get`` reports shutdown."""
        with self._cond:
            self._drain = False
            self._shutting_down = True
            self._cond.notify_all()

    def shutdown_with_drain(self) -> None:
        """Like ``shutdown``, then wait until every key handed out is ``done``.

        Never call it from a worker holding a key (it would wait for itself). A concurrent plain
        ``shutdown`` ends the wait.
        """
        with self._cond:
            self._drain = True
            self._shutting_down = True
            self._cond.notify_all()
            while self._processing and self._drain:
                self._cond.wait()

    def shutting_down(self) -> bool:
        """Return whether ``shutdown`` or ``shutdown_with_drain`` was called."""
        with self._cond:
            return self._shutting_down


class DelayingQueue(WorkQueue[T]):
    """A ``WorkQueue`` that can add a key after a delay (see the module docstring)."""

    def __init__(
        self,
        name: str | None = None,
        *,
        clock: Clock | None = None,
        metrics: WorkQueueMetrics | None = None,
    ) -> None:
        """Create the queue and start its waiting thread."""
        super().__init__(name, clock=clock, metrics=metrics)
        # Its own condition: the waiting thread must not take wake-ups meant for ``get``.
        self._delay_cond = threading.Condition()
        self._heap: list[tuple[float, int, T]] = []  # (ready_at, seq, item); seq keeps FIFO ties
        self._waiting: dict[T, tuple[float, int]] = {}  # item -> its live heap entry
        self._seq = itertools.count()
        self._stopped = False
        self._thread = threading.Thread(
            target=self._wait_loop, name=f"workqueue-{name or 'unnamed'}-delay", daemon=True
        )
        self._thread.start()

    def add_after(self, item: T, delay: float) -> None:
        """Add ``item`` once ``delay`` seconds have passed (at once if ``delay <= 0``)."""
        if self.shutting_down():
            return
        if delay <= 0:
            self.add(item)
            return
        with self._delay_cond:
            if self._stopped:
                return
            ready_at = self._clock.now() + delay
            known = self._waiting.get(item)
            if known is not None and known[0] <= ready_at:
                return  # already waiting with an earlier ready time
            # A replaced entry stays in the heap and is skipped: it no longer matches _waiting.
            entry = (ready_at, next(self._seq))
            self._waiting[item] = entry
            heapq.heappush(self._heap, (*entry, item))
            self._delay_cond.notify()

    def shutdown(self) -> None:
        """Shut the queue down and stop the waiting thread (waiting keys are dropped)."""
        super().shutdown()
        self._stop_waiting()

    def shutdown_with_drain(self) -> None:
        """Stop the waiting thread, then shut down with drain (see ``WorkQueue``)."""
        self._stop_waiting()
        super().shutdown_with_drain()

    def _stop_waiting(self) -> None:
        with self._delay_cond:
            self._stopped = True
            self._heap.clear()
            self._waiting.clear()
            self._delay_cond.notify_all()

    def _wait_loop(self) -> None:
        while True:
            ready: list[T] = []
            with self._delay_cond:
                if self._stopped:
                    return
                now = self._clock.now()
                while self._heap:
                    ready_at, seq, item = self._heap[0]
                    live = self._waiting.get(item) == (ready_at, seq)
                    if live and ready_at > now:
                        break
                    heapq.heappop(self._heap)
                    if live:
                        del self._waiting[item]
                        ready.append(item)
                if not ready:
                    deadline = self._heap[0][0] if self._heap else None
                    self._clock.wait(self._delay_cond, deadline)
                    continue
            for item in ready:  # outside the delay lock: add takes the queue lock
                self.add(item)


# --------------------------------------------------------------------------------------------
# Rate limiters


class RateLimiter(Protocol):
    """How long to delay a key's retry (client-go's ``RateLimiter``)."""

    def when(self, item: Hashable) -> float:
        """Record one more failure of ``item`` and return the seconds to wait before retrying."""
        ...

    def forget(self, item: Hashable) -> None:
        """Clear ``item``'s failure history (it succeeded, or was given up on)."""
        ...

    def num_requeues(self, item: Hashable) -> int:
        """Return how many failures of ``item`` are on record."""
        ...


class ItemExponentialFailureRateLimiter:
    """Per-key backoff: ``base * 2**failures``, capped at ``max``."""

    def __init__(self, base: float = DEFAULT_BASE_DELAY, max: float = DEFAULT_MAX_DELAY) -> None:
        """Back off from ``base`` seconds, doubling per failure, up to ``max`` seconds."""
        self._base = base
        self._max = max
        self._lock = threading.Lock()
        self._failures: dict[Hashable, int] = {}

    def when(self, item: Hashable) -> float:
        """Return ``base * 2**failures`` (capped) and count one more failure."""
        with self._lock:
            exp = self._failures.get(item, 0)
            self._failures[item] = exp + 1
        # 2.0**1024 overflows; by then any positive base is far beyond any sane cap.
        return min(self._base * 2.0 ** min(exp, 1023), self._max)

    def forget(self, item: Hashable) -> None:
        """Reset ``item``'s backoff."""
        with self._lock:
            self._failures.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        """Return ``item``'s failure count."""
        with self._lock:
            return self._failures.get(item, 0)


class BucketRateLimiter:
    """An overall token bucket shared by all keys (golang.org/x/time/rate ``Reserve`` semantics).

    The bucket starts full (``burst`` tokens) and refills at ``qps`` tokens per second. Each
    ``when`` takes a token at once, going into debt if none is left, and returns how long until
    that token exists: so ``when`` never refuses, and reservations are spaced ``1/qps`` apart.
    """

    def __init__(
        self, qps: float = DEFAULT_QPS, burst: int = DEFAULT_BURST, *, clock: Clock | None = None
    ) -> None:
        """Create a full bucket of ``burst`` tokens refilled at ``qps`` per second."""
        if qps <= 0 or burst < 1:
            raise ValueError("qps must be > 0 and burst >= 1")
        self._qps = qps
        self._burst = burst
        self._clock: Clock = clock if clock is not None else RealClock()
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._last: float | None = None

    def when(self, item: Hashable) -> float:
        """Reserve a token and return the seconds until it is available (0 if one is)."""
        with self._lock:
            now = self._clock.now()
            tokens = self._tokens
            if self._last is not None:
                tokens += max(0.0, now - self._last) * self._qps
            tokens = min(tokens, float(self._burst)) - 1.0
            self._tokens = tokens
            self._last = now
            return -tokens / self._qps if tokens < 0 else 0.0

    def forget(self, item: Hashable) -> None:
        """Do nothing: the bucket is not per key."""

    def num_requeues(self, item: Hashable) -> int:
        """Return 0: the bucket does not count per key."""
        return 0


class MaxOfRateLimiter:
    """The longest delay of several limiters (every limiter sees every call)."""

    def __init__(self, *limiters: RateLimiter) -> None:
        """Combine ``limiters``."""
        if not limiters:
            raise ValueError("MaxOfRateLimiter needs at least one limiter")
        self._limiters = limiters

    def when(self, item: Hashable) -> float:
        """Return the largest delay of all limiters."""
        return max([limiter.when(item) for limiter in self._limiters])

    def forget(self, item: Hashable) -> None:
        """Forget ``item`` in every limiter."""
        for limiter in self._limiters:
            limiter.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        """Return the largest count of all limiters."""
        return max(limiter.num_requeues(item) for limiter in self._limiters)


def default_controller_rate_limiter(clock: Clock | None = None) -> MaxOfRateLimiter:
    """Return client-go's default: max of per-key 5 ms..1000 s backoff and a 10 qps/100 bucket."""
    return MaxOfRateLimiter(
        ItemExponentialFailureRateLimiter(DEFAULT_BASE_DELAY, DEFAULT_MAX_DELAY),
        BucketRateLimiter(DEFAULT_QPS, DEFAULT_BURST, clock=clock),
    )


class RateLimitingQueue(DelayingQueue[T]):
    """A ``DelayingQueue`` whose retries are delayed by a ``RateLimiter``."""

    def __init__(
        self,
        name: str | None = None,
        *,
        rate_limiter: RateLimiter | None = None,
        clock: Clock | None = None,
        metrics: WorkQueueMetrics | None = None,
    ) -> None:
        """Create the queue; the limiter defaults to ``default_controller_rate_limiter(clock)``."""
        super().__init__(name, clock=clock, metrics=metrics)
        if rate_limiter is None:
            rate_limiter = default_controller_rate_limiter(self._clock)
        self._rate_limiter: RateLimiter = rate_limiter

    def add_rate_limited(self, item: T) -> None:
        """Add ``item`` after the delay its rate limiter gives (counted as a retry)."""
        if self.shutting_down():
            return
        self._metrics.retry()
        self.add_after(item, self._rate_limiter.when(item))

    def forget(self, item: T) -> None:
        """Clear ``item``'s failure history (call it once the key was processed successfully)."""
        self._rate_limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        """Return how many times ``item`` was rate-limited since it was last forgotten."""
        return self._rate_limiter.num_requeues(item)
