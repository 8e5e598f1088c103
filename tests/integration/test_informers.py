"""Informers against the real test bed: events arrive, selectors filter, custom resources work, a
kube-apiserver restart loses nothing, and an expired resourceVersion relists with tombstones.

The informers here use the real transport, wrapped (``ObservedTransport``) only to count
requests, note how a 410 arrived, and hold watches back at a gate when a test needs the watch
down while it changes things. Figures (time to sync, event latency, recovery time) are printed:
run with ``-s`` to see them.

The restart and expiry tests act on the test bed itself (``testbed.sh restart kube-apiserver``,
etcd compaction through etcd's HTTP gateway). They find it through ``LAZARUS_TESTBED_STATE`` and
``LAZARUS_TESTBED_PORT_BASE``, as ``testbed.sh`` does, and refuse to run if that test bed is not
the one ``KUBECONFIG`` points at.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from lazarus.informers import (
    BACKUPS,
    CONFIG_MAPS,
    ApiError,
    DeletedFinalStateUnknown,
    Obj,
    Query,
    Resource,
    RestTransport,
    SharedInformer,
    SharedInformerFactory,
    final_object,
    is_resync,
    object_key,
)
from lazarus.informers.reflector import PAGE_SIZE
from lazarus.informers.transport import ListPage, WatchEvent, WatchStream
from tests.integration.kube import wait_until
from tests.integration.testbed_control import (
    DEFAULT_PORT_BASE,
    ETCD_PORT_OFFSET,
    checked_testbed_env,
    run_testbed,
)

pytestmark = pytest.mark.integration

SYNC_TIMEOUT = 30.0
EVENT_TIMEOUT = 30.0
# After a restart the informer may be in a backoff of up to 30 s before it tries again.
RECOVERY_TIMEOUT = 90.0


# --- helpers -------------------------------------------------------------------------------------


class Recorder:
    """Event handler callbacks recording ``(kind, key, object, monotonic time)``."""

    def __init__(self, informer: SharedInformer) -> None:
        self.events: list[tuple[str, str, Any, float]] = []
        informer.add_event_handler(self._add, self._update, self._delete)

    def _add(self, obj: Obj) -> None:
        self.events.append(("add", object_key(obj), obj, time.monotonic()))

    def _update(self, old: Obj, new: Obj) -> None:
        self.events.append(("update", object_key(new), (old, new), time.monotonic()))

    def _delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        kind = "tombstone" if isinstance(obj, DeletedFinalStateUnknown) else "delete"
        self.events.append((kind, object_key(obj), obj, time.monotonic()))

    def kinds(self, key: str) -> list[str]:
        return [kind for kind, k, _obj, _at in self.events if k == key]

    def first(self, kind: str, key: str) -> tuple[Any, float] | None:
        for k, event_key, obj, at in self.events:
            if (k, event_key) == (kind, key):
                return obj, at
        return None

    def find_update(self, key: str, data: dict[str, str]) -> tuple[Any, float] | None:
        """The first update of ``key`` whose new object carries ``data``."""
        for kind, event_key, obj, at in self.events:
            if kind == "update" and event_key == key and obj[1].get("data") == data:
                return obj, at
        return None


class _ObservedStream:
    def __init__(self, inner: WatchStream, transport: ObservedTransport) -> None:
        self._inner = inner
        self._transport = transport

    def __iter__(self) -> Iterator[WatchEvent]:
        try:
            for event in self._inner:
                if event.type == "ERROR":
                    self._transport.note_error(f"ERROR event {event.object.get('code')}: {event.object.get('message')}")
                yield event
        except Exception as error:
            self._transport.note(f"watch broke: {error!r}"[:120])
            raise
        self._transport.note("watch ended")

    def close(self) -> None:
        self._inner.close()


class ObservedTransport(RestTransport):
    """The real transport, counting requests, recording what happened, with a gate on watches."""

    def __init__(self, api_client: client.ApiClient) -> None:
        super().__init__(api_client)
        self.lists = 0
        self.watched_from: list[str] = []
        self.watch_started: list[float] = []  # monotonic times at which a watch got its response
        self.errors: list[str] = []  # 410s and other API errors, as they arrived
        self.timeline: list[tuple[float, str]] = []  # (monotonic time, what happened)
        self.gate = threading.Event()
        self.gate.set()
        self.held = threading.Event()  # a watch is waiting at the closed gate
        self._live: WatchStream | None = None

    def note(self, what: str) -> None:
        self.timeline.append((time.monotonic(), what))

    def note_error(self, what: str) -> None:
        self.errors.append(what)
        self.note(what)

    def timeline_since(self, start: float) -> list[str]:
        return [f"+{at - start:.1f}s {what}" for at, what in self.timeline if at >= start]

    def watch(self, query: Query, *, resource_version: str, timeout_seconds: int) -> WatchStream:
        if not self.gate.is_set():
            self.held.set()
            self.gate.wait(RECOVERY_TIMEOUT)
        self.watched_from.append(resource_version)
        try:
            stream = super().watch(query, resource_version=resource_version, timeout_seconds=timeout_seconds)
        except ApiError as error:
            self.note_error(f"HTTP {error.status}: {error.message}")
            raise
        except Exception as error:
            self.note(f"watch failed: {error!r}"[:120])
            raise
        self.watch_started.append(time.monotonic())
        self.note(f"watching from {resource_version}")
        self._live = _ObservedStream(stream, self)
        return self._live

    def cut_watch(self) -> None:
        """Close the live watch and hold every new one until ``gate.set()``."""
        self.gate.clear()
        self.held.clear()
        if self._live is not None:
            self._live.close()

    def list(self, query: Query, *, limit: int, continue_token: str | None) -> ListPage:
        self.lists += 1
        page = super().list(query, limit=limit, continue_token=continue_token)
        self.note(f"listed a page at {page.resource_version}")
        return page


@pytest.fixture
def informers() -> Iterator[list[SharedInformer]]:
    """Informers to stop after the test, whatever happens."""
    started: list[SharedInformer] = []
    yield started
    for informer in started:
        informer.stop()


def start_and_sync(informer: SharedInformer, informers: list[SharedInformer]) -> float:
    """Start ``informer`` and return the seconds it took to sync."""
    informers.append(informer)
    started = time.monotonic()
    informer.start()
    assert informer.wait_for_cache_sync(SYNC_TIMEOUT), f"{informer.query} did not sync"
    return time.monotonic() - started


def config_map(name: str, data: dict[str, str], labels: dict[str, str] | None = None) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels), data=data)


def server_keys(core: client.CoreV1Api, namespace: str) -> set[str]:
    return {f"{namespace}/{cm.metadata.name}" for cm in core.list_namespaced_config_map(namespace).items}


def report(what: str, **figures: object) -> None:
    print(f"\n[informers] {what}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))


# --- the test bed under test -----------------------------------------------------------------------


def etcd_call(env: dict[str, str], path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST to etcd's HTTP/JSON gateway of the test bed."""
    port = int(env.get("LAZARUS_TESTBED_PORT_BASE", DEFAULT_PORT_BASE)) + ETCD_PORT_OFFSET
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, Any] = json.load(response)
        return answer


