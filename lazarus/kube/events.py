"""Kubernetes Events on the objects Lazarus manages (``kubectl describe`` shows them).

Events are best effort: a failure to record one is logged and never fails a reconcile. Messages
must not contain Secret values; callers pass references, never contents.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import structlog

from lazarus.kube.client import ApiError, Rest

log = structlog.get_logger(__name__)

NORMAL = "Normal"
WARNING = "Warning"
COMPONENT = "lazarus"
# The API server rejects longer messages.
MAX_MESSAGE = 1024


class EventRecorder:
    """Records core/v1 Events for one reporting instance (the operator replica)."""

    def __init__(self, rest: Rest, instance: str) -> None:
        self._rest = rest
        self._instance = instance

    def record(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """Record one event on ``obj`` (which must have apiVersion, kind and metadata)."""
        metadata = obj["metadata"]
        namespace = metadata.get("namespace") or "default"
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{metadata['name']}.{uuid.uuid4().hex[:12]}", "namespace": namespace},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"),
                "kind": obj.get("kind"),
                "name": metadata["name"],
                "namespace": metadata.get("namespace"),
                "uid": metadata.get("uid"),
                "resourceVersion": metadata.get("resourceVersion"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:MAX_MESSAGE],
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self._instance,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            self._rest.request("POST", f"/api/v1/namespaces/{namespace}/events", body=body)
        except ApiError as exc:
            log.warning("could not record event", reason=reason, object=metadata["name"], error=str(exc))
