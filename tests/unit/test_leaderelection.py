"""Leader election logic against an in-memory Lease with the API server's optimistic concurrency."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import urllib3

from lazarus.kube.client import ApiError
from lazarus.leaderelection import KubeLeaseLock, LeaderElectionConfig, LeaderElector, LeaseRecord
from tests.fakeclock import FakeClock
from tests.memorylease import MemoryLease
from tests.waiting import JOIN_TIMEOUT, wait_until


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
    assert a._try_acquire_or_renew(clock.now() + 10)
    assert lease.record is not None
    assert lease.record.holder_identity == "a"
    assert lease.record.lease_duration_seconds == 15
    assert lease.record.lease_transitions == 0


def test_follower_waits_a_full_lease_duration_of_local_time_then_takes_over() -> None:
    lease, clock, events = MemoryLease(), FakeClock(), []
    a, b = _elector("a", lease, clock, events), _elector("b", lease, clock, events)
    assert a._try_acquire_or_renew(clock.now() + 10)
    assert not b._try_acquire_or_renew(clock.now() + 10)  # b observes a's record now
    clock.step(14.9)
    assert not b._try_acquire_or_renew(clock.now() + 10)
    clock.step(0.2)
    assert b._try_acquire_or_renew(clock.now() + 10)
    assert lease.record is not None
    assert lease.record.holder_identity == "b"
    assert lease.record.lease_transitions == 1


def test_renewals_keep_followers_out_however_long() -> None:
    lease, clock, events = MemoryLease(), FakeClock(), []
    a, b = _elector("a", lease, clock, events), _elector("b", lease, clock, events)
    assert a._try_acquire_or_renew(clock.now() + 10)
    for _ in range(30):
        clock.step(2)
        assert a._try_acquire_or_renew(clock.now() + 10)
        assert not b._try_acquire_or_renew(clock.now() + 10)
    assert lease.record is not None
    assert lease.record.holder_identity == "a"
    assert lease.record.lease_transitions == 0


def test_expiry_ignores_the_holders_timestamps() -> None:
    """A record whose renewTime is ancient is still fresh until *we* saw it unchanged for 15 s."""
    lease, clock, events = MemoryLease(), FakeClock(), []
    lease.record = LeaseRecord("other", 15, "2000-01-01T00:00:00.000000Z", "2000-01-01T00:00:00.000000Z", 3)
    b = _elector("b", lease, clock, events)
    assert not b._try_acquire_or_renew(clock.now() + 10)
    clock.step(16)
    assert b._try_acquire_or_renew(clock.now() + 10)
    assert lease.record.lease_transitions == 4


def test_concurrent_candidates_cannot_both_win() -> None:
    lease, clock, events = MemoryLease(), FakeClock(), []
    lease.record = LeaseRecord("", 1, None, None, 0)  # released
    a, b = _elector("a", lease, clock, events), _elector("b", lease, clock, events)
    a_client, b_client = a._lock, b._lock
    assert a_client.get(timeout=1) and b_client.get(timeout=1)  # both read the same version
    b_client.get = lambda **_: lease.record  # type: ignore[method-assign]  # b keeps its stale version
    assert a._try_acquire_or_renew(clock.now() + 10)
    assert not b._try_acquire_or_renew(clock.now() + 10)
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
    assert b._try_acquire_or_renew(clock.now() + 10)
    assert lease.record.lease_transitions == 3


def test_renewal_goes_on_while_on_started_leading_blocks() -> None:
    """on_started_leading (the operator waits up to 120 s for caches there) must not hold up the
    renewals that keep the 15 s lease: it runs on its own thread."""
    lease, clock, events = MemoryLease(), FakeClock(), []
    a = _elector("a", lease, clock, events)
    started, release = threading.Event(), threading.Event()

    def blocking_start() -> None:
        started.set()
        release.wait()  # set by the test's cleanup

    a._on_started = blocking_start
    stop = threading.Event()
    thread = threading.Thread(target=a.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert started.wait(JOIN_TIMEOUT)
        wait_until(lambda: lease.version >= 5)  # the create, then renewals
        assert not release.is_set() and a.is_leader()
    finally:
        stop.set()
        release.set()
        thread.join(JOIN_TIMEOUT)
    assert not thread.is_alive()


class RecordingRest:
    """A ``Rest`` for ``KubeLeaseLock`` that records each request's timeout. A GET of the lease
    takes ``get_takes`` seconds of clock time; the ``stop_after``-th PUT sets ``stop``."""

    def __init__(self, clock: FakeClock, stop: threading.Event, *, get_takes: float, stop_after: int) -> None:
        self.clock, self.stop = clock, stop
        self.get_takes, self.stop_after = get_takes, stop_after
        self.lease: dict[str, Any] | None = None
        self.requests: list[tuple[str, object]] = []

    def request(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        self.requests.append((method, options.get("timeout")))
        if method == "GET":
            if self.lease is None:
                raise ApiError(404, "NotFound")
            self.clock.step(self.get_takes)
            return self.lease
        self.lease = {**options["body"], "metadata": {"name": "lazarus", "resourceVersion": str(len(self.requests))}}
        if method == "PUT" and [m for m, _ in self.requests].count("PUT") == self.stop_after:
            self.stop.set()
        return self.lease


def test_every_lease_request_is_bounded_by_the_remaining_renew_deadline() -> None:
    """A GET that took 4 s of a 10 s renew deadline leaves the PUT 6 s, not the default 30 s read
    timeout: a leader must know it failed to renew before a follower (15 s) may take over."""
    clock, stop, events = FakeClock(), threading.Event(), []
    rest = RecordingRest(clock, stop, get_takes=4.0, stop_after=2)
    config = LeaderElectionConfig(lease_namespace="lazarus-system", lease_name="lazarus", identity="a")
    a = LeaderElector(
        config,
        KubeLeaseLock(rest, "lazarus-system", "lazarus"),  # type: ignore[arg-type]
        on_started_leading=lambda: None,
        on_stopped_leading=lambda: events.append("stopped"),
        clock=clock,
    )
    a.run(stop)  # acquire (GET 404, POST), renew twice (GET, PUT), release (GET, PUT)
    assert [m for m, _ in rest.requests] == ["GET", "POST", "GET", "PUT", "GET", "PUT", "GET", "PUT"]
    assert [t for _, t in rest.requests] == [10.0, 10.0, 10.0, 6.0, 10.0, 6.0, 10.0, 6.0]
    assert events == ["stopped"] and rest.lease is not None
    assert rest.lease["spec"]["holderIdentity"] == ""  # released


def test_a_connection_error_is_a_failed_attempt_retried_within_the_renew_deadline() -> None:
    lease, clock, events = MemoryLease(), FakeClock(), []
    a = _elector("a", lease, clock, events)
    # GET 1 acquires; the renewals' GETs 2 and 3 find no connection; GET 4 renews, 5 renews again.
    lease.get_errors = {2: urllib3.exceptions.ProtocolError("Connection aborted."), 3: TimeoutError("timed out")}
    stop = threading.Event()
    lease.after_write = lambda: lease.version == 3 and stop.set()
    a.run(stop)
    assert lease.gets == 6  # the five above, then release's
    assert "a stopped" in events  # the clean stop, not a lost lease
    assert lease.record is not None and lease.record.holder_identity == ""  # released


def test_a_leader_whose_connection_stays_down_gives_up_at_the_renew_deadline() -> None:
    lease, clock, events = MemoryLease(), FakeClock(), []
    a = _elector("a", lease, clock, events)
    lease.get_errors = {n: ConnectionRefusedError("Connection refused") for n in range(2, 100)}
    a.run(threading.Event())  # returns by itself: the lease is lost (last renewed at 0)
    assert "a stopped" in events and not a.is_leader()
    assert lease.gets == 6  # tries at 0, 2, 4, 6, 8; none at the deadline
    assert LeaderElectionConfig.renew_deadline <= clock.now() < LeaderElectionConfig.lease_duration


def test_the_lease_is_held_for_side_effects_only_within_the_renew_deadline_of_the_last_renewal() -> None:
    lease, clock, events = MemoryLease(), FakeClock(), []
    a, b = _elector("a", lease, clock, events), _elector("b", lease, clock, events)
    assert not a.holds_lease()  # not leading yet
    assert a._try_acquire_or_renew(clock.now() + 10)
    a._leader.set()  # as run() does once acquired
    assert a.holds_lease()
    clock.step(9.9)
    assert a.holds_lease()
    clock.step(0.2)  # 10 s (the renew deadline) without a renewal: about to give up
    assert not a.holds_lease()
    assert a._try_acquire_or_renew(clock.now() + 10)
    assert a.holds_lease()
    assert not b.holds_lease()


def test_a_leader_that_observes_another_holder_does_not_hold_the_lease() -> None:
    lease, clock, events = MemoryLease(), FakeClock(), []
    a = _elector("a", lease, clock, events)
    assert a._try_acquire_or_renew(clock.now() + 10)
    a._leader.set()
    lease.record = LeaseRecord("b", 15, None, None, 1)  # someone took it (a's clock was stopped, say)
    assert not a._try_acquire_or_renew(clock.now() + 10)
    assert not a.holds_lease()
