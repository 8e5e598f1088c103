"""Every Velero Restore created while a test runs, seen through a watch.

Counting the Restores that exist at the end cannot tell "exactly one was made" from "none was
made" or "two were made and one was deleted"; a watch started before the test sees each creation,
including of Restores deleted again before the end.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

from kubernetes import client, watch

from lazarus.sandbox import TEST_UID_LABEL
from tests.integration.kube import VELERO_GROUP, VELERO_NAMESPACE, VELERO_VERSION


class RestoresCreated:
    """Watches Velero Restores from ``start()`` until ``stop()``; ``of(uid)``: names of those labelled
    for test ``uid`` that were created in between (each counted once, even if deleted since)."""

    def __init__(self, custom: client.CustomObjectsApi) -> None:
        self._custom = custom
        self._names: dict[str, set[str]] = defaultdict(set)
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, name="restores-created", daemon=True)
        self._error: BaseException | None = None

    def start(self) -> RestoresCreated:
        listed = self._list()
        self._known = {r["metadata"]["name"] for r in listed["items"]}  # made before the start
        self._version = listed["metadata"]["resourceVersion"]
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._watch.stop()
        self._thread.join(10)

    def of(self, uid: str) -> set[str]:
        """Restores created for test ``uid`` since ``start()``; raises if the watch broke."""
        assert self._error is None, f"the watch of Velero Restores failed: {self._error!r}"
        # An event still on its way when the caller asks: a list brings the watch's view up to date.
        for restore in self._list()["items"]:
            self._note(restore)
        with self._lock:
            return set(self._names[uid])

    def _list(self) -> dict[str, Any]:
        listed: dict[str, Any] = self._custom.list_namespaced_custom_object(
            VELERO_GROUP, VELERO_VERSION, VELERO_NAMESPACE, "restores"
        )
        return listed

    def _note(self, restore: dict[str, Any]) -> None:
        name = restore["metadata"]["name"]
        uid = (restore["metadata"].get("labels") or {}).get(TEST_UID_LABEL)
        if uid and name not in self._known:
            with self._lock:
                self._names[uid].add(name)

    def _run(self) -> None:
        try:
            while not self._stopped.is_set():
                stream = self._watch.stream(
                    self._custom.list_namespaced_custom_object, VELERO_GROUP, VELERO_VERSION, VELERO_NAMESPACE,
                    "restores", resource_version=self._version, timeout_seconds=60,
                )  # fmt: skip
                for event in stream:
                    obj = event["object"]
                    if event["type"] == "ERROR" and obj.get("code") == 410:  # expired: list again
                        listed = self._list()
                        for restore in listed["items"]:
                            self._note(restore)
                        self._version = listed["metadata"]["resourceVersion"]
                        break
                    if event["type"] == "ERROR":
                        raise RuntimeError(f"watch error: {obj}")
                    self._version = obj["metadata"]["resourceVersion"]
                    if event["type"] == "ADDED":
                        self._note(obj)
        except BaseException as exc:  # noqa: BLE001 - reported by of()
            if not self._stopped.is_set():
                self._error = exc
