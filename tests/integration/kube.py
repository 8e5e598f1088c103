"""Small helpers for integration tests that talk to the real test-bed API server."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes import client

T = TypeVar("T")

VELERO_GROUP = "velero.io"
VELERO_VERSION = "v1"
VELERO_NAMESPACE = "velero"


def wait_until(what: str, probe: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.2) -> T:
    """Call ``probe`` until it returns something truthy and return that; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def unique_name(prefix: str) -> str:
    """A DNS-label name unique to this test run."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def velero_object(api: client.CustomObjectsApi, plural: str, name: str) -> dict[str, Any]:
    """Read one Velero object from the ``velero`` namespace."""
    obj: dict[str, Any] = api.get_namespaced_custom_object(VELERO_GROUP, VELERO_VERSION, VELERO_NAMESPACE, plural, name)
    return obj


def create_velero_object(api: client.CustomObjectsApi, kind: str, plural: str, name: str, spec: dict[str, Any]) -> None:
    """Create a Velero object (Backup, Restore, ...) in the ``velero`` namespace."""
    body = {
        "apiVersion": f"{VELERO_GROUP}/{VELERO_VERSION}",
        "kind": kind,
        "metadata": {"name": name, "namespace": VELERO_NAMESPACE},
        "spec": spec,
    }
    api.create_namespaced_custom_object(VELERO_GROUP, VELERO_VERSION, VELERO_NAMESPACE, plural, body)


def wait_velero_phase(api: client.CustomObjectsApi, plural: str, name: str, timeout: float = 120.0) -> dict[str, Any]:
    """Wait until a Velero Backup/Restore reaches a terminal phase and return the object."""
    terminal = {"Completed", "PartiallyFailed", "Failed", "FailedValidation", "Finalizing"}

    def probe() -> dict[str, Any] | None:
        obj = velero_object(api, plural, name)
        phase = obj.get("status", {}).get("phase")
        return obj if phase in terminal and phase != "Finalizing" else None

    return wait_until(f"{plural}/{name} to finish", probe, timeout=timeout)
