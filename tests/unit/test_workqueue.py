"""Unit tests of lazarus.controllers.workqueue (and the FakeClock it is tested with).

Time is a FakeClock throughout. The delaying queue's background thread is synchronised with,
not slept on: after ``clock.step`` the test waits until the thread has parked on the clock again
(``settle``), by which time it has moved every ready key into the queue.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from lazarus.controllers.workqueue import (
    DEFAULT_BASE_DELAY,
    DEFAULT_MAX_DELAY,
    BucketRateLimiter,
    DelayingQueue,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    RateLimitingQueue,
    WorkQueue,
    WorkQueueMetrics,
    default_controller_rate_limiter,
)
from tests.fakeclock import FakeClock
from tests.waiting import JOIN_TIMEOUT, wait_until


def settle(clock: FakeClock) -> None:
    """Wait until the waiting thread has handled the clock's last step and parked again."""
    clock.wait_for_waiters()


def step(clock: FakeClock, seconds: float) -> None:
    """Step the clock and let the waiting thread act on it."""
    settle(clock)
    clock.step(seconds)
    settle(clock)


def drain(queue: WorkQueue[str]) -> list[str]:
    """Get and finish every queued key, in order (the queue must not be shut down)."""
    keys = []
    while queue.len():
        key, shutdown = queue.get()
        assert not shutdown and key is not None
        queue.done(key)
        keys.append(key)
    return keys


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> WorkQueueMetrics:
    return WorkQueueMetrics(registry)


@pytest.fixture
def delaying(clock: FakeClock) -> Iterator[DelayingQueue[str]]:
    queue: DelayingQueue[str] = DelayingQueue(clock=clock)
    yield queue
    queue.shutdown()


# --------------------------------------------------------------------------------------------
# WorkQueue


def test_add_of_a_queued_key_is_a_no_op() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("ns/a")
    queue.add("ns/a")
    queue.add("ns/b")
    queue.add("ns/a")
    assert queue.len() == 2
    assert drain(queue) == ["ns/a", "ns/b"]


def test_keys_come_out_in_fifo_order() -> None:
    queue: WorkQueue[str] = WorkQueue()
    keys = [f"ns/{i}" for i in range(20)]
    for key in keys:
        queue.add(key)
    assert drain(queue) == keys


def test_key_added_while_processing_is_queued_again_only_on_done() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("ns/a")
    key, _ = queue.get()
    assert key == "ns/a"
    queue.add("ns/a")
    queue.add("ns/a")  # still one pending re-add
    assert queue.len() == 0  # not handed out while it is processing
    queue.done("ns/a")
    assert queue.len() == 1
    assert queue.get() == ("ns/a", False)
    queue.done("ns/a")
    assert queue.len() == 0


def test_done_of_a_key_not_handed_out_does_not_duplicate_it() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("ns/a")
    queue.done("ns/a")
    assert queue.len() == 1


def test_get_blocks_until_an_add() -> None:
    queue: WorkQueue[str] = WorkQueue()
    got: list[tuple[str | None, bool]] = []
    worker = threading.Thread(target=lambda: got.append(queue.get()))
    worker.start()
    worker.join(0.005)
    assert worker.is_alive() and not got
    queue.add("ns/a")
    worker.join(JOIN_TIMEOUT)
    assert not worker.is_alive()
    assert got == [("ns/a", False)]


def test_a_key_is_never_processed_by_two_workers_and_no_add_is_lost() -> None:
    queue: WorkQueue[str] = WorkQueue()
    keys = [f"ns/{i}" for i in range(5)]
    lock = threading.Lock()
    seq = itertools.count()
    held: set[str] = set()
    violations: list[str] = []
    last_add: dict[str, int] = {}
    last_get: dict[str, int] = {}
    accepting = True  # guarded by lock: adds are only made (and recorded) before shutdown

    def add(key: str) -> None:
        with lock:
            if accepting:
                last_add[key] = next(seq)  # recorded before the add: a later get must follow
                queue.add(key)

    def worker(rng: random.Random) -> None:
        while True:
            key, shutdown = queue.get()
            if shutdown:
                return
            assert key is not None
            with lock:
                if key in held:
                    violations.append(key)
                held.add(key)
                last_get[key] = next(seq)
            if rng.random() < 0.3:
                add(key)  # re-add while processing
            time.sleep(0)
            with lock:
                held.discard(key)
            queue.done(key)

    def producer(rng: random.Random) -> None:
        for _ in range(2000):
            add(rng.choice(keys))
            if rng.random() < 0.1:
                time.sleep(0)

    workers = [threading.Thread(target=worker, args=(random.Random(i),)) for i in range(8)]
    producers = [
        threading.Thread(target=producer, args=(random.Random(100 + i),)) for i in range(4)
    ]
    for thread in workers + producers:
        thread.start()
    for thread in producers:
        thread.join(JOIN_TIMEOUT)
        assert not thread.is_alive()
    with lock:
        accepting = False
    queue.shutdown()
    for thread in workers:
        thread.join(JOIN_TIMEOUT)
        assert not thread.is_alive()

    assert violations == []
    assert set(last_get) == set(keys)
    for key in keys:
        assert last_get[key] > last_add[key], f"the last add of {key} was never processed"
    assert queue.len() == 0


