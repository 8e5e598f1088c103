"""event-latency: watch event → handler → worker ``sync`` start, under a burst of 1,000 updates.

Set-up, in this process (as in ``lazarus run``): a ``SharedInformerFactory`` informer on a fresh
namespace's ConfigMaps, and a ``Controller`` (2 workers, the default) whose handler enqueues the
key sample-controller style and whose ``sync`` reads the cache. The informer's transport is
wrapped to stamp each watch event when the reflector has it decoded ("arrival").

The burst comes from a separate writer process (the API writes an operator reacts to come from
elsewhere, and its threads must not compete with ours for the GIL): ``UPDATES`` merge-patches
spread over ``OBJECTS`` ConfigMaps by ``WRITE_THREADS`` threads, each carrying its send time.

What is measured, per sync: the workqueue coalesces keys, so one sync covers every event of its
key since that key's previous sync began. Each sync's latency is taken from the *oldest* event it
covers (the one that waited longest):

- in-process (the target): arrival in the informer → sync start;
- end-to-end, as information: the writer's API call returned → sync start, and the writer sent
  it → sync start (the watch event can beat the write's response, so the former may be < 0).

Target: in-process p99 ≤ 100 ms (percentiles nearest-rank).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from bench.cluster import WRITE_THREADS, bench_namespace, connect, create_config_maps, parallel
from bench.measure import Benchmark, Figure, child_main, percentile, progress, run_child
from lazarus.controllers.base import Controller
from lazarus.informers import CONFIG_MAPS, ListerWatcher, Query, RestTransport, SharedInformerFactory, object_key
from lazarus.informers.transport import ListPage, Obj, WatchEvent, WatchStream
from lazarus.kube.client import new_api_client

OBJECTS = 100
UPDATES = 1_000
P99_TARGET_MS = 100.0
COMPLETION_TIMEOUT_S = 60.0


def write_burst(kubeconfig: str, namespace: str, updates: int, objects: int) -> list[tuple[str, float, float]]:
    """Writer process: merge-patch ConfigMaps in a burst; return ``(resourceVersion, sent, returned)``."""
    with connect(kubeconfig) as rest:
        path = f"/api/v1/namespaces/{namespace}/configmaps"
        parallel(WRITE_THREADS, lambda _: rest.request("GET", path, query={"limit": 1}))  # open the connections

        def patch(index: int) -> tuple[str, float, float]:
            sent = time.monotonic()
            body = {"data": {"sent": repr(sent), "update": str(index)}}
            name = f"cm-{index % objects:05d}"
            answer = rest.request("PATCH", f"{path}/{name}", body=body, content_type="application/merge-patch+json")
            return answer["metadata"]["resourceVersion"], sent, time.monotonic()

        return parallel(updates, patch)


class _StampedWatches:
    """A ``ListerWatcher`` that records when each watch event reaches the reflector, by resourceVersion."""

    def __init__(self, inner: ListerWatcher) -> None:
        self._inner = inner
        self.arrivals: dict[str, float] = {}

    def watch(self, query: Query, *, resource_version: str, timeout_seconds: int) -> WatchStream:
        stream = self._inner.watch(query, resource_version=resource_version, timeout_seconds=timeout_seconds)
        return _StampedStream(stream, self.arrivals)

    def list(self, query: Query, *, limit: int, continue_token: str | None) -> ListPage:
        return self._inner.list(query, limit=limit, continue_token=continue_token)


@dataclass
class _StampedStream:
    inner: WatchStream
    arrivals: dict[str, float]

    def __iter__(self) -> Iterator[WatchEvent]:
        for event in self.inner:
            if event.type in ("ADDED", "MODIFIED", "DELETED"):
                self.arrivals[event.object["metadata"]["resourceVersion"]] = time.monotonic()
            yield event

    def close(self) -> None:
        self.inner.close()


@dataclass
class _Recorder:
    """Pairs handled events with the sync that covers them (see the module docstring)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    pending: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    """Per key, ``(resourceVersion, sent)`` of the events handled since its last sync began."""
    syncs: list[tuple[float, list[tuple[str, float]]]] = field(default_factory=list)
    """``(sync start, events covered)`` of every sync that covered a burst event."""
    covered: set[str] = field(default_factory=set)
    """resourceVersions of the burst events some sync has covered."""
    total: int = 0
    """Syncs started, burst or not."""

    def handled(self, obj: Obj) -> str:
        """Note a burst event (it carries ``sent``) about to be enqueued; return its key."""
        key = object_key(obj)
        sent = (obj.get("data") or {}).get("sent")
        if sent is not None:
            with self.lock:
                self.pending.setdefault(key, []).append((obj["metadata"]["resourceVersion"], float(sent)))
        return key

    def sync_started(self, key: str) -> None:
        """Take the events a sync of ``key`` starting now covers."""
        with self.lock:
            started = time.monotonic()
            self.total += 1
            events = self.pending.pop(key, None)
            if events:
                self.syncs.append((started, events))
                self.covered.update(rv for rv, _ in events)

    def counts(self) -> tuple[int, int]:
        """Syncs started, and burst events covered."""
        with self.lock:
            return self.total, len(self.covered)