def compact_etcd(env: dict[str, str]) -> int:
    """Compact etcd's history up to its current revision (physically); return that revision."""
    key = base64.b64encode(b"/registry/").decode()
    revision = int(etcd_call(env, "/v3/kv/range", {"key": key, "limit": 1})["header"]["revision"])
    etcd_call(env, "/v3/kv/compaction", {"revision": str(revision), "physical": True})
    return revision


# --- tests ---------------------------------------------------------------------------------------


def test_informer_sees_add_update_delete(
    api_client: client.ApiClient, core: client.CoreV1Api, namespace: str, informers: list[SharedInformer]
) -> None:
    core.create_namespaced_config_map(namespace, config_map("early", {"v": "1"}))
    transport = ObservedTransport(api_client)
    informer = SharedInformer(Query(CONFIG_MAPS, namespace), transport, resync_period=0)
    recorder = Recorder(informer)
    sync_seconds = start_and_sync(informer, informers)
    early = informer.store.get_by_key(f"{namespace}/early")
    assert early is not None and early["data"] == {"v": "1"}
    assert (early["kind"], early["apiVersion"]) == ("ConfigMap", "v1")  # filled in: list items lack them
    assert "managedFields" not in early["metadata"]

    latencies = []
    sent = time.monotonic()
    core.create_namespaced_config_map(namespace, config_map("late", {"v": "1"}))
    added = wait_until("add of late", lambda: recorder.first("add", f"{namespace}/late"), timeout=EVENT_TIMEOUT)
    latencies.append(added[1] - sent)
    sent = time.monotonic()
    core.patch_namespaced_config_map("early", namespace, {"data": {"v": "2"}})
    updated = wait_until(
        "update of early", lambda: recorder.find_update(f"{namespace}/early", {"v": "2"}), timeout=EVENT_TIMEOUT
    )
    latencies.append(updated[1] - sent)
    old, new = updated[0]
    assert old["data"] == {"v": "1"} and not is_resync(old, new)
    assert "managedFields" not in new["metadata"]
    sent = time.monotonic()
    core.delete_namespaced_config_map("late", namespace)
    deleted = wait_until("delete of late", lambda: recorder.first("delete", f"{namespace}/late"), timeout=EVENT_TIMEOUT)
    latencies.append(deleted[1] - sent)

    assert recorder.kinds(f"{namespace}/early") == ["add", "update"]
    assert recorder.kinds(f"{namespace}/late") == ["add", "delete"]
    assert {object_key(o) for o in informer.store.list()} == server_keys(core, namespace)
    assert transport.lists == 1 and len(transport.watched_from) == 1
    assert informer.last_success is not None
    report(
        "add/update/delete",
        sync_s=f"{sync_seconds:.3f}",
        api_call_to_handler_ms=[round(1000 * s, 1) for s in latencies],
    )


