"""Leader election on a ``coordination.k8s.io/v1`` Lease, mirroring client-go's leaderelection.

Contract:

- At most one ``LeaderElector`` holds the lease at a time, as far as the API server's optimistic
  concurrency (``resourceVersion`` on update) can tell. Leader election does not fence: a former
  leader may still be finishing a request when the next one starts, so every reconcile must be
  idempotent.
- Expiry is judged from the local monotonic clock: a candidate records *when it observed* the
  lease record change and takes over only after ``lease_duration`` of local time without a change.
  The holder's own timestamps are never compared with the local wall clock (clocks skew).
- The leader renews every ``retry_period``; a failed attempt (an API error, or a connection
  error or timeout: ``CONNECTION_ERRORS``) is retried every ``retry_period`` until
  ``renew_deadline`` (client-go's ``wait.PollImmediateUntil`` within the renew deadline). If no
  attempt succeeds by then the leader has lost the lease and ``on_stopped_leading`` runs at once
  (the process should exit: a clean restart is the only safe way to drop in-flight work).
- Every Lease request is bounded by what is left of its attempt's deadline (the renew deadline
  while leading), so a slow or half-open connection cannot keep a leader believing it leads
  after ``renew_deadline``, let alone after ``lease_duration``, when a follower may take over.
- ``on_started_leading`` runs on its own thread (as client-go starts it in a goroutine): however
  long it takes (e.g. waiting for caches), renewal goes on beside it.
- On a clean stop the leader releases the lease (empty holder, 1 s duration) so a follower takes
  over within one ``retry_period`` instead of a whole ``lease_duration`` — unless
  ``keep_lease_on_stop`` was called (work may still be running: the lease must expire instead).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from prometheus_client import Gauge

from lazarus.clock import Clock, RealClock
from lazarus.kube.client import CONNECTION_ERRORS, ApiError, Rest

log = structlog.get_logger(__name__)

# client-go's defaults (tools/leaderelection): a follower waits 15 s of silence before taking
# over; the leader gives up after 10 s without a successful renewal (so it stops before anyone
# else can start); every attempt is 2 s apart.
DEFAULT_LEASE_DURATION = 15.0
DEFAULT_RENEW_DEADLINE = 10.0
DEFAULT_RETRY_PERIOD = 2.0

# What one failed attempt on the Lease raises: the API server's refusal (a conflict, a 5xx) or no
# answer at all. Either is a failed attempt, retried; neither may end the elector.
_ATTEMPT_ERRORS: tuple[type[Exception], ...] = (ApiError, *CONNECTION_ERRORS)

IS_LEADER = Gauge("lazarus_leader_is_leader", "1 while this process holds the leader lease, else 0.", ["lease"])


@dataclass(frozen=True)
class LeaderElectionConfig:
    """Settings of one elector."""

    lease_namespace: str
    """Namespace of the Lease (the operator's own namespace)."""
    lease_name: str
    """Name of the Lease shared by every replica."""
    identity: str
    """This candidate's unique identity (pod name plus a random suffix)."""
    lease_duration: float = DEFAULT_LEASE_DURATION
    """Seconds a follower waits without seeing the record change before taking over."""
    renew_deadline: float = DEFAULT_RENEW_DEADLINE
    """Seconds the leader keeps retrying a renewal before it gives up leadership."""
    retry_period: float = DEFAULT_RETRY_PERIOD
    """Seconds between attempts to acquire or renew."""
    release_on_stop: bool = True
    """Release the lease on a clean stop so a follower takes over at once."""

    def __post_init__(self) -> None:
        if not self.lease_duration > self.renew_deadline > self.retry_period > 0:
            raise ValueError("need lease_duration > renew_deadline > retry_period > 0")


@dataclass(frozen=True)
class LeaseRecord:
    """The fields of a Lease's spec that leader election reads and writes."""

    holder_identity: str = ""
    lease_duration_seconds: int = 0
    acquire_time: str | None = None
    renew_time: str | None = None
    lease_transitions: int = 0

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> LeaseRecord:
        return cls(
            holder_identity=spec.get("holderIdentity") or "",
            lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=spec.get("acquireTime"),
            renew_time=spec.get("renewTime"),
            lease_transitions=int(spec.get("leaseTransitions") or 0),
        )

    def to_spec(self) -> dict[str, Any]:
        return {
            "holderIdentity": self.holder_identity,
            "leaseDurationSeconds": self.lease_duration_seconds,
            "acquireTime": self.acquire_time,
            "renewTime": self.renew_time,
            "leaseTransitions": self.lease_transitions,
        }


class LeaseLock(Protocol):
    """Storage of the election record; ``update`` must fail on a concurrent change.

    ``timeout`` bounds the whole request, in seconds; a request that does not finish in time
    raises one of ``CONNECTION_ERRORS``.
    """

    def get(self, *, timeout: float) -> LeaseRecord | None:
        """The current record, or None if the lease does not exist."""

    def create(self, record: LeaseRecord, *, timeout: float) -> None:
        """Create the lease; raise ``ApiError`` (409) if it exists."""

    def update(self, record: LeaseRecord, *, timeout: float) -> None:
        """Replace the record last read by ``get``; raise ``ApiError`` (409) on a conflict."""


@dataclass
class KubeLeaseLock:
    """A ``coordination.k8s.io/v1`` Lease read and written through plain REST calls."""

    rest: Rest
    namespace: str
    name: str
    _last: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def _path(self) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases"

    def get(self, *, timeout: float) -> LeaseRecord | None:
        try:
            self._last = self.rest.request("GET", f"{self._path}/{self.name}", timeout=timeout)
        except ApiError as exc:
            if exc.not_found:
                return None
            raise
        return LeaseRecord.from_spec(self._last.get("spec") or {})

    def create(self, record: LeaseRecord, *, timeout: float) -> None:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": record.to_spec(),
        }
        self._last = self.rest.request("POST", self._path, body=body, timeout=timeout)

    def update(self, record: LeaseRecord, *, timeout: float) -> None:
        if self._last is None:
            raise RuntimeError("update before get")
        body = dict(self._last)
        body["spec"] = record.to_spec()
        self._last = self.rest.request("PUT", f"{self._path}/{self.name}", body=body, timeout=timeout)


