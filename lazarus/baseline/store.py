"""Where baselines live: one ConfigMap per backup source in the operator's namespace.

A ConfigMap survives operator restarts and leader changes, is inspectable and resettable with
kubectl, and needs no new CRD:

- name ``lazarus-baseline-<source, as a name>-<hash of the source>`` (``configmap_name``);
- label ``lazarus.io/baseline=true`` (``kubectl get cm -n lazarus-system -l lazarus.io/baseline=true``);
- annotation ``lazarus.io/baseline-source`` and key ``source``: the source (``schedule/nightly``);
- key ``snapshot.json``: the ``Snapshot`` of the newest successful test without drift;
- key ``history.json``: those of the good tests before it, newest first, at most
  ``MAX_HISTORY - 1`` of them, with only the figures drops are measured on
  (``Snapshot.amounts_only``): a drop is measured against the highest of the last
  ``spec.baseline.history`` good tests, so a loss spread over several tests adds up.

Reset: delete the ConfigMap; the next successful test of the source sets a new baseline.
Writes use the ConfigMap's resourceVersion: two tests of one source finishing at once cannot
overwrite each other unseen (the loser gets a 409 and its sync is retried).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
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
HISTORY_KEY = "history.json"
# Good tests a baseline keeps, the newest included (the CRD's most for spec.baseline.history).
MAX_HISTORY = 20
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
    """A baseline as read: its snapshot (None if unreadable), the ConfigMap's resourceVersion and
    the good tests before it (newest first; empty if unreadable)."""

    snapshot: Snapshot | None
    resource_version: str
    history: tuple[Snapshot, ...] = ()

    def window(self, size: int) -> tuple[Snapshot, ...]:
        """The newest ``size`` good tests, newest first (empty without a snapshot)."""
        return (self.snapshot, *self.history)[:size] if self.snapshot is not None else ()


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
        version, data = str(configmap["metadata"].get("resourceVersion", "")), configmap.get("data") or {}
        try:
            snapshot = Snapshot.from_json(str(data.get(SNAPSHOT_KEY, "")))
        except ValueError as exc:
            log.warning("ignoring an unreadable baseline", configmap=self.location(source), error=str(exc))
            return Stored(None, version)
        try:
            history = tuple(Snapshot.from_data(item) for item in json.loads(data.get(HISTORY_KEY) or "[]"))
        except (ValueError, TypeError) as exc:
            log.warning("ignoring an unreadable baseline history", configmap=self.location(source), error=str(exc))
            history = ()
        return Stored(snapshot, version, history)

    def save(self, source: str, snapshot: Snapshot, previous: Stored | None) -> None:
        """Create the baseline (``previous`` None) or replace ``previous``, whose snapshot moves
        into the history; ``ApiError`` 409 if someone else wrote it since it was read."""
        earlier = previous.window(MAX_HISTORY - 1) if previous is not None else ()
        history = [asdict(s.amounts_only()) for s in earlier]
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": configmap_name(source),
                "namespace": self.namespace,
                "labels": {BASELINE_LABEL: "true"},
                "annotations": {SOURCE_ANNOTATION: source},
            },
            "data": {
                SOURCE_KEY: source,
                SNAPSHOT_KEY: snapshot.to_json(),
                HISTORY_KEY: json.dumps(history, sort_keys=True, separators=(",", ":")),
            },
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
