"""Where baselines live: one ConfigMap per backup source in the operator's namespace.

A ConfigMap survives operator restarts and leader changes, is inspectable and resettable with
kubectl, and needs no new CRD:

- name ``lazarus-baseline-<source, as a name>-<hash of the source>`` (``configmap_name``);
- label ``lazarus.io/baseline=true`` (``kubectl get cm -n lazarus-system -l lazarus.io/baseline=true``);
- annotation ``lazarus.io/baseline-source`` and key ``source``: the source (``schedule/nightly``);
- key ``snapshot.json``: the ``Snapshot`` of the newest successful test without drift.

Reset: delete the ConfigMap; the next successful test of the source sets a new baseline.
Writes use the ConfigMap's resourceVersion: two tests of one source finishing at once cannot
overwrite each other unseen (the loser gets a 409 and its sync is retried).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import structlog

from lazarus.baseline.snapshot import Snapshot
from lazarus.kube.client import ApiError, Rest

log = structlog.get_logger(__name__)

BASELINE_LABEL = "lazarus.io/baseline"
SOURCE_ANNOTATION = "lazarus.io/baseline-source"
PREFIX = "lazarus-baseline-"
SOURCE_KEY = "source"
SNAPSHOT_KEY = "snapshot.json"
# Readable part of a ConfigMap name, so the whole name stays within 63 characters like the
# sandboxes' (the hash keeps names unique anyway).
_READABLE = 34


def configmap_name(source: str) -> str:
    """``lazarus-baseline-schedule-nightly-1a2b3c4d5e``: readable, unique per source, a valid name."""
    readable = re.sub(r"[^a-z0-9]+", "-", source.lower()).strip("-")[:_READABLE].strip("-")
    digest = hashlib.sha256(source.encode()).hexdigest()[:10]
    return f"{PREFIX}{readable}-{digest}" if readable else f"{PREFIX}{digest}"


@dataclass(frozen=True)
class Stored:
    """A baseline as read: its snapshot (None if unreadable) and the ConfigMap's resourceVersion."""

    snapshot: Snapshot | None
    resource_version: str


class BaselineStore:
    """Reads and writes the baseline ConfigMaps in ``namespace`` (see the module docstring)."""

    def __init__(self, rest: Rest, namespace: str) -> None:
        self._rest = rest
        self.namespace = namespace

    def location(self, source: str) -> str:
        """``namespace/name`` of the source's ConfigMap, for status and messages."""
        return f"{self.namespace}/{configmap_name(source)}"

    def _path(self, source: str | None = None) -> str:
        collection = f"/api/v1/namespaces/{self.namespace}/configmaps"
        return collection if source is None else f"{collection}/{configmap_name(source)}"

    def load(self, source: str) -> Stored | None:
        """The source's baseline; None if there is none. An unreadable one (edited by hand) is
        logged and returned with ``snapshot`` None: it is replaced by the next baseline."""
        try:
            configmap = self._rest.request("GET", self._path(source))
        except ApiError as exc:
            if exc.not_found:
                return None
            raise
        version = str(configmap["metadata"].get("resourceVersion", ""))
        try:
            return Stored(Snapshot.from_json(str((configmap.get("data") or {}).get(SNAPSHOT_KEY, ""))), version)
        except ValueError as exc:
            log.warning("ignoring an unreadable baseline", configmap=self.location(source), error=str(exc))
            return Stored(None, version)

    def save(self, source: str, snapshot: Snapshot, previous: Stored | None) -> None:
        """Create the baseline (``previous`` None) or replace ``previous``; ``ApiError`` 409 if
        someone else wrote it since it was read."""
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": configmap_name(source),
                "namespace": self.namespace,
                "labels": {BASELINE_LABEL: "true"},
                "annotations": {SOURCE_ANNOTATION: source},
            },
            "data": {SOURCE_KEY: source, SNAPSHOT_KEY: snapshot.to_json()},
        }
        if previous is None:
            self._rest.request("POST", self._path(), body=body)
        else:
            body["metadata"]["resourceVersion"] = previous.resource_version
            self._rest.request("PUT", self._path(source), body=body)

    def reset(self, source: str) -> bool:
        """Delete the source's baseline; False if there was none."""
        try:
            self._rest.request("DELETE", self._path(source))
        except ApiError as exc:
            if exc.not_found:
                return False
            raise
        return True