def _micro_time() -> str:
    """Now as a Kubernetes MicroTime string."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Runs the acquire → renew → release cycle of one candidate."""

    def __init__(
        self,
        config: LeaderElectionConfig,
        lock: LeaseLock,
        *,
        on_started_leading: Callable[[], None],
        on_stopped_leading: Callable[[], None],
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self._lock = lock
        self._on_started = on_started_leading
        self._on_stopped = on_stopped_leading
        self._clock = clock or RealClock()
        self._observed: LeaseRecord | None = None
        self._observed_at = 0.0
        self._leader = threading.Event()
        self._keep_lease = threading.Event()
        self._gauge = IS_LEADER.labels(lease=f"{config.lease_namespace}/{config.lease_name}")
        self._gauge.set(0)

    def is_leader(self) -> bool:
        """True while this candidate holds the lease."""
        return self._leader.is_set()

    def holds_lease(self) -> bool:
        """True while leading on a lease this candidate renewed less than ``renew_deadline`` ago.

        Asked before side effects: past the renew deadline this candidate is about to give up,
        and a follower may take the lease once it expires.
        """
        observed = self._observed
        return (
            self._leader.is_set()
            and observed is not None
            and observed.holder_identity == self.config.identity
            and self._clock.now() - self._observed_at < self.config.renew_deadline
        )

    def keep_lease_on_stop(self) -> None:
        """Do not release the lease when ``stop`` comes: followers wait for it to expire."""
        self._keep_lease.set()

    def run(self, stop: threading.Event) -> None:
        """Block until ``stop`` is set or leadership is lost.

        Starts ``on_started_leading`` on its own thread once the lease is acquired, and calls
        ``on_stopped_leading`` when leadership ends for any reason (lost, or ``stop`` while leading).
        """
        if not self._acquire(stop):
            return
        self._leader.set()
        self._gauge.set(1)
        log.info("leader election: acquired lease", identity=self.config.identity, lease=self.config.lease_name)
        try:
            threading.Thread(target=self._on_started, name="leader-election-started", daemon=True).start()
            self._renew(stop)
        finally:
            lost = not stop.is_set()
            self._leader.clear()
            self._gauge.set(0)
            if not lost and self.config.release_on_stop and not self._keep_lease.is_set():
                self.release()
            log.info("leader election: stopped leading", identity=self.config.identity, lost=lost)
            self._on_stopped()

    def _acquire(self, stop: threading.Event) -> bool:
        while not stop.is_set():
            if self._try_acquire_or_renew(self._clock.now() + self.config.renew_deadline):
                return True
            self._wait(stop, self.config.retry_period)
        return False

    def _renew(self, stop: threading.Event) -> None:
        """Renew every ``retry_period`` until ``stop``, or until no attempt succeeds within
        ``renew_deadline`` (client-go's ``renew``: ``wait.Until`` around ``PollImmediateUntil``)."""
        while not stop.is_set():
            if not self._poll_until(stop, self._clock.now() + self.config.renew_deadline):
                if not stop.is_set():
                    log.error("leader election: lease not renewed in time", renew_deadline=self.config.renew_deadline)
                return
            self._wait(stop, self.config.retry_period)

    def _poll_until(self, stop: threading.Event, deadline: float) -> bool:
        """Attempt at once, then every ``retry_period``, until one succeeds (True) or ``deadline``
        or ``stop`` comes (False). No attempt starts at or after ``deadline``."""
        while not stop.is_set() and self._clock.now() < deadline:
            if self._try_acquire_or_renew(deadline):
                return True
            self._wait(stop, min(self.config.retry_period, max(0.0, deadline - self._clock.now())))
        return False

    def _wait(self, stop: threading.Event, seconds: float) -> None:
        """Sleep on the injected clock, returning early when ``stop`` is set."""
        self._clock.wait_event(stop, seconds)

    def _remaining(self, deadline: float) -> float:
        """Seconds the next Lease request may take; ``TimeoutError`` once ``deadline`` has passed."""
        remaining = deadline - self._clock.now()
        if remaining <= 0:
            raise TimeoutError("leader election: the attempt's deadline passed")
        return remaining

    def _try_acquire_or_renew(self, deadline: float) -> bool:
        """One attempt, every request bounded by ``deadline``; False if it failed for any reason."""
        now = _micro_time()
        desired = LeaseRecord(
            holder_identity=self.config.identity,
            lease_duration_seconds=round(self.config.lease_duration),
            acquire_time=now,
            renew_time=now,
        )
        try:
            current = self._lock.get(timeout=self._remaining(deadline))
            if current is None:
                self._lock.create(desired, timeout=self._remaining(deadline))
                self._observe(desired)
                return True
            if current != self._observed:
                self._observe(current)
            held_by_other = current.holder_identity not in ("", self.config.identity)
            if held_by_other and self._observed_at + self.config.lease_duration > self._clock.now():
                return False
            if current.holder_identity == self.config.identity:
                desired = LeaseRecord(
                    holder_identity=desired.holder_identity,
                    lease_duration_seconds=desired.lease_duration_seconds,
                    acquire_time=current.acquire_time,
                    renew_time=now,
                    lease_transitions=current.lease_transitions,
                )
            else:
                desired = LeaseRecord(
                    holder_identity=desired.holder_identity,
                    lease_duration_seconds=desired.lease_duration_seconds,
                    acquire_time=now,
                    renew_time=now,
                    lease_transitions=current.lease_transitions + 1,
                )
            self._lock.update(desired, timeout=self._remaining(deadline))
        except _ATTEMPT_ERRORS as exc:
            log.warning("leader election: attempt failed", error=_describe(exc))
            return False
        self._observe(desired)
        return True

    def _observe(self, record: LeaseRecord) -> None:
        self._observed = record
        self._observed_at = self._clock.now()

    def release(self) -> None:
        """Give the lease up if this candidate still holds it (best effort, within ``renew_deadline``)."""
        deadline = self._clock.now() + self.config.renew_deadline
        try:
            current = self._lock.get(timeout=self._remaining(deadline))
            if current is None or current.holder_identity != self.config.identity:
                return
            now = _micro_time()
            self._lock.update(
                LeaseRecord(
                    holder_identity="",
                    lease_duration_seconds=1,
                    acquire_time=now,
                    renew_time=now,
                    lease_transitions=current.lease_transitions,
                ),
                timeout=self._remaining(deadline),
            )
            log.info("leader election: released lease", identity=self.config.identity)
        except _ATTEMPT_ERRORS as exc:
            log.warning("leader election: could not release lease", error=_describe(exc))


def _describe(exc: Exception) -> str:
    """A log line's account of a failed request: the API server's status, or the connection error."""
    return str(exc) if isinstance(exc, ApiError) else f"{type(exc).__name__}: {exc}"
