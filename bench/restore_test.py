"""restore-test: API requests and operator overhead of one ``LazarusRestoreTest``, end to end.

Set-up (not part of any figure): for each application size, a source namespace holding a
Deployment (1 replica), a ConfigMap, a Secret and a Service — "large" adds ``EXTRA_CONFIG_MAPS``
ConfigMaps — and a Velero Backup of it, waited for (by a watch) until ``Completed``. Then a fresh
``lazarus run`` (leader election off: the only replica; its namespace is the throw-away namespace
the tests are created in), and in this process two informers: the tests (of every namespace: see
below), and the Velero Restores labelled with the tests' namespace. Each watch event is stamped
with ``time.monotonic()`` when its handler runs: every stamp is "when a watcher learnt of it", and
a test is "created" when its ADDED event arrives, as a Restore "appears".

Per size, ``RUNS`` times (a new test each time):

1. wait until the operator is quiet (its request counters unchanged for ``QUIET_S``) and read
   ``lazarus_api_requests_total`` from its /metrics;
2. create a test of the backup with ``cleanup: {enabled: true}``, wait (watch) for phase
   ``Succeeded`` and condition ``CleanupCompleted`` True; wait until quiet, read the counters
   again: the difference is the API requests of one validation run (WATCH counts once per start);
3. delete the test and wait until it is gone (the operator releases its finalizer); the requests
   that takes are reported apart, as information.

Every ``lazarus run`` reconciles every test in the cluster. On a shared test bed other tests (and
other operators) may be at work, so a run is discarded and redone when another operator recorded
an Event on its test, or when a test in another namespace changed while it was counted; before
each run the benchmark waits until tests elsewhere have been still for ``ELSEWHERE_QUIET_S``.

Timings, per run, from the local stamps:

- operator overhead = (test ``Succeeded`` − test created) − (Restore terminal − Restore appeared);
  it includes waiting for the restored Deployment to become available in the sandbox;
- test created → Velero Restore created (the ``backup-trigger`` benchmark measures the whole
  path from Backup ``Completed``, the architecture's target).

Targets: ≤ 30 API requests per run (the restore, verification and cleanup take 24; reporting the
result adds 3: the status write of the cost and notifications, the Event on the Backup, the
sandbox's pod list for the cost), none proportional to object count (large − small ≤ 0);
overhead ≤ 5 s; → Restore created p50 ≤ 100 ms, p99 ≤ 1 s (architecture, "Performance targets";
with ``RUNS`` samples the nearest-rank p99 is the max).
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from kubernetes import client

from bench.cluster import (
    BENCH_LABEL,
    ON_KWOK,
    LazarusProcess,
    Watches,
    bench_namespace,
    connect,
    create_config_maps,
    lazarus_run,
)
from bench.measure import Benchmark, Figure, percentile, progress
from lazarus.controllers.restoretest import BACKUP_IN_PROGRESS, RESTORE_TERMINAL
from lazarus.informers import (
    BACKUPS,
    LAZARUS_RESTORE_TESTS,
    NAMESPACES,
    RESTORES,
    DeletedFinalStateUnknown,
    Obj,
    Resource,
    SharedInformerFactory,
    final_object,
)
from lazarus.kube.client import ApiError, Rest
from lazarus.kube.conditions import TRUE, get_condition
from lazarus.lifecycle.status import (
    CHECKING,
    CLEANUP_COMPLETED,
    FAILED,
    RESTORING,
    SUCCEEDED,
    VERIFYING,
)
from lazarus.sandbox import TEST_NAMESPACE_LABEL, TEST_UID_LABEL

SIZES = {"small": 0, "large": 200}
"""Application size → ConfigMaps added to the four objects of the application."""
EXTRA_CONFIG_MAPS = SIZES["large"]
RUNS = 5
REQUESTS_TARGET = 30.0
OVERHEAD_TARGET_S = 5.0
RESTORE_CREATED_P50_TARGET_MS = 100.0
RESTORE_CREATED_P99_TARGET_MS = 1000.0
TOP_REQUESTS = 3
"""Verb/resource lines of the request split shown in the table; ``--json`` has them all."""

VELERO_NAMESPACE = "velero"  # the test bed's, and ``lazarus run``'s default
VELERO_API = f"/apis/velero.io/v1/namespaces/{VELERO_NAMESPACE}"
QUIET_S = 1.0
"""The operator counts as quiet when its request counters did not move for this long."""
QUIET_TIMEOUT_S = 60.0
BACKUP_TIMEOUT_S = 180.0
RUN_TIMEOUT_S = 180.0
DELETE_TIMEOUT_S = 60.0
MAX_ATTEMPTS = 6 * RUNS
"""Disturbed runs (see ``_disturbance``) are redone, up to this many runs in all per size."""
ELSEWHERE_QUIET_S = 5.0
"""Before each run, wait until no test elsewhere in the cluster has changed for this long..."""
ELSEWHERE_QUIET_TIMEOUT_S = 120.0
"""... but not longer than this."""

Requests = Counter[tuple[str, str, str]]
"""Request counts by (verb, resource, code)."""


# ----------------------------------------------------------------------------- set-up


def _create_app(rest: Rest, namespace: str, extra_config_maps: int) -> int:
    """A small application in ``namespace`` (see the module docstring); return its object count."""
    labels = {"app": "shop"}
    core = f"/api/v1/namespaces/{namespace}"
    rest.request("POST", f"/apis/apps/v1/namespaces/{namespace}/deployments", body={
        "metadata": {"name": "shop", "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "shop", "image": "registry.invalid/shop:1"}], **ON_KWOK},
        }},
    })  # fmt: skip
    rest.request("POST", f"{core}/configmaps", body={"metadata": {"name": "shop-config"}, "data": {"mode": "prod"}})
    rest.request("POST", f"{core}/secrets", body={"metadata": {"name": "shop-db"}, "stringData": {"password": "x"}})
    rest.request("POST", f"{core}/services", body={
        "metadata": {"name": "shop"}, "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]},
    })  # fmt: skip
    if extra_config_maps:
        create_config_maps(rest, namespace, extra_config_maps, prefix="extra")
    return 4 + extra_config_maps


def _watch_until(
    api: client.ApiClient,
    resource: Resource,
    namespace: str,
    name: str,
    done: Callable[[Obj | None], bool],
    timeout: float,
    what: str,
) -> Obj | None:
    """Watch one object until ``done(object)`` (``done(None)``: it is gone); return what ``done`` accepted."""
    factory = SharedInformerFactory.for_api_client(api, resync_period=0)
    informer = factory.informer_for(resource, namespace=namespace, field_selector=f"metadata.name={name}")
    accepted: list[Obj | None] = []
    finished = threading.Event()

    def check(obj: Obj | None) -> None:
        if not finished.is_set() and done(obj):
            accepted.append(obj)
            finished.set()

    informer.add_event_handler(check, lambda _old, new: check(new), lambda _obj: check(None))
    factory.start()
    try:
        if not factory.wait_for_cache_sync(timeout=60):
            raise TimeoutError(f"the watch for {what} did not sync within 60 s")
        if not informer.store.list():
            check(None)  # not there at all: no deletion event will come
        if not finished.wait(timeout):
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
    finally:
        factory.stop()
    return accepted[0]


def _velero_phase(obj: Obj | None) -> str:
    return str(((obj or {}).get("status") or {}).get("phase") or "")


@contextmanager
def _completed_backup(rest: Rest, namespace: str) -> Iterator[tuple[str, float, int]]:
    """A Velero Backup of ``namespace``, waited for until Completed: ``(name, seconds, items)``.

    Deleted on the way out the Velero way (a DeleteBackupRequest, which also removes its files
    from the object store; a plain delete would come back with Velero's sync); its ttl of one
    hour is the fallback.
    """
    name = f"{namespace}-{uuid.uuid4().hex[:4]}"
    body = {
        "apiVersion": BACKUPS.api_version, "kind": BACKUPS.kind,
        "metadata": {"name": name, "namespace": VELERO_NAMESPACE, "labels": dict([BENCH_LABEL])},
        "spec": {"includedNamespaces": [namespace], "ttl": "1h0m0s"},
    }  # fmt: skip
    started = time.monotonic()
    rest.request("POST", f"{VELERO_API}/backups", body=body)
    try:
        backup = _watch_until(
            rest.api, BACKUPS, VELERO_NAMESPACE, name,
            lambda obj: obj is None or _velero_phase(obj) not in BACKUP_IN_PROGRESS, BACKUP_TIMEOUT_S,
            f"backup {name}",
        )  # fmt: skip
        if _velero_phase(backup) != "Completed":
            raise RuntimeError(f"Velero backup {name} ended {_velero_phase(backup) or 'deleted'}, not Completed")
        assert backup is not None
        elapsed = time.monotonic() - started
        items = int((backup["status"].get("progress") or {}).get("totalItems") or 0)
        progress(f"backup {name} of {namespace}: Completed, {items} items, in {elapsed:.1f} s")
        yield name, elapsed, items
    finally:
        _delete_backup(rest, name)


def _delete_backup(rest: Rest, backup: str) -> None:
    request = f"bench-delete-{uuid.uuid4().hex[:8]}"
    try:
        rest.request("POST", f"{VELERO_API}/deletebackuprequests", body={
            "apiVersion": "velero.io/v1", "kind": "DeleteBackupRequest",
            "metadata": {"name": request, "namespace": VELERO_NAMESPACE, "labels": dict([BENCH_LABEL])},
            "spec": {"backupName": backup},
        })  # fmt: skip
        _watch_until(rest.api, BACKUPS, VELERO_NAMESPACE, backup, lambda obj: obj is None, 120, f"{backup} deletion")
        _delete_quietly(rest, f"{VELERO_API}/deletebackuprequests/{request}")
        progress(f"deleted backup {backup}")
    except (ApiError, TimeoutError) as error:
        progress(f"WARNING: could not delete backup {backup} (its ttl is 1 h): {error}")


def _delete_quietly(rest: Rest, path: str) -> None:
    try:
        rest.request("DELETE", path)
    except ApiError as error:
        if not error.not_found:
            raise


# ----------------------------------------------------------------------------- watching the tests


CREATED, RESTORE_APPEARED, RESTORE_TERMINAL_SEEN, CLEANED = "created", "restore appeared", "restore ended", "cleaned"


@dataclass
class _Seen:
    """What the watches saw of one test and its Velero Restore."""

    stamps: dict[str, float] = field(default_factory=dict)
    """When (``time.monotonic()``) each was first seen: ``CREATED``, each phase of the test,
    ``CLEANED`` (condition CleanupCompleted True), ``RESTORE_APPEARED``, ``RESTORE_TERMINAL_SEEN``."""
    test: Obj = field(default_factory=dict)
    """The latest state of the test."""
    gone: bool = False

    def between(self, start: str, end: str) -> float:
        """Seconds from stamp ``start`` to stamp ``end``."""
        missing = [what for what in (start, end) if what not in self.stamps]
        if missing:
            raise RuntimeError(f"the benchmark's watches never saw {' or '.join(missing)}")
        return self.stamps[end] - self.stamps[start]


class _Watcher(Watches):
    """The tests in one namespace and the Velero Restores made for them, stamped as their events
    arrive; and when tests elsewhere in the cluster last changed (``lazarus run`` reconciles those
    too: its requests for them must not be counted as this test's)."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        super().__init__(api)
        self._namespace = namespace
        tests = self.factory.informer_for(LAZARUS_RESTORE_TESTS)
        restores = self.factory.informer_for(
            RESTORES, namespace=VELERO_NAMESPACE, label_selector=f"{TEST_NAMESPACE_LABEL}={namespace}"
        )
        self._seen: dict[str, _Seen] = {}
        self._elsewhere: dict[str, float] = {}
        """``namespace/name`` of tests in other namespaces → when last added, changed or deleted."""
        tests.add_event_handler(self._on_test, lambda _old, new: self._on_test(new), self._on_test_deleted)
        restores.add_event_handler(self._on_restore, lambda _old, new: self._on_restore(new))

    def _on_test(self, test: Obj) -> None:
        stamp = time.monotonic()
        status = test.get("status") or {}
        with self.changed:
            if self._changed_elsewhere(test, stamp):
                return
            seen = self._seen.setdefault(test["metadata"]["uid"], _Seen())
            seen.stamps.setdefault(CREATED, stamp)
            if status.get("phase"):
                seen.stamps.setdefault(status["phase"], stamp)
            if (get_condition(status.get("conditions"), CLEANUP_COMPLETED) or {}).get("status") == TRUE:
                seen.stamps.setdefault(CLEANED, stamp)
            seen.test = test
            self.changed.notify_all()

    def _on_test_deleted(self, test: Obj | DeletedFinalStateUnknown) -> None:
        with self.changed:
            if self._changed_elsewhere(final_object(test), time.monotonic()):
                return
            self._seen.setdefault(final_object(test)["metadata"]["uid"], _Seen()).gone = True
            self.changed.notify_all()

    def _changed_elsewhere(self, test: Obj, stamp: float) -> bool:
        """Note a test of another namespace; whether it was one."""
        metadata = test["metadata"]
        if metadata["namespace"] == self._namespace:
            return False
        self._elsewhere[f"{metadata['namespace']}/{metadata['name']}"] = stamp
        self.changed.notify_all()
        return True

    def changed_elsewhere(self, since: float) -> list[str]:
        """Tests of other namespaces that changed after ``since`` (``time.monotonic()``)."""
        with self.changed:
            return sorted(key for key, stamp in self._elsewhere.items() if stamp > since)

    def wait_quiet_elsewhere(self, quiet: float, timeout: float) -> None:
        """Wait until no test of another namespace has changed for ``quiet`` seconds (at most ``timeout``)."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while (last := max(self._elsewhere.values(), default=0.0)) > time.monotonic() - quiet:
                if time.monotonic() > deadline:
                    progress(f"WARNING: tests elsewhere in the cluster kept changing for {timeout:.0f} s")
                    return
                self.changed.wait(last + quiet - time.monotonic())

    def _on_restore(self, restore: Obj) -> None:
        stamp = time.monotonic()
        uid = (restore["metadata"].get("labels") or {}).get(TEST_UID_LABEL)
        if not uid:
            return
        with self.changed:
            seen = self._seen.setdefault(uid, _Seen())
            seen.stamps.setdefault(RESTORE_APPEARED, stamp)
            if _velero_phase(restore) in RESTORE_TERMINAL:
                seen.stamps.setdefault(RESTORE_TERMINAL_SEEN, stamp)
            self.changed.notify_all()

    def wait(self, uid: str, what: str, done: Callable[[_Seen], bool], timeout: float, *, fail: bool = True) -> _Seen:
        """Wait until ``done(what was seen of test uid)``; raise when time runs out, or (``fail``) when
        the test failed."""
        with self.changed:
            seen = self._seen.setdefault(uid, _Seen())
            if not self.changed.wait_for(lambda: done(seen) or (fail and FAILED in seen.stamps), timeout):
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what} (seen: {list(seen.stamps)})")
            if not done(seen):
                status = seen.test.get("status") or {}
                raise RuntimeError(f"the test failed: {status.get('reason')}: {status.get('message')}")
            return seen


# ----------------------------------------------------------------------------- one validation run


def _quiet_counts(operator: LazarusProcess) -> Requests:
    """The operator's request counters, once they stood still for ``QUIET_S``.

    The counters are read, not the cluster's state: what the operator is doing cannot be watched.
    """
    counts = Counter(operator.api_requests())
    deadline = time.monotonic() + QUIET_TIMEOUT_S
    while True:
        time.sleep(QUIET_S)
        again = Counter(operator.api_requests())
        if again == counts:
            return counts
        if time.monotonic() > deadline:
            raise TimeoutError(f"lazarus run still sending requests after {QUIET_TIMEOUT_S:.0f} s")
        counts = again


@contextmanager
def _restore_test(rest: Rest, watcher: _Watcher, namespace: str, backup: str) -> Iterator[str]:
    """Create a test of ``backup``; yield its UID; delete it and wait until it is gone."""
    name = f"{backup}-{uuid.uuid4().hex[:6]}"
    collection = LAZARUS_RESTORE_TESTS.collection_path(namespace)
    body = {
        "apiVersion": LAZARUS_RESTORE_TESTS.api_version, "kind": LAZARUS_RESTORE_TESTS.kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"backupName": backup, "cleanup": {"enabled": True}},
    }  # fmt: skip
    uid = rest.request("POST", collection, body=body)["metadata"]["uid"]
    try:
        yield uid
    finally:
        _delete_quietly(rest, f"{collection}/{name}")
        try:
            watcher.wait(uid, f"test {name} to be deleted", lambda seen: seen.gone, DELETE_TIMEOUT_S, fail=False)
        except TimeoutError as error:
            _remove_leftovers(rest, f"{collection}/{name}", uid, error)


def _remove_leftovers(rest: Rest, path: str, uid: str, error: Exception) -> None:
    """The operator did not release a test (it died?): do its cleanup, then drop the finalizer."""
    progress(f"WARNING: {error}; removing what test {uid} left behind")
    selector = {"labelSelector": f"{TEST_UID_LABEL}={uid}"}
    for sandbox in rest.request("GET", NAMESPACES.collection_path(), query=selector).get("items") or []:
        _delete_quietly(rest, f"/api/v1/namespaces/{sandbox['metadata']['name']}")
    for restore in rest.request("GET", f"{VELERO_API}/restores", query=selector).get("items") or []:
        _delete_quietly(rest, f"{VELERO_API}/restores/{restore['metadata']['name']}")
        _delete_quietly(rest, f"/api/v1/namespaces/{VELERO_NAMESPACE}/configmaps/{restore['metadata']['name']}")
    try:
        body = {"metadata": {"finalizers": None}}
        rest.request("PATCH", path, body=body, content_type="application/merge-patch+json")
    except ApiError as patch_error:
        if not patch_error.not_found:
            raise


@dataclass
class _Run:
    """What one validation run measured."""

    requests: Requests
    delete_requests: int
    seen: _Seen

    @property
    def restore_s(self) -> float:
        return self.seen.between(RESTORE_APPEARED, RESTORE_TERMINAL_SEEN)

    @property
    def overhead_s(self) -> float:
        return self.seen.between(CREATED, SUCCEEDED) - self.restore_s

    @property
    def restore_created_ms(self) -> float:
        return 1000 * self.seen.between(CREATED, RESTORE_APPEARED)


def _disturbance(rest: Rest, watcher: _Watcher, namespace: str, uid: str, identity: str, since: float) -> str:
    """Why the requests counted since ``since`` may not be the test's own; empty if they are.

    Every ``lazarus run`` reconciles every test in the cluster: this one works on tests elsewhere
    (a shared test bed running other tests), and an operator started elsewhere works on this
    test — a transition it made shows as its ``reportingInstance`` on the test's Events.
    """
    query = {"fieldSelector": f"involvedObject.uid={uid}"}
    events = rest.request("GET", f"/api/v1/namespaces/{namespace}/events", query=query).get("items") or []
    others = {e.get("reportingInstance") or "?" for e in events} - {identity}
    if others:
        return f"another operator worked on the test too ({', '.join(sorted(others))})"
    elsewhere = watcher.changed_elsewhere(since)
    if elsewhere:
        return f"tests elsewhere changed meanwhile ({', '.join(elsewhere[:3])}{', ...' if elsewhere[3:] else ''})"
    return ""


def _validation_runs(
    rest: Rest, operator: LazarusProcess, identity: str, watcher: _Watcher, namespace: str, size: str, backup: str
) -> tuple[list[_Run], int]:
    """``RUNS`` undisturbed validation runs, and how many disturbed ones were discarded."""
    runs: list[_Run] = []
    discarded = 0
    while len(runs) < RUNS:
        if len(runs) + discarded >= MAX_ATTEMPTS:
            raise RuntimeError(f"{discarded} of {MAX_ATTEMPTS} runs were disturbed (other tests in the cluster)")
        label = f"{size} run {len(runs) + 1}/{RUNS}"
        watcher.wait_quiet_elsewhere(ELSEWHERE_QUIET_S, ELSEWHERE_QUIET_TIMEOUT_S)
        before = _quiet_counts(operator)
        since = time.monotonic() - QUIET_S  # the quiet spell's requests, if any, would have been its reaction
        with _restore_test(rest, watcher, namespace, backup) as uid:
            seen = watcher.wait(
                uid, f"{label}: Succeeded and CleanupCompleted",
                lambda seen: SUCCEEDED in seen.stamps and CLEANED in seen.stamps, RUN_TIMEOUT_S,
            )  # fmt: skip
            after = _quiet_counts(operator)
            disturbed = _disturbance(rest, watcher, namespace, uid, identity, since)
        run = _Run(after - before, (_quiet_counts(operator) - after).total(), seen)
        if disturbed:
            discarded += 1
            progress(f"{label}: discarded, {disturbed}")
            continue
        runs.append(run)
        progress(
            f"{label}: {run.requests.total()} requests, overhead {run.overhead_s:.2f} s, "
            f"test → restore {run.restore_created_ms:.0f} ms, restore {run.restore_s:.2f} s"
        )
    return runs, discarded


# ----------------------------------------------------------------------------- figures

BREAKDOWN = [
    (CREATED, RESTORING, "test created → phase Restoring (finalizer, backup contents read)"),
    (RESTORING, RESTORE_APPEARED, "phase Restoring → Velero Restore created (sandbox made)"),
    (RESTORE_TERMINAL_SEEN, VERIFYING, "Velero Restore ended → phase Verifying"),
    (VERIFYING, CHECKING, "phase Verifying → Checking (restored Deployment available)"),
    (CHECKING, SUCCEEDED, "phase Checking → Succeeded"),
    (SUCCEEDED, CLEANED, "Succeeded → CleanupCompleted (sandbox and Restore gone)"),
]


def _request_figures(size: str, runs: list[_Run]) -> list[Figure]:
    totals = [run.requests.total() for run in runs]
    worst = max(runs, key=lambda run: run.requests.total())
    split: Counter[str] = Counter()
    for (verb, resource, _code), count in worst.requests.items():
        split[f"{verb} {resource}"] += count
    failed = max(sum(n for (_v, _r, code), n in run.requests.items() if not code.startswith("2")) for run in runs)
    figures = [
        Figure(f"{size}: API requests per validation run, median of {RUNS}", statistics.median(totals), "requests",
               REQUESTS_TARGET),
        Figure(f"{size}: API requests per validation run, max of {RUNS}", max(totals), "requests", REQUESTS_TARGET),
    ]  # fmt: skip
    figures += [
        Figure(f"{size}:   of which {key} (run with the most)", count, "requests", detail=index >= TOP_REQUESTS)
        for index, (key, count) in enumerate(split.most_common())
    ]
    figures += [
        Figure(f"{size}: answers other than 2xx per run, max", failed, "requests"),
        Figure(f"{size}: API requests to delete a finished test, max", max(r.delete_requests for r in runs),
               "requests", detail=True),
    ]  # fmt: skip
    return figures


def _timing_figures(size: str, runs: list[_Run]) -> list[Figure]:
    overheads = [run.overhead_s for run in runs]
    latencies_ms = [run.restore_created_ms for run in runs]
    figures = [
        Figure(f"{size}: operator overhead (test duration − Velero restore), median of {RUNS}",
               statistics.median(overheads), "s", OVERHEAD_TARGET_S),
        Figure(f"{size}: operator overhead, max of {RUNS}", max(overheads), "s", OVERHEAD_TARGET_S),
        Figure(f"{size}: test created → Velero Restore created, p50", percentile(latencies_ms, 50), "ms",
               RESTORE_CREATED_P50_TARGET_MS),
        Figure(f"{size}: test created → Velero Restore created, p99 (= max of {RUNS})",
               percentile(latencies_ms, 99), "ms", RESTORE_CREATED_P99_TARGET_MS),
        Figure(f"{size}: Velero restore (created → terminal), median",
               statistics.median(r.restore_s for r in runs), "s"),
        Figure(f"{size}: test created → Succeeded, median",
               statistics.median(r.seen.between(CREATED, SUCCEEDED) for r in runs), "s"),
    ]  # fmt: skip
    figures += [
        Figure(
            f"{size}: {label}, median", statistics.median(r.seen.between(start, end) for r in runs), "s", detail=True
        )
        for start, end, label in BREAKDOWN
    ]
    return figures


def run(kubeconfig: str | None) -> list[Figure]:
    """Back up both applications, then validate each backup ``RUNS`` times with a fresh operator."""
    assert kubeconfig is not None
    figures: list[Figure] = []
    medians: dict[str, float] = {}
    with connect(kubeconfig) as rest, bench_namespace(rest, "rt-tests") as tests, ExitStack() as stack:
        backups: dict[str, str] = {}
        for size, extra in SIZES.items():
            source = stack.enter_context(bench_namespace(rest, f"rt-{size}"))
            objects = _create_app(rest, source, extra)
            backups[size], elapsed, items = stack.enter_context(_completed_backup(rest, source))
            figures.append(Figure(f"{size}: setup: backup of {objects} objects ({items} items) (not timed)",
                                  elapsed, "s"))  # fmt: skip
        # Failed tests of others (no ttl) are left alone for a day, not cleaned up mid-measurement.
        identity = f"lazarus-bench-{uuid.uuid4().hex[:6]}"
        operator = stack.enter_context(
            lazarus_run(kubeconfig, "--no-leader-elect", "--identity", identity, "--namespace", tests,
                        "--failure-retention", "86400")
        )  # fmt: skip
        progress(f"lazarus run ready in {operator.wait_ready():.1f} s")
        watcher = _Watcher(rest.api, tests)
        stack.callback(watcher.stop)
        watcher.start()
        for size in SIZES:
            runs, discarded = _validation_runs(rest, operator, identity, watcher, tests, size, backups[size])
            medians[size] = statistics.median(r.requests.total() for r in runs)
            figures += _request_figures(size, runs) + _timing_figures(size, runs)
            figures.append(Figure(f"{size}: runs discarded (other tests in the cluster meanwhile)", discarded,
                                  "runs", detail=not discarded))  # fmt: skip
    figures.append(Figure(f"large − small: API requests per run (medians; {EXTRA_CONFIG_MAPS} more objects)",
                          medians["large"] - medians["small"], "requests", 0.0))  # fmt: skip
    return figures


BENCHMARK = Benchmark(
    "restore-test", f"API requests and operator overhead of a LazarusRestoreTest ({RUNS} runs × 2 sizes)", True, run
)