def test_paginated_sync_of_many_objects(
    api_client: client.ApiClient, core: client.CoreV1Api, namespace: str, informers: list[SharedInformer]
) -> None:
    count = PAGE_SIZE + 100  # two pages: the second fetched with the first one's continue token
    for i in range(count):
        core.create_namespaced_config_map(namespace, config_map(f"bulk-{i:04d}", {"i": str(i)}))
    transport = ObservedTransport(api_client)
    informer = SharedInformer(Query(CONFIG_MAPS, namespace), transport, resync_period=0)
    recorder = Recorder(informer)
    sync_seconds = start_and_sync(informer, informers)
    assert transport.lists == 2
    assert {object_key(o) for o in informer.store.list()} == server_keys(core, namespace)
    assert len(informer.store) == count + 1  # and the namespace's kube-root-ca.crt
    wait_until("every initial add", lambda: len(recorder.events) == count + 1, timeout=EVENT_TIMEOUT)
    report("paginated sync", objects=count + 1, pages=transport.lists, sync_s=f"{sync_seconds:.3f}")


def test_label_selected_informer_sees_only_matching_objects(
    api_client: client.ApiClient, core: client.CoreV1Api, namespace: str, informers: list[SharedInformer]
) -> None:
    selector = "lazarus.io/it=selected"
    chosen = {"lazarus.io/it": "selected"}
    core.create_namespaced_config_map(namespace, config_map("in-1", {}, chosen))
    core.create_namespaced_config_map(namespace, config_map("out-1", {}, {"lazarus.io/it": "other"}))
    factory = SharedInformerFactory.for_api_client(api_client, resync_period=0)
    informer = factory.informer_for(CONFIG_MAPS, namespace, label_selector=selector)
    assert factory.informer_for(CONFIG_MAPS, namespace, label_selector=selector) is informer
    recorder = Recorder(informer)
    start_and_sync(informer, informers)
    assert [object_key(o) for o in informer.store.list()] == [f"{namespace}/in-1"]

    core.create_namespaced_config_map(namespace, config_map("out-2", {}))
    core.create_namespaced_config_map(namespace, config_map("in-2", {}, chosen))
    wait_until("add of in-2", lambda: recorder.first("add", f"{namespace}/in-2"), timeout=EVENT_TIMEOUT)
    # An object that stops matching leaves the selected view as a delete.
    core.patch_namespaced_config_map("in-1", namespace, {"metadata": {"labels": {"lazarus.io/it": "dropped"}}})
    wait_until("in-1 to leave", lambda: recorder.first("delete", f"{namespace}/in-1"), timeout=EVENT_TIMEOUT)

    seen = {key for _kind, key, _obj, _at in recorder.events}
    assert seen == {f"{namespace}/in-1", f"{namespace}/in-2"}
    assert [object_key(o) for o in informer.store.list()] == [f"{namespace}/in-2"]


@pytest.fixture(scope="module")
def widget_crd(api_client: client.ApiClient) -> Resource:
    """A tiny namespaced CRD, created once per test bed and kept. Deleting it would leave Velero's
    discovery (refreshed every 5 minutes) naming a gone resource: every namespace backup until the next
    refresh ends PartiallyFailed ("Error listing items ... could not find the requested resource")."""
    ext = client.ApiextensionsV1Api(api_client)
    group = "informers.lazarus.test"
    resource = Resource(group, "v1", "widgets", True, "Widget")
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                }
            ],
        },
    }
    try:
        ext.create_custom_resource_definition(crd)
    except ApiException as error:
        if error.status != 409:  # made by an earlier run on this bed
            raise

    def established() -> bool:
        conditions = ext.read_custom_resource_definition(f"widgets.{group}").status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    wait_until("the Widget CRD to be Established", established, timeout=30)
    return resource