def _wait_for(what: str, condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def _burst(kubeconfig: str, namespace: str) -> tuple[_Recorder, dict[str, float], list[list[Any]]]:
    """Run the informer and controller, fire the burst, wait until every update was synced."""
    api = new_api_client(kubeconfig)
    watches = _StampedWatches(RestTransport(api))
    factory = SharedInformerFactory(watches)
    informer = factory.informer_for(CONFIG_MAPS, namespace=namespace)
    recorder = _Recorder()

    def sync(key: str) -> None:
        recorder.sync_started(key)
        informer.store.get_by_key(key)

    controller = Controller("bench-latency", sync)
    informer.add_event_handler(
        on_add=controller.enqueue,
        on_update=lambda _old, new: controller.queue.add(recorder.handled(new)),
        on_delete=controller.enqueue,
    )
    try:
        factory.start()
        if not factory.wait_for_cache_sync(timeout=60):
            raise TimeoutError("the informer did not sync within 60 s")
        controller.start()
        _wait_for("the initial syncs", lambda: recorder.counts()[0] >= OBJECTS, 30)
        time.sleep(0.5)  # let the process go quiet
        started = time.monotonic()
        writes = run_child(__name__, 300, kubeconfig=kubeconfig, namespace=namespace, updates=UPDATES, objects=OBJECTS)
        progress(f"writer process: {UPDATES} updates in {max(w[2] for w in writes) - started:.2f} s incl. start-up")
        _wait_for(f"{UPDATES} updates to be synced", lambda: recorder.counts()[1] >= UPDATES, COMPLETION_TIMEOUT_S)
    finally:
        controller.shutdown(timeout=5)
        factory.stop()
        api.close()
    return recorder, watches.arrivals, writes


def run(kubeconfig: str | None) -> list[Figure]:
    """Burst ``UPDATES`` updates at ``OBJECTS`` ConfigMaps and report the sync-start latencies."""
    assert kubeconfig is not None
    with connect(kubeconfig) as rest, bench_namespace(rest, "latency") as namespace:
        create_config_maps(rest, namespace, OBJECTS)
        recorder, arrivals, writes = _burst(kubeconfig, namespace)
    returned = {rv: back for rv, _sent, back in writes}
    burst_s = max(back for _rv, _sent, back in writes) - min(sent for _rv, sent, _back in writes)
    latencies: dict[str, list[float]] = {"in-process": [], "write returned": [], "write sent": []}
    for started, events in recorder.syncs:
        rv, sent = events[0]
        latencies["in-process"].append(started - arrivals[rv])
        latencies["write returned"].append(started - returned[rv])
        latencies["write sent"].append(started - sent)
    figures = [
        Figure(f"burst: {UPDATES:,} updates to {OBJECTS} ConfigMaps, {WRITE_THREADS} writer threads", burst_s, "s"),
        Figure(f"syncs that covered the {UPDATES:,} updates (the queue dedups keys)", len(recorder.syncs), "syncs"),
    ]
    for label, values in latencies.items():
        what = "watch event arrival → sync start" if label == "in-process" else f"{label} → sync start"
        target = P99_TARGET_MS if label == "in-process" else None
        figures += [
            Figure(f"{what}, p50", 1000 * percentile(values, 50), "ms"),
            Figure(f"{what}, p99", 1000 * percentile(values, 99), "ms", target),
        ]
    figures.append(Figure("watch event arrival → sync start, max", 1000 * max(latencies["in-process"]), "ms"))
    return figures


BENCHMARK = Benchmark(
    "event-latency", f"watch event → sync start under a burst of {UPDATES:,} updates", True, run
)

if __name__ == "__main__":
    child_main(write_burst)
