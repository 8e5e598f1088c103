"""The operator's graceful shutdown, on an in-memory Lease, with controllers that record what the
operator asks of them. SIGTERM is a real signal, handled by the handler ``install_signal_handlers``
installs, sent when the last controller starts."""

from __future__ import annotations

import math
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest
import yaml
from kubernetes import client
from prometheus_client import REGISTRY

from lazarus.controllers.base import Controller
from lazarus.controllers.workqueue import RateLimitingQueue
from lazarus.kube.client import ApiError, Rest
from lazarus.leaderelection import LeaseLock
from lazarus.namespaceguard import GuardCheck
from lazarus.operator import Operator
from lazarus.settings import Settings
from tests.fakeclock import FakeClock
from tests.memorylease import MemoryLease

DEPLOYMENT = Path(__file__).resolve().parents[2] / "manifests" / "base" / "deployment.yaml"
IDENTITY = "lazarus-0_test"


@pytest.fixture(autouse=True)
def _restore_signal_handlers() -> Iterator[None]:
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


class ParkedClock(FakeClock):
    """Fake time that the elector's waits leave alone: each parks for 1 ms of real time, so the
    elector renews without spinning and only the test's controllers move the time."""

    def wait_event(self, event: threading.Event, seconds: float) -> bool:
        return event.wait(0.001)


class RecordingController(Controller):
    """Records start, stop and join. Once stopped, its workers take ``takes`` seconds of clock time
    to exit (``math.inf``: hung); ``join`` reports who held ``lease`` meanwhile."""

    def __init__(
        self, name: str, journal: list[Any], clock: FakeClock, *, takes: float = 0.0, drains: bool = True,
        lease: MemoryLease | None = None, sigterm: bool = False,
    ) -> None:  # fmt: skip
        super().__init__(name, lambda key: None, queue=RateLimitingQueue(clock=clock))
        self.journal, self.clock, self.takes, self.drains = journal, clock, takes, drains
        self.lease, self.sigterm = lease, sigterm

    def start(self) -> None:
        self.journal.append(f"{self.name} start")
        if self.sigterm:
            os.kill(os.getpid(), signal.SIGTERM)

    def stop(self) -> None:
        self.journal.append(f"{self.name} stop")
        self.queue.shutdown()

    def join(self, timeout: float | None = None) -> bool:
        assert timeout is not None, "an unbounded drain"
        record = self.lease.record if self.lease else None
        self.journal.append((self.name, "join", timeout, record.holder_identity if record else None))
        self.clock.step(min(timeout, self.takes))
        return self.drains and self.takes <= timeout

    def shutdown(self, timeout: float | None = None) -> bool:
        self.stop()
        return self.join(timeout)


def guard_in_effect(_rest: Rest) -> GuardCheck:
    return GuardCheck(True, "a dry-run create of a non-sandbox namespace was refused")


def new_operator(
    controllers: list[Controller], clock: FakeClock, lease_lock: LeaseLock | None = None,
    namespace_guard: Callable[[Rest], GuardCheck] = guard_in_effect,
) -> Operator:  # fmt: skip
    settings = Settings(
        identity=IDENTITY, metrics_address="127.0.0.1", metrics_port=0, leader_elect=lease_lock is not None
    )
    operator = Operator(
        settings,
        [lambda _context, c=c: c for c in controllers],  # type: ignore[misc]
        api_client=client.ApiClient(client.Configuration()),
        clock=clock,
        lease_lock=lease_lock,
        namespace_guard=namespace_guard,
    )
    operator.install_signal_handlers()
    return operator


def run_operator(controllers: list[Controller], clock: FakeClock, lease_lock: LeaseLock | None = None) -> int:
    return new_operator(controllers, clock, lease_lock).run()