def test_custom_resource_informer_across_namespaces(
    api_client: client.ApiClient,
    custom: client.CustomObjectsApi,
    namespace: str,
    widget_crd: Resource,
    informers: list[SharedInformer],
) -> None:
    def widget(name: str, size: int) -> dict[str, Any]:
        return {
            "apiVersion": widget_crd.api_version,
            "kind": "Widget",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"size": size},
        }

    g, v, p = widget_crd.group, widget_crd.version, widget_crd.plural
    custom.create_namespaced_custom_object(g, v, namespace, p, widget("w1", 1))
    informer = SharedInformer(Query(widget_crd), RestTransport(api_client), resync_period=0)  # all namespaces
    recorder = Recorder(informer)
    start_and_sync(informer, informers)
    listed = custom.list_cluster_custom_object(g, v, p)["items"]  # an earlier run's widgets may be going
    assert {object_key(o) for o in informer.store.list()} == {object_key(w) for w in listed} >= {f"{namespace}/w1"}
    w1 = informer.store.get_by_key(f"{namespace}/w1")
    assert w1 is not None and w1["kind"] == "Widget" and "managedFields" not in w1["metadata"]

    custom.create_namespaced_custom_object(g, v, namespace, p, widget("w2", 2))
    custom.patch_namespaced_custom_object(g, v, namespace, p, "w1", {"spec": {"size": 10}})
    custom.delete_namespaced_custom_object(g, v, namespace, p, "w2")
    wait_until("delete of w2", lambda: recorder.first("delete", f"{namespace}/w2"), timeout=EVENT_TIMEOUT)
    assert recorder.kinds(f"{namespace}/w1") == ["add", "update"]
    assert recorder.kinds(f"{namespace}/w2") == ["add", "delete"]
    assert informer.store.get_by_key(f"{namespace}/w1")["spec"] == {"size": 10}
    assert [object_key(o) for o in informer.store.by_index("namespace", namespace)] == [f"{namespace}/w1"]


def test_velero_backups_informer_syncs(
    api_client: client.ApiClient, custom: client.CustomObjectsApi, informers: list[SharedInformer]
) -> None:
    informer = SharedInformer(Query(BACKUPS, "velero"), RestTransport(api_client), resync_period=0)
    sync_seconds = start_and_sync(informer, informers)
    listed = custom.list_namespaced_custom_object("velero.io", "v1", "velero", "backups")["items"]
    assert {object_key(o) for o in informer.store.list()} == {f"velero/{b['metadata']['name']}" for b in listed}
    report("velero backups", objects=len(listed), sync_s=f"{sync_seconds:.3f}")


def test_informer_survives_kube_apiserver_restart(
    api_client: client.ApiClient, core: client.CoreV1Api, namespace: str, informers: list[SharedInformer]
) -> None:
    """The informer recovers by itself and misses nothing changed right after the restart.

    (Changes made while the watch is down, between the stop and the re-watch, are the next
    test's: only a gate on the watch can guarantee that ordering.)
    """
    env = checked_testbed_env(api_client)
    for name in ("stays", "changes", "goes"):
        core.create_namespaced_config_map(namespace, config_map(name, {"v": "1"}))
    transport = ObservedTransport(api_client)
    informer = SharedInformer(Query(CONFIG_MAPS, namespace), transport, resync_period=0)
    recorder = Recorder(informer)
    start_and_sync(informer, informers)

    began = time.monotonic()
    run_testbed(env, "restart", "kube-apiserver")
    back = time.monotonic()
    # At once: the informer is most likely still backing off since its watch broke.
    core.patch_namespaced_config_map("changes", namespace, {"data": {"v": "2"}})
    core.delete_namespaced_config_map("goes", namespace)
    core.create_namespaced_config_map(namespace, config_map("arrives", {"v": "1"}))
    changed = time.monotonic()

    key = f"{namespace}/%s"
    wait_until("add of arrives", lambda: recorder.first("add", key % "arrives"), timeout=RECOVERY_TIMEOUT)
    wait_until("update of changes", lambda: recorder.find_update(key % "changes", {"v": "2"}), timeout=EVENT_TIMEOUT)
    gone = wait_until(
        "delete of goes",
        lambda: recorder.first("delete", key % "goes") or recorder.first("tombstone", key % "goes"),
        timeout=EVENT_TIMEOUT,
    )
    caught_up = time.monotonic()
    # The watch is live again: a new change arrives promptly.
    sent = time.monotonic()
    core.create_namespaced_config_map(namespace, config_map("after", {"v": "1"}))
    after = wait_until("add of after", lambda: recorder.first("add", key % "after"), timeout=EVENT_TIMEOUT)

    rewatched = [t for t in transport.watch_started if t > began]
    assert {object_key(o) for o in informer.store.list()} == server_keys(core, namespace)
    assert recorder.kinds(key % "stays") in (["add"], ["add", "update"])  # a relist re-delivers it unchanged
    assert final_object(gone[0])["metadata"]["name"] == "goes"
    report(
        "kube-apiserver restart",
        restart_s=f"{back - began:.1f}",
        caught_up_after_ready_s=f"{caught_up - back:.1f}",
        next_event_ms=round(1000 * (after[1] - sent), 1),
        changes_made_before_rewatch=changed < rewatched[0],
        lists=transport.lists,
        delete_came_as="tombstone (relist)" if recorder.first("tombstone", key % "goes") else "DELETED event",
        timeline=transport.timeline_since(began) + [f"+{back - began:.1f}s readyz ok (restart done)"],
    )


