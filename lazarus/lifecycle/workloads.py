"""Whether restored workloads are ready, judged from their status as their controllers report it."""

from __future__ import annotations

from typing import Any

KIND_OF_SPEC = {"Deployments": "Deployment", "StatefulSets": "StatefulSet", "DaemonSets": "DaemonSet"}


def is_ready(obj: dict[str, Any]) -> bool:
    """Ready when the workload controller has seen the latest spec and every replica is available."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    metadata = obj.get("metadata") or {}
    if int(status.get("observedGeneration") or 0) < int(metadata.get("generation") or 0):
        return False
    kind = obj.get("kind")
    if kind == "Deployment":
        wanted = int(spec.get("replicas", 1))
        return int(status.get("availableReplicas") or 0) >= wanted and int(status.get("updatedReplicas") or 0) >= wanted
    if kind == "StatefulSet":
        return int(status.get("readyReplicas") or 0) >= int(spec.get("replicas", 1))
    if kind == "DaemonSet":
        return int(status.get("numberReady") or 0) >= int(status.get("desiredNumberScheduled") or 0)
    raise ValueError(f"not a workload kind: {kind}")


def describe(obj: dict[str, Any]) -> str:
    """``Kind namespace/name``."""
    metadata = obj["metadata"]
    return f"{obj.get('kind')} {metadata.get('namespace')}/{metadata['name']}"