def test_sigterm_drains_the_workers_before_it_releases_the_lease() -> None:
    lease, clock, journal = MemoryLease(), ParkedClock(), []
    lease.after_write = lambda: lease.record is not None and not lease.record.holder_identity and journal.append(
        "lease released"
    )
    a = RecordingController("a", journal, clock, lease=lease)
    b = RecordingController("b", journal, clock, lease=lease, sigterm=True)
    assert run_operator([a, b], clock, lease.client()) == 0
    assert journal == [
        "a start",
        "b start",
        "a stop",  # no controller hands out work any more ...
        "b stop",
        ("a", "join", ANY, IDENTITY),  # ... while the workers drain, the lease is still ours ...
        ("b", "join", ANY, IDENTITY),
        "lease released",  # ... and only then is it given up
    ]


def test_a_drain_that_times_out_keeps_the_lease_for_it_to_expire() -> None:
    lease, clock, journal = MemoryLease(), ParkedClock(), []
    a = RecordingController("a", journal, clock, lease=lease, drains=False, sigterm=True)
    assert run_operator([a], clock, lease.client()) == 0
    assert lease.record is not None and lease.record.holder_identity == IDENTITY  # not released
    leading = REGISTRY.get_sample_value("lazarus_leader_is_leader", {"lease": "lazarus-system/lazarus-leader"})
    assert leading == 0  # and no longer renewed: it expires


def test_the_whole_drain_fits_in_the_termination_grace_period() -> None:
    """Three controllers whose workers hang: the drain ends in time for the lease's release to
    follow before the kubelet's SIGKILL, not after 30 s per worker."""
    clock, journal = FakeClock(), []
    hung = [RecordingController(name, journal, clock, takes=math.inf) for name in ("a", "b")]
    hung.append(RecordingController("c", journal, clock, takes=math.inf, sigterm=True))
    assert run_operator(hung, clock) == 0
    (deployment,) = [doc for doc in yaml.safe_load_all(DEPLOYMENT.read_text()) if doc]
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    drained_for = clock.now()
    timeouts = [entry[2] for entry in journal if isinstance(entry, tuple)]
    assert sum(timeouts) == drained_for  # each controller got what the others left
    # Stopping the elector afterwards may take an attempt in flight plus the release.
    assert drained_for + 2 * Settings.renew_deadline < grace


def test_a_replica_whose_namespace_guard_is_not_in_effect_stays_unready_and_leads_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The proof is retried (a transient error, then an accepted dry run) and, until it holds, the
    replica is unready with the reason and no controller starts; SIGTERM still stops it cleanly."""
    monkeypatch.setattr("lazarus.operator.GUARD_RETRY", 0.001)
    lease, clock, journal = MemoryLease(), ParkedClock(), []
    readiness: list[tuple[bool, str]] = []
    answers: list[GuardCheck | ApiError] = [ApiError(503, "ServiceUnavailable"), GuardCheck(False, "not in effect")]

    def guard(_rest: Rest) -> GuardCheck:
        readiness.append(operator.readiness())
        if len(readiness) > len(answers):
            os.kill(os.getpid(), signal.SIGTERM)
            return GuardCheck(False, "not in effect")
        answer = answers[len(readiness) - 1]
        if isinstance(answer, ApiError):
            raise answer
        return answer

    operator = new_operator([RecordingController("a", journal, clock)], clock, lease.client(), guard)
    assert operator.run() == 0
    assert readiness == [
        (False, "namespace guard not verified yet"),
        (False, "namespace guard not verified yet: 503 ServiceUnavailable"),
        (False, "not in effect"),
    ]
    assert "a start" not in journal and lease.record is None  # never joined the election


def test_once_the_guard_is_proven_the_replica_goes_on_to_lead(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lazarus.operator.GUARD_RETRY", 0.001)
    lease, clock, journal = MemoryLease(), ParkedClock(), []
    answers = iter([GuardCheck(False, "not in effect"), GuardCheck(True, "refused")])
    operator = new_operator([RecordingController("a", journal, clock, lease=lease, sigterm=True)], clock,
                            lease.client(), lambda _rest: next(answers))  # fmt: skip
    assert operator.run() == 0
    assert journal[0] == "a start"
