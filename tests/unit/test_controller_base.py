"""The controller loop: outcome of sync decides forget / requeue-with-backoff / drop."""

from __future__ import annotations

import threading

from lazarus.controllers.base import MAX_PROGRAMMING_RETRIES, Controller, PermanentError
from lazarus.controllers.workqueue import RateLimitingQueue
from lazarus.informers.store import object_key
from lazarus.kube.client import ApiError
from tests.fakeclock import FakeClock
from tests.waiting import JOIN_TIMEOUT, wait_until


def _controller(sync: object) -> tuple[Controller, FakeClock]:
    clock = FakeClock()
    queue: RateLimitingQueue[str] = RateLimitingQueue(clock=clock)
    return Controller("test", sync, queue=queue), clock  # type: ignore[arg-type]


def test_keys() -> None:
    assert object_key({"metadata": {"namespace": "ns", "name": "a"}}) == "ns/a"
    assert object_key({"metadata": {"name": "node-1"}}) == "node-1"


def test_success_forgets_the_key() -> None:
    synced: list[str] = []
    controller, _ = _controller(synced.append)
    controller.queue.add("ns/a")
    assert controller.process_next_item()
    assert synced == ["ns/a"]
    assert controller.queue.num_requeues("ns/a") == 0
    assert controller.queue.len() == 0


def test_transient_error_requeues_with_growing_backoff() -> None:
    calls: list[str] = []

    def sync(key: str) -> None:
        calls.append(key)
        if len(calls) < 3:
            raise RuntimeError("apiserver unavailable")

    controller, clock = _controller(sync)
    controller.queue.add("ns/a")
    assert controller.process_next_item()
    assert controller.queue.num_requeues("ns/a") == 1
    assert controller.queue.len() == 0  # waiting 5 ms, not queued yet
    clock.step(0.005)
    assert controller.process_next_item()
    assert controller.queue.num_requeues("ns/a") == 2
    clock.step(0.010)
    assert controller.process_next_item()
    assert calls == ["ns/a"] * 3
    assert controller.queue.num_requeues("ns/a") == 0  # forgotten after success


def test_permanent_error_is_not_requeued() -> None:
    def sync(key: str) -> None:
        raise PermanentError("spec.backupName names no backup")

    controller, clock = _controller(sync)
    controller.queue.add("ns/a")
    assert controller.process_next_item()
    clock.step(2000)
    assert controller.queue.len() == 0
    assert controller.queue.num_requeues("ns/a") == 0


def test_shutdown_stops_workers() -> None:
    controller, _ = _controller(lambda key: None)
    controller.start()
    controller.queue.add("ns/a")
    controller.shutdown(timeout=5)
    assert all(not t.is_alive() for t in controller._threads)


def test_forbidden_is_reported_once_per_message_and_retried() -> None:
    """A 403 is handed to on_forbidden (once per key and message until a success), and retried."""
    denied = "restores.velero.io is forbidden: User \"system:serviceaccount:lazarus-system:lazarus\" cannot create"
    forbidden = ApiError(403, "Forbidden", denied)
    outcomes: list[Exception | None] = [forbidden, forbidden, None, forbidden]
    reported: list[tuple[str, str]] = []

    def sync(key: str) -> None:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    clock = FakeClock()
    controller = Controller(
        "test", sync, queue=RateLimitingQueue(clock=clock), on_forbidden=lambda k, e: reported.append((k, e.message))
    )
    controller.queue.add("ns/a")
    for _ in range(4):
        clock.step(1.0)
        assert controller.process_next_item()
        controller.queue.add("ns/a")
    assert reported == [("ns/a", denied), ("ns/a", denied)]  # again after the success in between
    assert controller.queue.num_requeues("ns/a") == 1


def test_stop_lets_the_worker_finish_its_key_and_hands_out_no_more() -> None:
    """After SIGTERM a worker must not start on queued keys: the drain would outlast the grace
    period, and the lease is only released once the workers are done."""
    syncing, release = threading.Event(), threading.Event()
    synced: list[str] = []

    def sync(key: str) -> None:
        syncing.set()
        release.wait(JOIN_TIMEOUT)
        synced.append(key)

    controller = Controller("test", sync, workers=1, queue=RateLimitingQueue(clock=FakeClock()))
    for key in ("ns/a", "ns/b", "ns/c"):
        controller.queue.add(key)
    controller.start()
    assert syncing.wait(JOIN_TIMEOUT)
    stopping = threading.Thread(target=controller.shutdown, args=(JOIN_TIMEOUT,))
    stopping.start()
    wait_until(controller.queue.shutting_down)
    release.set()
    stopping.join(JOIN_TIMEOUT)
    assert not stopping.is_alive()
    assert synced == ["ns/a"]


def test_a_programming_error_is_retried_a_few_times_then_reported_and_dropped() -> None:
    reported: list[tuple[str, str]] = []

    def sync(key: str) -> None:
        raise KeyError("startTime")

    clock = FakeClock()
    queue: RateLimitingQueue[str] = RateLimitingQueue(clock=clock)
    controller = Controller("test", sync, queue=queue,
                            on_programming_error=lambda key, exc: reported.append((key, repr(exc))))  # fmt: skip
    controller.queue.add("ns/a")
    for attempt in range(MAX_PROGRAMMING_RETRIES + 1):
        assert reported == []
        assert controller.process_next_item()
        clock.step(1.0)
        assert controller.queue.num_requeues("ns/a") == (attempt + 1) % (MAX_PROGRAMMING_RETRIES + 1)
    assert reported == [("ns/a", "KeyError('startTime')")]
    assert controller.queue.len() == 0  # dropped: only a change of the object brings it back