def test_shutdown_lets_workers_drain_then_reports_shutdown() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for key in ("ns/a", "ns/b", "ns/c"):
        queue.add(key)
    queue.shutdown()
    assert queue.shutting_down()
    queue.add("ns/d")  # ignored
    assert queue.len() == 3
    assert drain(queue) == ["ns/a", "ns/b", "ns/c"]
    assert queue.get() == (None, True)
    assert queue.get() == (None, True)


def test_shutdown_wakes_a_blocked_get() -> None:
    queue: WorkQueue[str] = WorkQueue()
    got: list[tuple[str | None, bool]] = []
    worker = threading.Thread(target=lambda: got.append(queue.get()))
    worker.start()
    queue.shutdown()
    worker.join(JOIN_TIMEOUT)
    assert not worker.is_alive()
    assert got == [(None, True)]


def test_add_after_shutdown_is_ignored() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.shutdown()
    queue.add("ns/a")
    assert queue.len() == 0
    assert queue.get() == (None, True)


def test_shutdown_with_drain_waits_for_done() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("ns/a")
    queue.add("ns/b")
    assert queue.get() == ("ns/a", False)
    assert queue.get() == ("ns/b", False)
    drainer = threading.Thread(target=queue.shutdown_with_drain)
    drainer.start()
    wait_until(queue.shutting_down)
    queue.add("ns/c")  # ignored: shutting down
    queue.done("ns/a")
    drainer.join(0.005)
    assert drainer.is_alive()  # ns/b is still processing
    queue.done("ns/b")
    drainer.join(JOIN_TIMEOUT)
    assert not drainer.is_alive()
    assert queue.get() == (None, True)


def test_shutdown_with_drain_returns_at_once_when_idle() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.shutdown_with_drain()
    assert queue.shutting_down()


# --------------------------------------------------------------------------------------------
# DelayingQueue


def test_add_after_with_no_delay_adds_at_once(delaying: DelayingQueue[str]) -> None:
    delaying.add_after("ns/a", 0)
    delaying.add_after("ns/b", -1)
    assert drain(delaying) == ["ns/a", "ns/b"]


def test_delayed_key_becomes_available_only_once_its_time_has_come(
    clock: FakeClock, delaying: DelayingQueue[str]
) -> None:
    delaying.add_after("ns/a", 1.0)
    settle(clock)
    assert delaying.len() == 0
    step(clock, 0.5)
    assert delaying.len() == 0
    step(clock, 0.25)
    assert delaying.len() == 0
    step(clock, 0.25)  # exactly at the ready time (binary-exact steps: no rounding)
    assert drain(delaying) == ["ns/a"]


def test_earlier_ready_time_comes_first(clock: FakeClock, delaying: DelayingQueue[str]) -> None:
    delaying.add_after("ns/c", 3.0)
    delaying.add_after("ns/a", 1.0)
    delaying.add_after("ns/b", 2.0)
    step(clock, 1.0)
    assert drain(delaying) == ["ns/a"]
    step(clock, 5.0)  # b and c are ready together: still in ready-time order
    assert drain(delaying) == ["ns/b", "ns/c"]


def test_equal_ready_times_keep_add_order(clock: FakeClock, delaying: DelayingQueue[str]) -> None:
    for key in ("ns/z", "ns/y", "ns/x"):
        delaying.add_after(key, 1.0)
    step(clock, 1.0)
    assert drain(delaying) == ["ns/z", "ns/y", "ns/x"]


def test_re_add_with_a_later_delay_keeps_the_earlier_time(
    clock: FakeClock, delaying: DelayingQueue[str]
) -> None:
    delaying.add_after("ns/a", 1.0)
    delaying.add_after("ns/a", 5.0)
    step(clock, 1.0)
    assert drain(delaying) == ["ns/a"]
    step(clock, 10.0)
    assert delaying.len() == 0  # the later add was merged, not kept


def test_re_add_with_an_earlier_delay_moves_the_key_forward(
    clock: FakeClock, delaying: DelayingQueue[str]
) -> None:
    delaying.add_after("ns/a", 5.0)
    delaying.add_after("ns/b", 2.0)
    delaying.add_after("ns/a", 1.0)
    step(clock, 1.0)
    assert drain(delaying) == ["ns/a"]
    step(clock, 10.0)
    assert drain(delaying) == ["ns/b"]  # and ns/a not a second time


