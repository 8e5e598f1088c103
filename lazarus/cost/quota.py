"""A ResourceQuota for each sandbox namespace, from ``spec.cost.quota``: the API server then
refuses pods and claims beyond it, so an oversize restore cannot take the cluster's capacity.

``quota: {cpu, memory, storage}`` caps the sum of the requests in each sandbox namespace
(``requests.cpu``, ``requests.memory``, ``requests.storage``). A quota on CPU or memory makes
the API server refuse pods that request none, so a LimitRange gives such containers a default
request (``DEFAULT_CPU_REQUEST``/``DEFAULT_MEMORY_REQUEST``). A pod Velero restores is refused
during the restore (the test ends ``RestorePartiallyFailed`` with "exceeded quota" among Velero's
errors); one a restored workload creates later shows on the workload (Deployment condition
``ReplicaFailure``: "exceeded quota") and the test ends ``WorkloadsNotReady`` with it in
``status.diagnostics``.
"""

from __future__ import annotations

from typing import Any

from lazarus.sandbox import owner_labels

QUOTA_NAME = "lazarus-sandbox-quota"
LIMIT_RANGE_NAME = "lazarus-sandbox-defaults"
# Requests given to containers that set none, under a CPU or memory quota: small, like the
# requests of a sidecar, so that a restored application without requests still fits.
DEFAULT_CPU_REQUEST = "100m"
DEFAULT_MEMORY_REQUEST = "128Mi"
_HARD = {"cpu": "requests.cpu", "memory": "requests.memory", "storage": "requests.storage"}


def sandbox_quota_objects(test: dict[str, Any], namespace: str) -> list[tuple[str, dict[str, Any]]]:
    """``(collection path, body)`` of the objects to create in the sandbox ``namespace`` (before
    the restore); empty when the test sets no quota."""
    quota = ((test.get("spec") or {}).get("cost") or {}).get("quota") or {}
    hard = {_HARD[k]: str(v) for k, v in quota.items() if k in _HARD}
    if not hard:
        return []
    metadata = {"namespace": namespace, "labels": owner_labels(test)}
    objects: list[tuple[str, dict[str, Any]]] = [
        (
            f"/api/v1/namespaces/{namespace}/resourcequotas",
            {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": QUOTA_NAME, **metadata},
             "spec": {"hard": hard}},
        )
    ]  # fmt: skip
    defaults = {k: v for k, v in (("cpu", DEFAULT_CPU_REQUEST), ("memory", DEFAULT_MEMORY_REQUEST)) if k in quota}
    if defaults:
        objects.append(
            (
                f"/api/v1/namespaces/{namespace}/limitranges",
                {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": LIMIT_RANGE_NAME, **metadata},
                 "spec": {"limits": [{"type": "Container", "defaultRequest": defaults}]}},
            )
        )  # fmt: skip
    return objects
