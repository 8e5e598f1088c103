"""Leader election logic against an in-memory Lease with the API server's optimistic concurrency."""

from __future__ import annotations

import threading

import pytest

from lazarus.kube.client import ApiError
from lazarus.leaderelection import LeaderElectionConfig, LeaderElector, LeaseRecord
from tests.fakeclock import FakeClock


class MemoryLease:
    """A Lease store: ``update`` fails with 409 if the record changed since this client's ``get``."""

    def __init__(self) -> None:
        self.record: LeaseRecord | None = None
        self.version = 0
        self.fail_updates = False

    def client(self) -> MemoryLeaseClient:
        return MemoryLeaseClient(self)


class MemoryLeaseClient:
    def __init__(self, store: MemoryLease) -> None:
        self.store = store
        self.read_version = -1

    def get(self) -> LeaseRecord | None:
        self.read_version = self.store.version
        return self.store.record

    def create(self, record: LeaseRecord) -> None:
        if self.store.record is not None:
            raise ApiError(409, "AlreadyExists")
        self._write(record)

    def update(self, record: LeaseRecord) -> None:
        if self.store.fail_updates or self.read_version != self.store.version:
            raise ApiError(409, "Conflict")
        self._write(record)

    def _write(self, record: LeaseRecord) -> None:
        self.store.record = record
        self.store.version += 1
        self.read_version = self.store.version


def _elector(identity: str, lease: MemoryLease, clock: FakeClock, events: list[str]) -> LeaderElector:
    config = LeaderElectionConfig(lease_namespace="lazarus-system", lease_name="lazarus", identity=identity)
    return LeaderElector(
        config,
        lease.client(),
        on_started_leading=lambda: events.append(f"{identity} started"),
        on_stopped_leading=lambda: events.append(f"{identity} stopped"),
        clock=clock,
    )


def test_config_requires_lease_longer_than_deadline_longer_than_retry() -> None:
    with pytest.raises(ValueError):
        LeaderElectionConfig("ns", "l", "me", lease_duration=10, renew_deadline=10, retry_period=2)


def test_first_candidate_creates_the_lease() -> None:
    lease, clock, events = MemoryLease(), FakeClock(), []
    a = _elector("a", lease, clock, events)
    assert a._try_acquire_or_renew()
    assert lease.record is not None
    assert lease.record.holder_identity == "a"
    assert lease.record.lease_duration_seconds == 15
    assert lease.record.lease_transitions == 0


def test_follower_waits_a_full_lease_duration_of_local_time_then_takes_over() -> None:
    lease, clock, events = MemoryLease(), FakeClock(), []
    a, b = _elector("a", lease, clock, events), _elector("b", lease, clock, events)
    assert a._try_acquire_or_renew()
    assert not b._try_acquire_or_renew()  # b observes a's record now
    clock.step(14.9)
    assert not b._try_acquire_or_renew()
    clock.step(0.2)
    assert b._try_acquire_or_renew()
    assert lease.record is not None
    assert lease.record.holder_identity == "b"
    assert lease.record.lease_transitions == 1


def test_renewals_keep_followers_out_however_long() -> None:
    lease, clock, events = MemoryLease(), FakeClock(), []
    a, b = _elector("a", lease, clock, events), _elector("b", lease, clock, events)
    assert a._try_acquire_or_renew()
    for _ in range(30):
        clock.step(2)
        assert a._try_acquire_or_renew()
        assert not b._try_acquire_or_renew()
    assert lease.record is not None
    assert lease.record.holder_identity == "a"
    assert lease.record.lease_transitions == 0


def test_expiry_ignores_the_holders_timestamps() -> None:
    """A record whose renewTime is ancient is still fresh until *we* saw it unchanged for 15 s."""
    lease, clock, events = MemoryLease(), FakeClock(), []
    lease.record = LeaseRecord("other", 15, "2000-01-01T00:00:00.000000Z", "2000-01-01T00:00:00.000000Z", 3)
    b = _elector("b", lease, clock, events)
    assert not b._try_acquire_or_renew()
    clock.step(16)
    assert b._try_acquire_or_renew()
    assert lease.record.lease_transitions == 4


def test_concurrent_candidates_cannot_both_win() -> None:
    lease, clock, events = MemoryLease(), FakeClock(), []
    lease.record = LeaseRecord("", 1, None, None, 0)  # released
    a, b = _elector("a", lease, clock, events), _elector("b", lease, clock, events)
    a_client, b_client = a._lock, b._lock
    assert a_client.get() and b_client.get()  # both read the same version
    b_client.get = lambda: lease.record  # type: ignore[method-assign]  # b keeps its stale version
    assert a._try_acquire_or_renew()
    assert not b._try_acquire_or_renew()
    assert lease.record.holder_identity == "a"


def test_leader_that_cannot_renew_within_the_deadline_stops_without_releasing() -> None:
    lease, clock, events = MemoryLease(), FakeClock(), []
    a = _elector("a", lease, clock, events)
    stop = threading.Event()

    def started() -> None:
        events.append("a started")
        lease.fail_updates = True

    a._on_started = started
    a.run(stop)  # returns by itself once renewals failed for 10 s of clock time
    assert events == ["a started", "a stopped"]
    assert not a.is_leader()
    assert lease.record is not None
    assert lease.record.holder_identity == "a"  # not released: we could not write


def test_clean_stop_releases_the_lease() -> None:
    lease, clock, events = MemoryLease(), FakeClock(), []
    a = _elector("a", lease, clock, events)
    stop = threading.Event()
    a._on_started = lambda: (events.append("a started"), stop.set())  # type: ignore[assignment]
    a.run(stop)
    assert events == ["a started", "a stopped"]
    assert lease.record is not None
    assert lease.record.holder_identity == ""
    assert lease.record.lease_duration_seconds == 1


def test_a_released_lease_is_taken_without_waiting() -> None:
    lease, clock, events = MemoryLease(), FakeClock(), []
    lease.record = LeaseRecord("", 1, None, None, 2)
    b = _elector("b", lease, clock, events)
    assert b._try_acquire_or_renew()
    assert lease.record.lease_transitions == 3
