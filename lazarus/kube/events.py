"""Kubernetes Events on the objects Lazarus manages (``kubectl describe`` shows them).

Events are best effort: a failure to record one is logged and never fails a reconcile. Messages
must not contain Secret values; callers pass references, never contents.

Repeats are aggregated as client-go's ``EventCorrelator`` does for core/v1 Events: an event equal
to one recorded less than ``AGGREGATION_WINDOW`` before — same involved object (apiVersion, kind,
namespace, name, uid), type, reason, message and source — PATCHes that Event's ``count`` and
``lastTimestamp`` instead of creating another, so a reconcile that repeats itself does not fill
the namespace with copies. The recorder remembers the last ``cache_size`` distinct events (least
recently used first out). A 404 on the patch (the API server dropped the Event: it keeps Events
for an hour by default) falls back to creating a new one.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from lazarus.clock import Clock, RealClock
from lazarus.kube.client import CONNECTION_ERRORS, ApiError, Rest

log = structlog.get_logger(__name__)

NORMAL = "Normal"
WARNING = "Warning"
COMPONENT = "lazarus"
# The API server rejects longer messages.
MAX_MESSAGE = 1024
# client-go's EventAggregator interval: a repeat within 10 minutes of the last one is the same
# story going on (one Event, counted); after a longer silence it is news again (a new Event).
AGGREGATION_WINDOW = 600.0
# Distinct recent events remembered (client-go keeps 4096). Lazarus records a few per test, so
# 1024 covers hundreds of tests per window at about 1.5 KiB per entry (the message included).
CACHE_SIZE = 1024

_RECORD_ERRORS: tuple[type[Exception], ...] = (ApiError, *CONNECTION_ERRORS)

_Key = tuple[str | None, ...]


@dataclass
class _Recorded:
    """What the recorder knows of an Event it wrote."""

    namespace: str
    name: str
    count: int
    seen_at: float
    """Clock time of the last occurrence (the window runs from it)."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class EventRecorder:
    """Records core/v1 Events for one reporting instance (the operator replica); thread-safe."""

    def __init__(
        self,
        rest: Rest,
        instance: str,
        *,
        clock: Clock | None = None,
        now: Callable[[], datetime] = _utcnow,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        """``clock`` measures the aggregation window; ``now`` gives the Events' timestamps."""
        self._rest = rest
        self._instance = instance
        self._clock: Clock = clock or RealClock()
        self._now = now
        self._cache_size = cache_size
        self._recent: OrderedDict[_Key, _Recorded] = OrderedDict()
        # Held across the API call: the cache must agree with what the API server holds, or two
        # workers recording the same event at once would both create it. Events are few.
        self._lock = threading.Lock()

    def record(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """Record one event on ``obj`` (which must have apiVersion, kind and metadata)."""
        metadata = obj["metadata"]
        message = message[:MAX_MESSAGE]
        involved = {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "name": metadata["name"],
            "namespace": metadata.get("namespace"),
            "uid": metadata.get("uid"),
            "resourceVersion": metadata.get("resourceVersion"),
        }
        key: _Key = (
            *(involved[f] for f in ("apiVersion", "kind", "namespace", "name", "uid")),
            type_,
            reason,
            message,
            COMPONENT,
        )
        with self._lock:
            try:
                self._record(key, involved, type_, reason, message)
            except _RECORD_ERRORS as exc:
                log.warning("could not record event", reason=reason, object=metadata["name"], error=str(exc))

    def _record(self, key: _Key, involved: dict[str, Any], type_: str, reason: str, message: str) -> None:
        now, stamp = self._clock.now(), self._now().strftime("%Y-%m-%dT%H:%M:%SZ")
        known = self._recent.pop(key, None)
        if known is not None and now - known.seen_at < AGGREGATION_WINDOW:
            try:
                self._patch(known, stamp)
            except ApiError as exc:
                if not exc.not_found:
                    self._remember(key, known)  # still there, most likely: count on it next time
                    raise
            else:
                known.count += 1
                known.seen_at = now
                self._remember(key, known)
                return
        self._remember(key, self._create(involved, type_, reason, message, stamp, now))

    def _patch(self, known: _Recorded, stamp: str) -> None:
        self._rest.request(
            "PATCH",
            f"/api/v1/namespaces/{known.namespace}/events/{known.name}",
            body={"count": known.count + 1, "lastTimestamp": stamp},
            content_type="application/merge-patch+json",
        )

    def _create(
        self, involved: dict[str, Any], type_: str, reason: str, message: str, stamp: str, now: float
    ) -> _Recorded:
        namespace = involved["namespace"] or "default"
        name = f"{involved['name']}.{uuid.uuid4().hex[:12]}"
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": involved,
            "type": type_,
            "reason": reason,
            "message": message,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self._instance,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        self._rest.request("POST", f"/api/v1/namespaces/{namespace}/events", body=body)
        return _Recorded(namespace, name, 1, now)

    def _remember(self, key: _Key, recorded: _Recorded) -> None:
        self._recent[key] = recorded  # (re)inserted last: the most recently used
        while len(self._recent) > self._cache_size:
            self._recent.popitem(last=False)