def test_delayed_key_already_queued_is_deduplicated(
    clock: FakeClock, delaying: DelayingQueue[str]
) -> None:
    delaying.add("ns/a")
    delaying.add_after("ns/a", 1.0)
    step(clock, 1.0)
    assert drain(delaying) == ["ns/a"]


def test_shutdown_drops_waiting_keys_and_stops_the_thread(clock: FakeClock) -> None:
    queue: DelayingQueue[str] = DelayingQueue(clock=clock)
    queue.add_after("ns/a", 1.0)
    queue.shutdown()
    queue._thread.join(JOIN_TIMEOUT)
    assert not queue._thread.is_alive()
    queue.add_after("ns/b", 1.0)
    clock.step(2.0)
    assert queue.len() == 0
    assert queue.get() == (None, True)


def test_shutdown_with_drain_stops_the_thread(clock: FakeClock) -> None:
    queue: DelayingQueue[str] = DelayingQueue(clock=clock)
    queue.shutdown_with_drain()
    queue._thread.join(JOIN_TIMEOUT)
    assert not queue._thread.is_alive()


# --------------------------------------------------------------------------------------------
# Rate limiters


def test_exponential_limiter_doubles_from_base_up_to_max() -> None:
    limiter = ItemExponentialFailureRateLimiter()
    assert (DEFAULT_BASE_DELAY, DEFAULT_MAX_DELAY) == (0.005, 1000.0)
    delays = [limiter.when("ns/a") for _ in range(25)]
    assert delays[:4] == pytest.approx([0.005, 0.01, 0.02, 0.04])
    assert delays[17] == pytest.approx(0.005 * 2**17)  # 655.36 s, the last one under the cap
    assert delays[18:] == [1000.0] * 7
    assert limiter.num_requeues("ns/a") == 25
    assert limiter.when("ns/b") == pytest.approx(0.005)  # per key
    limiter.forget("ns/a")
    assert limiter.num_requeues("ns/a") == 0
    assert limiter.when("ns/a") == pytest.approx(0.005)


def test_exponential_limiter_does_not_overflow() -> None:
    limiter = ItemExponentialFailureRateLimiter(base=1.0, max=60.0)
    for _ in range(2000):
        delay = limiter.when("ns/a")
    assert delay == 60.0


def test_bucket_limiter_gives_the_burst_then_spaces_by_qps(clock: FakeClock) -> None:
    limiter = BucketRateLimiter(qps=10, burst=100, clock=clock)
    assert [limiter.when(f"ns/{i}") for i in range(100)] == [0.0] * 100
    assert [limiter.when("ns/x") for _ in range(3)] == pytest.approx([0.1, 0.2, 0.3])
    clock.step(0.3)  # pays the debt back
    assert limiter.when("ns/x") == pytest.approx(0.1)
    clock.step(100.0)  # refills, but never beyond the burst
    assert [limiter.when("ns/y") for _ in range(100)] == [0.0] * 100
    assert limiter.when("ns/y") == pytest.approx(0.1)
    assert limiter.num_requeues("ns/y") == 0


def test_max_of_limiter_takes_the_longest_delay(clock: FakeClock) -> None:
    exponential = ItemExponentialFailureRateLimiter(0.005, 1000.0)
    bucket = BucketRateLimiter(qps=1, burst=1, clock=clock)
    limiter = MaxOfRateLimiter(exponential, bucket)
    assert limiter.when("ns/a") == pytest.approx(0.005)  # bucket has a token
    assert limiter.when("ns/a") == pytest.approx(1.0)  # bucket empty: 1 s > 10 ms
    assert limiter.num_requeues("ns/a") == 2
    limiter.forget("ns/a")
    assert limiter.num_requeues("ns/a") == 0


def test_default_controller_rate_limiter(clock: FakeClock) -> None:
    limiter = default_controller_rate_limiter(clock)
    assert [limiter.when("ns/a") for _ in range(3)] == pytest.approx([0.005, 0.01, 0.02])
    for i in range(97):
        limiter.when(f"ns/{i}")
    assert limiter.when("ns/b") == pytest.approx(0.1)  # 101st token of the 10 qps / 100 bucket


# --------------------------------------------------------------------------------------------
# RateLimitingQueue


