"""workqueue: in-process throughput of ``RateLimitingQueue`` (no cluster).

``PRODUCERS`` threads ``add`` distinct keys (no dedup) as fast as they can while ``WORKERS``
threads loop ``get`` → ``done``, for ``SECONDS``; a run's figure is (adds + gets) per second
counted within that window (the workers keep up, so adds ≈ gets). Measured with a named queue,
whose Prometheus metrics every controller queue has (the figure), and with an unnamed one (no
metrics) to show their cost; ``REPEATS`` runs of each, interleaved, because with seven threads on
one GIL a single run swings by a factor of 2–3 with thread scheduling. No target: the figure
shows how far the queue is from being a bottleneck (a reconcile costs milliseconds).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from statistics import median

from bench.measure import Benchmark, Figure
from lazarus.controllers.workqueue import RateLimitingQueue

WORKERS = 4
PRODUCERS = 2
SECONDS = 2.0
REPEATS = 3


@dataclass(frozen=True)
class Throughput:
    """What one run counted within its window."""

    adds: int
    gets: int
    seconds: float

    @property
    def ops_per_second(self) -> float:
        """Adds plus gets per second."""
        return (self.adds + self.gets) / self.seconds


def measure(name: str | None) -> Throughput:
    """Run producers and workers on one queue for ``SECONDS`` and count what they did in that time."""
    queue: RateLimitingQueue[str] = RateLimitingQueue(name)
    counts = {"adds": 0, "gets": 0}
    lock = threading.Lock()
    begin = threading.Barrier(WORKERS + PRODUCERS + 1)
    deadline = 0.0

    def produce(index: int) -> None:
        begin.wait()
        adds = 0
        while time.monotonic() < deadline:
            queue.add(f"producer-{index}/key-{adds}")
            adds += 1
        with lock:
            counts["adds"] += adds

    def work() -> None:
        begin.wait()
        gets = 0
        while True:
            key, shutting_down = queue.get()
            if shutting_down or key is None:
                break
            queue.done(key)
            if time.monotonic() < deadline:
                gets += 1
        with lock:
            counts["gets"] += gets

    threads = [threading.Thread(target=produce, args=(i,)) for i in range(PRODUCERS)]
    threads += [threading.Thread(target=work) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + SECONDS
    begin.wait()
    time.sleep(SECONDS)
    queue.shutdown()  # workers drain what is left (uncounted), then see the shutdown
    for thread in threads:
        thread.join()
    return Throughput(counts["adds"], counts["gets"], SECONDS)


def run(_kubeconfig: str | None) -> list[Figure]:
    """Measure a named and an unnamed queue ``REPEATS`` times each."""
    named: list[float] = []
    unnamed: list[float] = []
    for _ in range(REPEATS):
        named.append(measure("bench-workqueue").ops_per_second)
        unnamed.append(measure(None).ops_per_second)
    setup = f"{WORKERS} workers, {PRODUCERS} producers"
    return [
        Figure(f"adds + gets, named queue (with metrics), {setup}, median of {REPEATS}", median(named), "ops/s"),
        Figure(f"adds + gets, named queue, min of {REPEATS}", min(named), "ops/s"),
        Figure(f"adds + gets, unnamed queue (no metrics), median of {REPEATS}", median(unnamed), "ops/s"),
    ]


BENCHMARK = Benchmark("workqueue", f"RateLimitingQueue adds + gets per second, {WORKERS} workers", False, run)
