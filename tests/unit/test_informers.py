"""Unit tests of lazarus.informers, with a scripted fake transport and fake clocks (no cluster).

The fake transport (``ScriptedListerWatcher``) answers LISTs with scripted pages and WATCHes with
scripted event streams. When the watch script runs out, a watch behaves like a real idle watch:
it blocks until it is closed, and sets ``idle`` so the test knows everything was consumed.
Reflector tests use ``SkippingClock``, which records every wait and jumps straight to its
deadline, so backoffs take no real time and their lengths can be asserted.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY

from lazarus.informers import (
    CONFIG_MAPS,
    NAMESPACE_INDEX,
    NAMESPACES,
    ApiError,
    DeletedFinalStateUnknown,
    Obj,
    Query,
    Reflector,
    Resource,
    SharedInformer,
    SharedInformerFactory,
    Store,
    deep_copy,
    final_object,
    is_resync,
    label_index,
    object_key,
)
from lazarus.informers.backoff import BACKOFF_INITIAL, BACKOFF_MAX, BACKOFF_RESET_AFTER, Backoff
from lazarus.informers.reflector import MIN_WATCH_TIMEOUT, PAGE_SIZE
from lazarus.informers.transport import ListPage, WatchEvent, decode_watch_stream
from tests.fakeclock import FakeClock
from tests.waiting import JOIN_TIMEOUT, wait_until

QUERY = Query(CONFIG_MAPS, "default")


# --- helpers -------------------------------------------------------------------------------------


def flush_dispatcher(informer: SharedInformer) -> None:
    """Wait until the informer's handlers have been given everything queued for them so far.

    A handler added now gets one add per cached object, queued after everything before it.
    """
    late = Recorder()
    late.register(informer)
    wait_until(lambda: len(late.events) == len(informer.store))


def cm(name: str, rv: str, namespace: str | None = "default", labels: dict[str, str] | None = None) -> Obj:
    """A ConfigMap as a list item (no kind/apiVersion), with managedFields like the server sends."""
    metadata: dict[str, Any] = {"name": name, "resourceVersion": rv, "managedFields": [{"manager": "kubectl"}]}
    if namespace:
        metadata["namespace"] = namespace
    if labels:
        metadata["labels"] = labels
    return {"metadata": metadata, "data": {"v": rv}}


def event(kind: str, obj: Obj) -> WatchEvent:
    return WatchEvent(kind, obj)


def bookmark(rv: str) -> WatchEvent:
    return WatchEvent("BOOKMARK", {"kind": "ConfigMap", "metadata": {"resourceVersion": rv}})


def gone_event() -> WatchEvent:
    return WatchEvent(
        "ERROR",
        {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old resource version: 1 (5)"},
    )


def gone() -> ApiError:
    return ApiError(410, "Expired", "too old resource version")


Step = WatchEvent | Exception


class ScriptedStream:
    """A watch stream that plays a script; an exception in the script is raised where it stands.

    An unscripted stream (``steps is None``) is an idle watch: it blocks until closed.
    """

    def __init__(self, steps: list[Step] | None, idle: threading.Event) -> None:
        self._steps = steps
        self._idle = idle
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[WatchEvent]:
        if self._steps is None:
            self._idle.set()
            self.closed.wait()
            return
        for step in self._steps:
            if isinstance(step, Exception):
                raise step
            yield step

    def close(self) -> None:
        self.closed.set()


class ScriptedListerWatcher:
    """A ``ListerWatcher`` that plays scripted list answers and watch streams, recording calls."""

    def __init__(self, lists: list[ListPage | Exception], watches: list[list[Step] | Exception] | None = None) -> None:
        self.lists: deque[ListPage | Exception] = deque(lists)
        self.watches: deque[list[Step] | Exception] = deque(watches or [])
        self.list_calls: list[tuple[Query, int, str | None]] = []
        self.watch_calls: list[tuple[Query, str, int]] = []
        self.streams: list[ScriptedStream] = []
        self.idle = threading.Event()

    def watch(self, query: Query, *, resource_version: str, timeout_seconds: int) -> ScriptedStream:
        self.watch_calls.append((query, resource_version, timeout_seconds))
        script = self.watches.popleft() if self.watches else None
        if isinstance(script, Exception):
            raise script
        stream = ScriptedStream(script, self.idle)
        self.streams.append(stream)
        return stream

    @property
    def watched_from(self) -> list[str]:
        return [rv for _query, rv, _timeout in self.watch_calls]

    @property
    def continue_tokens(self) -> list[str | None]:
        return [token for _query, _limit, token in self.list_calls]

    # Last: in the class body, the name ``list`` means this method from here on.
    def list(self, query: Query, *, limit: int, continue_token: str | None) -> ListPage:
        self.list_calls.append((query, limit, continue_token))
        answer = self.lists.popleft()
        if isinstance(answer, Exception):
            raise answer
        return answer


class SkippingClock(FakeClock):
    """A fake clock on which every wait with a deadline jumps straight to it (and is recorded)."""

    def __init__(self) -> None:
        super().__init__(1000.0)
        self.waits: list[float] = []

    def wait(self, condition: threading.Condition, deadline: float | None) -> None:
        if deadline is None:
            super().wait(condition, deadline)
            return
        delay = max(0.0, deadline - self.now())
        self.waits.append(delay)
        self.step(delay)


def run_reflector(lw: ScriptedListerWatcher) -> tuple[Reflector, Store, SkippingClock]:
    """Run a reflector into a fresh store until the script is used up (an idle watch), then stop it."""
    sink = Store()
    clock = SkippingClock()
    reflector = Reflector(QUERY, lw, sink, clock=clock, rng=random.Random(7))
    thread = threading.Thread(target=reflector.run)
    thread.start()
    try:
        assert lw.idle.wait(JOIN_TIMEOUT), "the reflector did not reach an idle watch"
    finally:
        reflector.stop()
        thread.join(JOIN_TIMEOUT)
    assert not thread.is_alive()
    return reflector, sink, clock


class Recorder:
    """Event handler callbacks that record what they got, and on which thread."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any, Any]] = []
        self.threads: set[str] = set()

    def on_add(self, obj: Obj) -> None:
        self._record("add", None, obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        self._record("update", old, new)

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self._record("delete", obj, None)

    def _record(self, kind: str, old: Any, new: Any) -> None:
        self.threads.add(threading.current_thread().name)
        self.events.append((kind, old, new))

    def summary(self) -> list[tuple[str, str, str]]:
        """``(kind, key, resourceVersion)`` per event; tombstones show as ``delete-unknown``."""
        rows = []
        for kind, old, new in self.events:
            obj = new if new is not None else final_object(old)
            label = "delete-unknown" if isinstance(old, DeletedFinalStateUnknown) else kind
            rows.append((label, object_key(obj), obj["metadata"]["resourceVersion"]))
        return rows

    def register(self, informer: SharedInformer) -> None:
        informer.add_event_handler(self.on_add, self.on_update, self.on_delete)


# --- resource and transport ----------------------------------------------------------------------


def test_collection_paths_for_core_and_group_resources() -> None:
    backups = Resource("velero.io", "v1", "backups", True, "Backup")
    assert CONFIG_MAPS.collection_path() == "/api/v1/configmaps"
    assert CONFIG_MAPS.collection_path("velero") == "/api/v1/namespaces/velero/configmaps"
    assert backups.collection_path() == "/apis/velero.io/v1/backups"
    assert backups.collection_path("velero") == "/apis/velero.io/v1/namespaces/velero/backups"
    assert (backups.api_version, CONFIG_MAPS.api_version) == ("velero.io/v1", "v1")
    assert NAMESPACES.collection_path() == "/api/v1/namespaces"
    with pytest.raises(ValueError, match="cluster-scoped"):
        Query(NAMESPACES, "default")


def test_query_selectors_become_parameters_and_queries_are_keys() -> None:
    query = Query(CONFIG_MAPS, None, "app=shop", "metadata.name=x")
    assert query.selector_params() == [("labelSelector", "app=shop"), ("fieldSelector", "metadata.name=x")]
    assert Query(CONFIG_MAPS).selector_params() == []
    assert {query: 1}[Query(CONFIG_MAPS, None, "app=shop", "metadata.name=x")] == 1


def test_decode_watch_stream_reassembles_lines_across_chunks() -> None:
    a = b'{"type":"ADDED","object":{"metadata":{"name":"a"}}}'
    b = b'{"type":"DELETED","object":{"metadata":{"name":"b"}}}'
    c = b'{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}}'
    chunks = [a[:10], a[10:] + b"\n" + b + b"\n\n", c[:5], c[5:]]  # split, joined, blank, no final newline
    events = list(decode_watch_stream(chunks))
    assert [(e.type, e.object["metadata"]) for e in events] == [
        ("ADDED", {"name": "a"}),
        ("DELETED", {"name": "b"}),
        ("BOOKMARK", {"resourceVersion": "9"}),
    ]


@pytest.mark.parametrize(
    ("error", "expired", "transient"),
    [
        (ApiError(410, "Expired", "too old resource version: 1 (5)"), True, False),
        (ApiError(410, "Gone", ""), True, False),
        (ApiError(500, "InternalError", "too old resource version: 1 (5)"), True, True),
        (ApiError(503, "ServiceUnavailable", ""), False, True),
        (ApiError(429, "TooManyRequests", ""), False, True),
        (ApiError(403, "Forbidden", ""), False, False),
    ],
)
def test_api_error_classification(error: ApiError, expired: bool, transient: bool) -> None:
    assert (error.expired, error.transient) == (expired, transient)


def test_api_error_from_a_watch_status() -> None:
    error = ApiError.from_status(gone_event().object)
    assert (error.status, error.reason, error.expired) == (410, "Expired", True)
    assert ApiError.from_status({"message": "boom"}, 502).status == 502


# --- backoff -------------------------------------------------------------------------------------


def test_backoff_grows_doubles_and_caps_within_jitter_bounds() -> None:
    clock = FakeClock()
    backoff = Backoff(clock, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(12)]
    for n, delay in enumerate(delays):
        base = min(BACKOFF_MAX, BACKOFF_INITIAL * 2**n)
        assert base <= delay <= min(BACKOFF_MAX, 2 * base), (n, delay)
    assert max(delays) <= BACKOFF_MAX
    assert delays[-1] == BACKOFF_MAX  # from 25.6 s on, any jitter hits the cap


@pytest.mark.parametrize(("draw", "first"), [(0.0, BACKOFF_INITIAL), (0.5, 1.5 * BACKOFF_INITIAL)])
def test_backoff_jitter_stretches_by_the_drawn_fraction(draw: float, first: float) -> None:
    class Fixed(random.Random):
        def random(self) -> float:
            return draw

    backoff = Backoff(FakeClock(), rng=Fixed())
    assert backoff.next_delay() == pytest.approx(first)
    assert backoff.next_delay() == pytest.approx(2 * first)


def test_backoff_resets_after_a_healthy_period() -> None:
    clock = FakeClock()
    backoff = Backoff(clock, jitter=0.0)
    assert [backoff.next_delay() for _ in range(3)] == [0.8, 1.6, 3.2]
    clock.step(BACKOFF_RESET_AFTER - 1)
    assert backoff.next_delay() == 6.4  # not healthy long enough
    clock.step(BACKOFF_RESET_AFTER)
    assert backoff.next_delay() == 0.8


# --- store ---------------------------------------------------------------------------------------


def test_store_add_update_delete_get_list() -> None:
    store = Store()
    a1, b1, a2 = cm("a", "1"), cm("b", "2"), cm("a", "3")
    node = cm("node-1", "4", namespace=None)
    assert store.add(a1) is None
    store.add(b1)
    store.add(node)
    assert store.update(a2) is a1
    assert store.get_by_key("default/a") is a2  # the cached object itself, not a copy
    assert store.get(cm("a", "?")) is a2
    assert store.get_by_key("node-1") is node
    assert sorted(object_key(o) for o in store.list()) == ["default/a", "default/b", "node-1"]
    assert {id(o) for o in store.list()} == {id(a2), id(b1), id(node)}
    assert store.delete(cm("b", "5")) is b1
    assert store.delete(cm("b", "5")) is None
    assert store.get_by_key("default/b") is None
    assert len(store) == 2


def test_store_namespace_index_and_custom_indexes_follow_changes() -> None:
    by_schedule = label_index("velero.io/schedule-name")
    store = Store({"schedule": by_schedule})
    store.add(cm("b1", "1", "velero", {"velero.io/schedule-name": "daily"}))
    store.add(cm("b2", "2", "velero", {"velero.io/schedule-name": "daily"}))
    store.add(cm("b3", "3", "other", {"velero.io/schedule-name": "hourly"}))
    store.add(cm("manual", "4", "velero"))
    assert sorted(store.index_keys("schedule", "daily")) == ["velero/b1", "velero/b2"]
    assert sorted(object_key(o) for o in store.by_index(NAMESPACE_INDEX, "velero")) == [
        "velero/b1",
        "velero/b2",
        "velero/manual",
    ]
    store.update(cm("b2", "5", "velero", {"velero.io/schedule-name": "hourly"}))  # relabelled
    assert store.index_keys("schedule", "daily") == ["velero/b1"]
    assert sorted(store.index_keys("schedule", "hourly")) == ["other/b3", "velero/b2"]
    store.delete(cm("b1", "6", "velero"))
    assert store.by_index("schedule", "daily") == []
    assert store.by_index("schedule", "weekly") == []
    with pytest.raises(KeyError, match="no index named"):
        store.by_index("nope", "x")


def test_store_indexers_added_later_index_existing_objects() -> None:
    store = Store()
    store.add(cm("a", "1", labels={"tier": "db"}))
    store.add_indexers({"tier": label_index("tier")})
    assert store.index_keys("tier", "db") == ["default/a"]
    with pytest.raises(ValueError, match="already exists"):
        store.add_indexers({NAMESPACE_INDEX: label_index("x")})


def test_store_replace_returns_adds_updates_and_tombstones() -> None:
    store = Store({"tier": label_index("tier")})
    a1, b1 = cm("a", "1", labels={"tier": "db"}), cm("b", "2")
    store.replace([a1, b1], "2")
    a2, c = cm("a", "3"), cm("c", "4")
    changes = store.replace([a2, c], "4")
    assert changes.added == [c]
    assert changes.updated == [(a1, a2)]
    assert changes.deleted == [DeletedFinalStateUnknown("default/b", b1)]
    assert sorted(object_key(o) for o in store.list()) == ["default/a", "default/c"]
    assert store.index_keys("tier", "db") == []  # the old a's index entry went with it
    assert store.resource_version == "4"


def test_tombstone_helpers_and_deep_copy() -> None:
    obj = cm("a", "1")
    tombstone = DeletedFinalStateUnknown("default/a", obj)
    assert object_key(tombstone) == "default/a" and final_object(tombstone) is obj and final_object(obj) is obj
    copy = deep_copy(obj)
    assert copy == obj
    copy["metadata"]["managedFields"][0]["manager"] = "me"
    copy["data"]["v"] = "2"
    assert obj["metadata"]["managedFields"][0]["manager"] == "kubectl" and obj["data"]["v"] == "1"


# --- reflector -----------------------------------------------------------------------------------


def test_reflector_paginates_then_watches_from_the_list_resource_version() -> None:
    lw = ScriptedListerWatcher(
        [
            ListPage([cm("a", "1"), cm("b", "2")], "10", "page-2"),
            ListPage([cm("c", "3")], "10", "page-3"),
            ListPage([cm("d", "4")], "10", None),
        ]
    )
    reflector, store, _clock = run_reflector(lw)
    assert lw.continue_tokens == [None, "page-2", "page-3"]
    assert {limit for _q, limit, _t in lw.list_calls} == {PAGE_SIZE}
    assert sorted(object_key(o) for o in store.list()) == ["default/a", "default/b", "default/c", "default/d"]
    assert store.resource_version == "10"
    assert lw.watched_from == ["10"]
    assert reflector.has_synced and reflector.wait_for_sync(0)


def test_reflector_restarts_the_list_when_a_continue_token_expires() -> None:
    lw = ScriptedListerWatcher(
        [
            ListPage([cm("a", "1")], "10", "page-2"),
            gone(),
            ListPage([cm("a", "1")], "12", "page-2b"),
            ListPage([cm("b", "11")], "12", None),
        ]
    )
    _reflector, store, clock = run_reflector(lw)
    assert lw.continue_tokens == [None, "page-2", None, "page-2b"]
    assert sorted(object_key(o) for o in store.list()) == ["default/a", "default/b"]
    assert lw.watched_from == ["12"]
    assert clock.waits == []  # restarted at once


def test_watch_timeout_is_randomised_between_five_and_ten_minutes() -> None:
    lw = ScriptedListerWatcher([ListPage([], "1", None)], [[bookmark("2")], [bookmark("3")], [bookmark("4")]])
    run_reflector(lw)
    timeouts = [timeout for _q, _rv, timeout in lw.watch_calls]
    assert all(MIN_WATCH_TIMEOUT <= t < 2 * MIN_WATCH_TIMEOUT for t in timeouts)
    assert len(set(timeouts)) > 1


def test_reflector_strips_managed_fields_and_fills_kind() -> None:
    watched = cm("b", "11")
    watched.update(kind="ConfigMap", apiVersion="v1")
    lw = ScriptedListerWatcher([ListPage([cm("a", "1")], "10", None)], [[event("ADDED", watched)]])
    _reflector, store, _clock = run_reflector(lw)
    for key in ("default/a", "default/b"):
        obj = store.get_by_key(key)
        assert obj is not None and "managedFields" not in obj["metadata"]
        assert (obj["kind"], obj["apiVersion"]) == ("ConfigMap", "v1")


def test_watch_events_reach_the_store_and_normal_end_rewatches_from_the_last_rv() -> None:
    lw = ScriptedListerWatcher(
        [ListPage([cm("a", "1"), cm("b", "2")], "10", None)],
        [
            [event("ADDED", cm("c", "11")), event("MODIFIED", cm("a", "12"))],
            [event("DELETED", cm("b", "13"))],
        ],
    )
    reflector, store, clock = run_reflector(lw)
    assert lw.watched_from == ["10", "12", "13"]
    assert len(lw.list_calls) == 1
    assert sorted(object_key(o) for o in store.list()) == ["default/a", "default/c"]
    assert (store.get_by_key("default/a") or {})["metadata"]["resourceVersion"] == "12"
    assert reflector.resource_version == "13"
    assert reflector.last_success == clock.now()
    assert clock.waits == []


def test_bookmarks_move_the_resource_version() -> None:
    lw = ScriptedListerWatcher([ListPage([], "10", None)], [[bookmark("20"), bookmark("25")]])
    reflector, store, _clock = run_reflector(lw)
    assert lw.watched_from == ["10", "25"]
    assert len(store) == 0 and reflector.resource_version == "25"


@pytest.mark.parametrize(
    "expiry",
    [
        [event("ADDED", cm("c", "11")), gone_event()],
        [event("ADDED", cm("c", "11")), gone()],
        [event("ADDED", cm("c", "11")), ApiError(500, "InternalError", "too old resource version: 1 (5)")],
    ],
    ids=["error-event", "http-410", "old-server-500"],
)
def test_expired_watch_relists_at_once(expiry: list[Step]) -> None:
    lw = ScriptedListerWatcher(
        [ListPage([cm("a", "1"), cm("b", "2")], "10", None), ListPage([cm("a", "1"), cm("c", "11")], "30", None)],
        [expiry],
    )
    _reflector, store, clock = run_reflector(lw)
    assert len(lw.list_calls) == 2
    assert lw.watched_from == ["10", "30"]
    assert sorted(object_key(o) for o in store.list()) == ["default/a", "default/c"]
    assert clock.waits == []


def test_http_410_when_starting_a_watch_relists() -> None:
    lw = ScriptedListerWatcher([ListPage([cm("a", "1")], "10", None), ListPage([], "30", None)], [gone()])
    _reflector, store, clock = run_reflector(lw)
    assert lw.watched_from == ["10", "30"] and len(store) == 0 and clock.waits == []


def test_repeated_expiry_without_progress_backs_off() -> None:
    lists: list[ListPage | Exception] = [ListPage([], "10", None), ListPage([], "11", None), ListPage([], "12", None)]
    lw = ScriptedListerWatcher(lists, [gone(), gone()])
    _reflector, _store, clock = run_reflector(lw)
    assert lw.watched_from == ["10", "11", "12"]
    assert len(clock.waits) == 1 and BACKOFF_INITIAL <= clock.waits[0] <= 2 * BACKOFF_INITIAL


@pytest.mark.parametrize(
    "failure",
    [ConnectionResetError("reset by peer"), ApiError(503, "ServiceUnavailable", ""), ApiError(429, "TooMany", "")],
    ids=["connection", "503", "429"],
)
def test_transient_watch_failure_backs_off_and_rewatches_from_the_same_rv(failure: Exception) -> None:
    lw = ScriptedListerWatcher(
        [ListPage([cm("a", "1")], "10", None)],
        [[event("MODIFIED", cm("a", "11")), failure], failure, [bookmark("12")]],
    )
    _reflector, _store, clock = run_reflector(lw)
    assert len(lw.list_calls) == 1
    assert lw.watched_from == ["10", "11", "11", "12"]
    assert len(clock.waits) == 2
    assert BACKOFF_INITIAL <= clock.waits[0] <= 2 * BACKOFF_INITIAL
    assert 2 * BACKOFF_INITIAL <= clock.waits[1] <= 4 * BACKOFF_INITIAL


def test_other_api_errors_back_off_and_relist() -> None:
    lw = ScriptedListerWatcher(
        [ApiError(403, "Forbidden", "no"), ListPage([], "10", None), ListPage([], "20", None)],
        [ApiError(404, "NotFound", "crd gone")],
    )
    _reflector, _store, clock = run_reflector(lw)
    assert len(lw.list_calls) == 3 and lw.watched_from == ["10", "20"]
    assert len(clock.waits) == 2


def test_a_watch_that_ends_at_once_without_events_counts_as_a_failure() -> None:
    lw = ScriptedListerWatcher([ListPage([], "10", None)], [[], []])
    _reflector, _store, clock = run_reflector(lw)
    assert lw.watched_from == ["10", "10", "10"]
    assert len(clock.waits) == 2


def test_an_unexpected_error_is_logged_and_retried_like_any_failure() -> None:
    malformed = WatchEvent("MODIFIED", {"no": "metadata"})  # the store cannot key it
    lw = ScriptedListerWatcher([ListPage([], "10", None)], [[malformed], [bookmark("11")]])
    reflector, _store, clock = run_reflector(lw)
    assert lw.watched_from == ["10", "10", "11"] and len(clock.waits) == 1
    assert reflector.resource_version == "11"


def test_backoff_delays_grow_across_consecutive_failures() -> None:
    failures: list[list[Step] | Exception] = [ConnectionRefusedError() for _ in range(8)]
    lw = ScriptedListerWatcher([ListPage([], "10", None)], failures)
    _reflector, _store, clock = run_reflector(lw)
    assert len(clock.waits) == 8
    for n, delay in enumerate(clock.waits):
        base = min(BACKOFF_MAX, BACKOFF_INITIAL * 2**n)
        assert base <= delay <= min(BACKOFF_MAX, 2 * base)


def test_stop_interrupts_a_backoff_wait_and_an_idle_watch() -> None:
    clock = FakeClock()  # waits really park: only stop() can end this one
    lw = ScriptedListerWatcher([ApiError(500, "InternalError", "etcd down")])
    reflector = Reflector(QUERY, lw, Store(), clock=clock)
    thread = threading.Thread(target=reflector.run)
    thread.start()
    wait_until(clock.has_waiters)
    reflector.stop()
    thread.join(JOIN_TIMEOUT)
    assert not thread.is_alive() and not reflector.has_synced and not reflector.wait_for_sync(0)

    lw = ScriptedListerWatcher([ListPage([], "1", None)])
    reflector = Reflector(QUERY, lw, Store(), clock=FakeClock())
    thread = threading.Thread(target=reflector.run)
    thread.start()
    assert lw.idle.wait(JOIN_TIMEOUT)
    reflector.stop()
    thread.join(JOIN_TIMEOUT)
    assert not thread.is_alive() and lw.streams[-1].closed.is_set()


# --- shared informer -----------------------------------------------------------------------------


def make_informer(
    lw: ScriptedListerWatcher, clock: FakeClock | None = None, resync_period: float = 0.0
) -> SharedInformer:
    return SharedInformer(QUERY, lw, resync_period=resync_period, clock=clock or SkippingClock(), rng=random.Random(3))


@pytest.fixture
def informers() -> Iterator[list[SharedInformer]]:
    """Informers to stop after the test, whatever happens."""
    started: list[SharedInformer] = []
    yield started
    for informer in started:
        informer.stop()


def test_handlers_get_events_in_order_on_the_dispatcher_thread(informers: list[SharedInformer]) -> None:
    lw = ScriptedListerWatcher(
        [ListPage([cm("a", "1")], "10", None)],
        [[event("ADDED", cm("b", "11")), event("MODIFIED", cm("a", "12")), event("DELETED", cm("b", "13"))]],
    )
    informer = make_informer(lw)
    first, second = Recorder(), Recorder()
    first.register(informer)
    second.register(informer)
    informers.append(informer)
    informer.start()
    assert informer.wait_for_cache_sync(JOIN_TIMEOUT) and informer.has_synced
    expected = [
        ("add", "default/a", "1"),
        ("add", "default/b", "11"),
        ("update", "default/a", "12"),
        ("delete", "default/b", "13"),
    ]
    wait_until(lambda: len(second.events) == len(expected))
    assert first.summary() == expected and second.summary() == expected
    assert first.threads == {f"informer {QUERY} dispatch"}


def test_a_slow_handler_does_not_hold_up_the_watch(informers: list[SharedInformer]) -> None:
    release = threading.Event()
    lw = ScriptedListerWatcher(
        [ListPage([cm("a", "1")], "10", None)],
        [[event("MODIFIED", cm("a", "11")), event("ADDED", cm("b", "12"))]],
    )
    informer = make_informer(lw)
    recorder = Recorder()
    informer.add_event_handler(on_add=lambda obj: release.wait(JOIN_TIMEOUT))
    recorder.register(informer)
    informers.append(informer)
    informer.start()
    assert lw.idle.wait(JOIN_TIMEOUT)  # the reflector consumed the whole watch ...
    assert informer.store.get_by_key("default/b") is not None
    assert recorder.events == []  # ... while the first handler still blocks delivery
    release.set()
    wait_until(lambda: len(recorder.events) == 3)


def test_a_failing_handler_does_not_stop_delivery(informers: list[SharedInformer]) -> None:
    lw = ScriptedListerWatcher([ListPage([cm("a", "1"), cm("b", "2")], "10", None)])
    informer = make_informer(lw)

    def explode(obj: Obj) -> None:
        raise RuntimeError("handler bug")

    informer.add_event_handler(on_add=explode)
    recorder = Recorder()
    recorder.register(informer)
    informers.append(informer)
    informer.start()
    wait_until(lambda: len(recorder.events) == 2)


def test_relist_delivers_missed_deletes_as_tombstones(informers: list[SharedInformer]) -> None:
    lw = ScriptedListerWatcher(
        [
            ListPage([cm("a", "1"), cm("b", "2"), cm("c", "3")], "10", None),
            ListPage([cm("a", "1"), cm("c", "20")], "30", None),
        ],
        [[gone_event()]],
    )
    informer = make_informer(lw)
    recorder = Recorder()
    recorder.register(informer)
    informers.append(informer)
    informer.start()
    wait_until(lambda: len(recorder.events) == 6)
    assert recorder.summary()[3:] == [
        ("delete-unknown", "default/b", "2"),
        ("update", "default/a", "1"),
        ("update", "default/c", "20"),
    ]
    (_, tombstone, _), (_, old_a, new_a), (_, old_c, new_c) = recorder.events[3:]
    assert tombstone.object["data"] == {"v": "2"}  # the last state we knew
    assert is_resync(old_a, new_a) and not is_resync(old_c, new_c)


def test_resync_redelivers_the_cache_without_api_calls(informers: list[SharedInformer]) -> None:
    clock = FakeClock()
    lw = ScriptedListerWatcher([ListPage([cm("a", "1"), cm("b", "2")], "10", None)])
    informer = make_informer(lw, clock=clock, resync_period=60.0)
    recorder = Recorder()
    recorder.register(informer)
    informers.append(informer)
    informer.start()
    assert lw.idle.wait(JOIN_TIMEOUT)
    wait_until(lambda: len(recorder.events) == 2)
    wait_until(clock.has_waiters)  # the resync timer is parked
    clock.step(59.0)
    clock.wait_for_waiters()  # the timer woke, found no resync due, and parked again
    flush_dispatcher(informer)
    assert len(recorder.events) == 2  # not due yet
    clock.step(1.0)
    wait_until(lambda: len(recorder.events) == 4)
    resyncs = recorder.events[2:]
    assert all(kind == "update" and old is new and is_resync(old, new) for kind, old, new in resyncs)
    assert sorted(object_key(new) for _, _, new in resyncs) == ["default/a", "default/b"]
    wait_until(clock.has_waiters)
    clock.step(60.0)
    wait_until(lambda: len(recorder.events) == 6)
    assert len(lw.list_calls) == 1 and len(lw.watch_calls) == 1


def test_a_late_handler_gets_the_cache_as_adds_then_new_events(informers: list[SharedInformer]) -> None:
    more = threading.Event()

    class GatedListerWatcher(ScriptedListerWatcher):
        def watch(self, query: Query, *, resource_version: str, timeout_seconds: int) -> ScriptedStream:
            if self.watch_calls:  # the second watch waits for the test
                more.wait(JOIN_TIMEOUT)
            return super().watch(query, resource_version=resource_version, timeout_seconds=timeout_seconds)

    lw = GatedListerWatcher(
        [ListPage([cm("a", "1"), cm("b", "2")], "10", None)],
        [[event("ADDED", cm("c", "11"))], [event("MODIFIED", cm("a", "12")), event("DELETED", cm("c", "13"))]],
    )
    informer = make_informer(lw)
    early = Recorder()
    early.register(informer)
    informers.append(informer)
    informer.start()
    wait_until(lambda: len(early.events) == 3)
    late = Recorder()
    late.register(informer)
    more.set()
    wait_until(lambda: len(late.events) == 5 and len(early.events) == 5)
    assert sorted(late.summary()[:3]) == [
        ("add", "default/a", "1"),
        ("add", "default/b", "2"),
        ("add", "default/c", "11"),
    ]
    assert late.summary()[3:] == [("update", "default/a", "12"), ("delete", "default/c", "13")]
    assert early.summary()[3:] == late.summary()[3:]


def test_informer_stop_joins_its_threads() -> None:
    lw = ScriptedListerWatcher([ListPage([cm("a", "1")], "10", None)])
    informer = make_informer(lw, clock=FakeClock(), resync_period=30.0)
    informer.start()
    assert lw.idle.wait(JOIN_TIMEOUT)
    names = {f"informer {QUERY} {role}" for role in ("dispatch", "reflector", "resync")}
    assert names <= {t.name for t in threading.enumerate()}
    informer.stop()
    assert not names & {t.name for t in threading.enumerate()}


def test_informer_indexers_serve_by_index(informers: list[SharedInformer]) -> None:
    lw = ScriptedListerWatcher(
        [ListPage([cm("a", "1", labels={"velero.io/schedule-name": "daily"}), cm("b", "2")], "10", None)]
    )
    informer = make_informer(lw)
    informer.add_indexers({"schedule": label_index("velero.io/schedule-name")})
    informers.append(informer)
    informer.start()
    assert informer.wait_for_cache_sync(JOIN_TIMEOUT)
    assert [object_key(o) for o in informer.store.by_index("schedule", "daily")] == ["default/a"]


# --- factory -------------------------------------------------------------------------------------


def test_factory_shares_one_informer_per_query() -> None:
    lw = ScriptedListerWatcher([ListPage([cm("a", "1")], "10", None), ListPage([], "10", None)])
    factory = SharedInformerFactory(lw, resync_period=0, clock=SkippingClock())
    first = factory.informer_for(CONFIG_MAPS, "default")
    assert factory.informer_for(CONFIG_MAPS, "default") is first
    selected = factory.informer_for(CONFIG_MAPS, "default", label_selector="app=shop")
    assert selected is not first and selected.query == Query(CONFIG_MAPS, "default", "app=shop")
    try:
        factory.start()
        assert factory.wait_for_cache_sync(JOIN_TIMEOUT)
        assert len(lw.list_calls) == 2  # one list per distinct query, not per caller
        assert factory.informers() == [first, selected]
        assert sorted(q.label_selector or "" for q, _limit, _token in lw.list_calls) == ["", "app=shop"]
    finally:
        factory.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        factory.informer_for(CONFIG_MAPS)


def test_factory_wait_for_cache_sync_times_out() -> None:
    lw = ScriptedListerWatcher([ApiError(500, "InternalError", "etcd down")])
    factory = SharedInformerFactory(lw, resync_period=0, clock=FakeClock())
    factory.informer_for(CONFIG_MAPS)
    factory.start()
    try:
        assert factory.wait_for_cache_sync(0.05) is False
    finally:
        factory.stop()


def test_reflector_counts_lists_watch_events_and_errors() -> None:
    def counted() -> tuple[float, float, float]:
        sample = REGISTRY.get_sample_value
        return (
            sample("lazarus_informer_lists_total", {"resource": "configmaps"}) or 0.0,
            sample("lazarus_informer_watch_events_total", {"resource": "configmaps", "type": "ADDED"}) or 0.0,
            sample("lazarus_informer_errors_total", {"resource": "configmaps"}) or 0.0,
        )

    before = counted()
    lw = ScriptedListerWatcher(
        [ListPage([], "10", None), ListPage([], "30", None)], [[event("ADDED", cm("c", "11")), gone_event()]]
    )
    run_reflector(lw)
    assert tuple(after - b for after, b in zip(counted(), before, strict=True)) == (2, 1, 1)