def test_add_rate_limited_delays_by_the_limiter(clock: FakeClock) -> None:
    queue: RateLimitingQueue[str] = RateLimitingQueue(clock=clock)
    try:
        queue.add_rate_limited("ns/a")
        settle(clock)
        assert queue.len() == 0
        step(clock, 0.005)
        assert drain(queue) == ["ns/a"]
        queue.add_rate_limited("ns/a")
        queue.add_rate_limited("ns/a")  # merged with the earlier (10 ms) one
        assert queue.num_requeues("ns/a") == 3
        step(clock, 0.01)
        assert drain(queue) == ["ns/a"]
        step(clock, 0.02)
        assert queue.len() == 0
        queue.forget("ns/a")
        assert queue.num_requeues("ns/a") == 0
    finally:
        queue.shutdown()


def test_add_rate_limited_after_shutdown_is_ignored(clock: FakeClock) -> None:
    queue: RateLimitingQueue[str] = RateLimitingQueue(clock=clock)
    queue.shutdown()
    queue.add_rate_limited("ns/a")
    assert queue.num_requeues("ns/a") == 0
    assert queue.get() == (None, True)


# --------------------------------------------------------------------------------------------
# Metrics


def sample(registry: CollectorRegistry, metric: str, name: str = "test") -> float | None:
    return registry.get_sample_value(f"lazarus_workqueue_{metric}", {"name": name})


def test_metrics(clock: FakeClock, registry: CollectorRegistry, metrics: WorkQueueMetrics) -> None:
    queue: RateLimitingQueue[str] = RateLimitingQueue("test", clock=clock, metrics=metrics)
    try:
        assert sample(registry, "depth") == 0
        assert sample(registry, "adds_total") == 0
        queue.add("ns/a")
        queue.add("ns/a")  # deduplicated: not an add
        queue.add("ns/b")
        assert sample(registry, "depth") == 2
        assert sample(registry, "adds_total") == 2

        clock.step(2.0)
        assert queue.get() == ("ns/a", False)
        assert sample(registry, "depth") == 1
        assert sample(registry, "queue_duration_seconds_count") == 1
        assert sample(registry, "queue_duration_seconds_sum") == pytest.approx(2.0)

        clock.step(1.0)
        assert queue.get() == ("ns/b", False)
        clock.step(0.5)
        assert sample(registry, "unfinished_work_seconds") == pytest.approx(1.5 + 0.5)
        assert sample(registry, "longest_running_processor_seconds") == pytest.approx(1.5)

        queue.done("ns/a")
        assert sample(registry, "work_duration_seconds_count") == 1
        assert sample(registry, "work_duration_seconds_sum") == pytest.approx(1.5)
        assert sample(registry, "unfinished_work_seconds") == pytest.approx(0.5)
        queue.done("ns/b")
        assert sample(registry, "unfinished_work_seconds") == 0
        assert sample(registry, "longest_running_processor_seconds") == 0

        queue.add_rate_limited("ns/a")
        queue.add_rate_limited("ns/a")
        assert sample(registry, "retries_total") == 2
        step(clock, 0.005)
        assert sample(registry, "adds_total") == 3  # the delayed add, once it became ready
        assert sample(registry, "depth") == 1
    finally:
        queue.shutdown()


def test_unnamed_queue_exports_nothing(
    registry: CollectorRegistry, metrics: WorkQueueMetrics
) -> None:
    queue: WorkQueue[str] = WorkQueue(metrics=metrics)
    queue.add("ns/a")
    assert sample(registry, "adds_total") is None


def test_queue_names_are_short_identifiers(metrics: WorkQueueMetrics) -> None:
    with pytest.raises(ValueError):
        WorkQueue("ns/a", metrics=metrics)
    with pytest.raises(ValueError):
        WorkQueue("x" * 64, metrics=metrics)


def test_a_queue_made_again_with_the_same_name_takes_the_series_over(
    registry: CollectorRegistry, metrics: WorkQueueMetrics
) -> None:
    old: WorkQueue[str] = WorkQueue("test", metrics=metrics)
    old.add("ns/a")
    old.shutdown()
    WorkQueue("test", metrics=metrics)
    assert sample(registry, "depth") == 0
    assert sample(registry, "adds_total") == 1  # counters keep counting


# --------------------------------------------------------------------------------------------
# FakeClock


def test_fake_clock_wait_returns_at_once_past_the_deadline(clock: FakeClock) -> None:
    condition = threading.Condition()
    clock.step(2.0)
    with condition:
        clock.wait(condition, 1.0)
    assert not clock.has_waiters()


def test_fake_clock_step_wakes_waiters(clock: FakeClock) -> None:
    condition = threading.Condition()

    def park() -> None:
        with condition:
            clock.wait(condition, 10.0)

    waiter = threading.Thread(target=park)
    waiter.start()
    wait_until(clock.has_waiters)
    clock.step(1.0)
    waiter.join(JOIN_TIMEOUT)
    assert not waiter.is_alive()
    assert not clock.has_waiters()
    clock.sleep(0.5)
    assert clock.now() == 1.5
