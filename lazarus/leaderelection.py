"""Leader election on a ``coordination.k8s.io/v1`` Lease, mirroring client-go's leaderelection.

Contract:

- At most one ``LeaderElector`` holds the lease at a time, as far as the API server's optimistic
  concurrency (``resourceVersion`` on update) can tell. Leader election does not fence: a former
  leader may still be finishing a request when the next one starts, so every reconcile must be
  idempotent.
- Expiry is judged from the local monotonic clock: a candidate records *when it observed* the
  lease record change and takes over only after ``lease_duration`` of local time without a change.
  The holder's own timestamps are never compared with the local wall clock (clocks skew).
- The leader renews every ``retry_period``; if it cannot renew for ``renew_deadline`` it has lost
  the lease and ``on_stopped_leading`` runs at once (the process should exit: a clean restart is
  the only safe way to drop in-flight work).
- On a clean stop the leader releases the lease (empty holder, 1 s duration) so a follower takes
  over within one ``retry_period`` instead of a whole ``lease_duration``.
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
from lazarus.kube.client import ApiError, Rest

log = structlog.get_logger(__name__)

# client-go's defaults (tools/leaderelection): a follower waits 15 s of silence before taking
# over; the leader gives up after 10 s without a successful renewal (so it stops before anyone
# else can start); every attempt is 2 s apart.
DEFAULT_LEASE_DURATION = 15.0
DEFAULT_RENEW_DEADLINE = 10.0
DEFAULT_RETRY_PERIOD = 2.0

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
    """Storage of the election record; ``update`` must fail on a concurrent change."""

    def get(self) -> LeaseRecord | None:
        """The current record, or None if the lease does not exist."""

    def create(self, record: LeaseRecord) -> None:
        """Create the lease; raise ``ApiError`` (409) if it exists."""

    def update(self, record: LeaseRecord) -> None:
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

    def get(self) -> LeaseRecord | None:
        try:
            self._last = self.rest.request("GET", f"{self._path}/{self.name}")
        except ApiError as exc:
            if exc.not_found:
                return None
            raise
        return LeaseRecord.from_spec(self._last.get("spec") or {})

    def create(self, record: LeaseRecord) -> None:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": record.to_spec(),
        }
        self._last = self.rest.request("POST", self._path, body=body)

    def update(self, record: LeaseRecord) -> None:
        if self._last is None:
            raise RuntimeError("update before get")
        body = dict(self._last)
        body["spec"] = record.to_spec()
        self._last = self.rest.request("PUT", f"{self._path}/{self.name}", body=body)


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
        self._gauge = IS_LEADER.labels(lease=f"{config.lease_namespace}/{config.lease_name}")
        self._gauge.set(0)

    def is_leader(self) -> bool:
        """True while this candidate holds the lease."""
        return self._leader.is_set()

    def run(self, stop: threading.Event) -> None:
        """Block until ``stop`` is set or leadership is lost.

        Calls ``on_started_leading`` once the lease is acquired and ``on_stopped_leading`` when
        leadership ends for any reason (lost, or ``stop`` while leading).
        """
        if not self._acquire(stop):
            return
        self._leader.set()
        self._gauge.set(1)
        log.info("leader election: acquired lease", identity=self.config.identity, lease=self.config.lease_name)
        try:
            self._on_started()
            self._renew(stop)
        finally:
            lost = not stop.is_set()
            self._leader.clear()
            self._gauge.set(0)
            if not lost and self.config.release_on_stop:
                self.release()
            log.info("leader election: stopped leading", identity=self.config.identity, lost=lost)
            self._on_stopped()

    def _acquire(self, stop: threading.Event) -> bool:
        while not stop.is_set():
            if self._try_acquire_or_renew():
                return True
            self._wait(stop, self.config.retry_period)
        return False

    def _renew(self, stop: threading.Event) -> None:
        while not stop.is_set():
            deadline = self._clock.now() + self.config.renew_deadline
            while not self._try_acquire_or_renew():
                if stop.is_set():
                    return
                if self._clock.now() >= deadline:
                    log.error("leader election: lease not renewed in time", renew_deadline=self.config.renew_deadline)
                    return
                self._wait(stop, self.config.retry_period)
            self._wait(stop, self.config.retry_period)

    def _wait(self, stop: threading.Event, seconds: float) -> None:
        """Sleep on the injected clock, returning early when ``stop`` is set."""
        self._clock.wait_event(stop, seconds)

    def _try_acquire_or_renew(self) -> bool:
        now = _micro_time()
        desired = LeaseRecord(
            holder_identity=self.config.identity,
            lease_duration_seconds=round(self.config.lease_duration),
            acquire_time=now,
            renew_time=now,
        )
        try:
            current = self._lock.get()
            if current is None:
                self._lock.create(desired)
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
            self._lock.update(desired)
        except ApiError as exc:
            log.warning("leader election: attempt failed", status=exc.status, error=str(exc))
            return False
        self._observe(desired)
        return True

    def _observe(self, record: LeaseRecord) -> None:
        self._observed = record
        self._observed_at = self._clock.now()

    def release(self) -> None:
        """Give the lease up if this candidate still holds it (best effort)."""
        try:
            current = self._lock.get()
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
                )
            )
            log.info("leader election: released lease", identity=self.config.identity)
        except ApiError as exc:
            log.warning("leader election: could not release lease", status=exc.status, error=str(exc))
