"""cold-sync: a fresh process lists 10,000 ConfigMaps into an informer; time to sync and RSS after.

The ConfigMaps (~200 bytes of data each) are created once, by ``WRITE_THREADS`` threads POSTing
in parallel (the time is printed, not part of the figure). Then, ``REPEATS`` times, a fresh
interpreter (so its RSS holds nothing but this) imports the informers, builds a
``SharedInformerFactory`` informer on the namespace's ConfigMaps with one handler that counts
adds (as a controller would register), and measures from ``start()`` to ``has_synced`` (the
paginated LIST is in the cache). It then waits until the handler has had all adds and reads its
own ``VmRSS`` (and ``VmHWM``, the peak) from ``/proc/self/status``.

Targets (architecture, "Performance targets"): sync ≤ 5 s, RSS with 10,000 cached objects ≤ 250 MiB.
"""

from __future__ import annotations

import statistics
import threading
import time

from bench.measure import Benchmark, Figure, child_main, progress, rss_mib, run_child

OBJECTS = 10_000
REPEATS = 3
SYNC_TARGET_S = 5.0
RSS_TARGET_MIB = 250.0


def measure_sync(kubeconfig: str, namespace: str) -> dict[str, float]:
    """Child process: sync an informer on ``namespace``'s ConfigMaps and report time and memory."""
    from lazarus.informers import CONFIG_MAPS, SharedInformerFactory
    from lazarus.kube.client import new_api_client

    api = new_api_client(kubeconfig)
    factory = SharedInformerFactory.for_api_client(api)
    informer = factory.informer_for(CONFIG_MAPS, namespace=namespace)
    adds = threading.Semaphore(0)
    informer.add_event_handler(on_add=lambda _obj: adds.release())
    rss_before = rss_mib()
    started = time.monotonic()
    factory.start()
    if not factory.wait_for_cache_sync(timeout=120):
        raise TimeoutError("the informer did not sync within 120 s")
    synced = time.monotonic() - started
    cached = len(informer.store)
    for _ in range(cached):  # the first list's adds, every one delivered
        if not adds.acquire(timeout=60):
            raise TimeoutError("the handler did not get every add within 60 s")
    delivered = time.monotonic() - started
    result = {
        "sync_s": synced,
        "delivered_s": delivered,
        "rss_before_mib": rss_before,
        "rss_mib": rss_mib(),
        "hwm_mib": rss_mib(field="VmHWM"),
        "cached": cached,
    }
    factory.stop()
    return result


def run(kubeconfig: str | None) -> list[Figure]:
    """Create the objects, sync ``REPEATS`` fresh processes, report median and max."""
    assert kubeconfig is not None
    from bench.cluster import WRITE_THREADS, bench_namespace, connect, create_config_maps

    with connect(kubeconfig) as rest, bench_namespace(rest, "cold-sync") as namespace:
        created_s = create_config_maps(rest, namespace, OBJECTS)
        runs: list[dict[str, float]] = []
        for attempt in range(1, REPEATS + 1):
            result = run_child(__name__, 300, kubeconfig=kubeconfig, namespace=namespace)
            if result["cached"] != OBJECTS + 1:  # + the kube-root-ca.crt every namespace gets
                raise RuntimeError(f"the informer cached {result['cached']} ConfigMaps, not {OBJECTS + 1}")
            progress(
                f"run {attempt}/{REPEATS}: synced in {result['sync_s']:.2f} s, RSS {result['rss_mib']:.1f} MiB"
            )
            runs.append(result)

    def column(name: str) -> list[float]:
        return [r[name] for r in runs]

    return [
        Figure(f"setup: create {OBJECTS:,} ConfigMaps, {WRITE_THREADS} threads (not timed)", created_s, "s"),
        Figure(f"time to has_synced, median of {REPEATS}", statistics.median(column("sync_s")), "s", SYNC_TARGET_S),
        Figure(f"time to has_synced, max of {REPEATS}", max(column("sync_s")), "s", SYNC_TARGET_S),
        Figure("time to all adds delivered to a handler, max", max(column("delivered_s")), "s"),
        Figure(f"RSS after sync, median of {REPEATS}", statistics.median(column("rss_mib")), "MiB", RSS_TARGET_MIB),
        Figure(f"RSS after sync, max of {REPEATS}", max(column("rss_mib")), "MiB", RSS_TARGET_MIB),
        Figure("RSS peak (VmHWM) during sync, max", max(column("hwm_mib")), "MiB"),
        Figure("RSS before start (imports + ApiClient), max", max(column("rss_before_mib")), "MiB"),
    ]


BENCHMARK = Benchmark("cold-sync", f"{OBJECTS:,} ConfigMaps into a fresh informer process", True, run)

if __name__ == "__main__":
    child_main(measure_sync)