def test_expired_resource_version_relists_and_delivers_tombstones(
    api_client: client.ApiClient, core: client.CoreV1Api, namespace: str, informers: list[SharedInformer]
) -> None:
    """Objects change while the watch is down; by the time it is back its resourceVersion is gone."""
    env = checked_testbed_env(api_client)
    for name in ("keep", "edit", "doomed-1", "doomed-2"):
        core.create_namespaced_config_map(namespace, config_map(name, {"v": "1"}))
    transport = ObservedTransport(api_client)
    informer = SharedInformer(Query(CONFIG_MAPS, namespace), transport, resync_period=0)
    recorder = Recorder(informer)
    start_and_sync(informer, informers)
    last_rv = informer.store.resource_version

    # Take the watch down and change things while nobody watches ...
    wait_until("the first watch", lambda: transport.watch_started, timeout=EVENT_TIMEOUT)
    cut = time.monotonic()
    transport.cut_watch()
    assert transport.held.wait(EVENT_TIMEOUT), "the reflector did not try to watch again"
    core.delete_namespaced_config_map("doomed-1", namespace)
    core.delete_namespaced_config_map("doomed-2", namespace)
    core.patch_namespaced_config_map("edit", namespace, {"data": {"v": "2"}})
    core.create_namespaced_config_map(namespace, config_map("newcomer", {"v": "1"}))
    # ... then make the resourceVersion it will watch from history. Compacting etcd alone is not
    # enough: the API server's watch cache keeps recent events in memory and would still serve
    # them. A restarted API server starts its watch cache at the current revision, so it answers
    # a watch from an older one with 410 "too old resource version", and etcd has forgotten it too.
    revision = compact_etcd(env)
    run_testbed(env, "restart", "kube-apiserver")
    transport.gate.set()

    key = f"{namespace}/%s"
    for name in ("doomed-1", "doomed-2"):
        wait_until(f"tombstone of {name}", lambda n=name: recorder.first("tombstone", key % n), timeout=EVENT_TIMEOUT)
    tombstone, _at = recorder.first("tombstone", key % "doomed-1")  # type: ignore[misc]
    assert isinstance(tombstone, DeletedFinalStateUnknown) and tombstone.object["data"] == {"v": "1"}
    wait_until("update of edit", lambda: recorder.find_update(key % "edit", {"v": "2"}), timeout=EVENT_TIMEOUT)
    wait_until("add of newcomer", lambda: recorder.first("add", key % "newcomer"), timeout=EVENT_TIMEOUT)

    assert transport.lists == 2, "expected exactly one relist"
    assert any("410" in error for error in transport.errors), transport.errors
    assert {object_key(o) for o in informer.store.list()} == server_keys(core, namespace)
    unchanged = recorder.first("update", key % "keep")
    assert unchanged is not None and is_resync(*unchanged[0])  # re-delivered by the relist, unchanged
    report(
        "410 relist",
        watched_from=transport.watched_from,
        list_rv=last_rv,
        compacted_at=revision,
        timeline=transport.timeline_since(cut),
        tombstones=sorted(k for kind, k, _o, _a in recorder.events if kind == "tombstone"),
    )
