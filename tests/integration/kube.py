"""Small helpers for integration tests that talk to the real test-bed API server."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client

T = TypeVar("T")

VELERO_GROUP = "velero.io"
VELERO_VERSION = "v1"
VELERO_NAMESPACE = "velero"
KWOK_TAINT = {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}
ON_KWOK: dict[str, Any] = {"nodeSelector": {"type": "kwok"}, "tolerations": [KWOK_TAINT]}
"""Pod spec fields that place a pod on the bed's kwok node (pods there are Ready, Job pods complete,
no container runs): for objects whose images exist nowhere or whose requests no real node holds."""


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


def wait_backup_completed(api: client.CustomObjectsApi, name: str, timeout: float = 120.0) -> dict[str, Any]:
    """Wait until a Velero Backup finishes and return it; fail unless it ``Completed``, quoting the
    error lines Velero logged for it (the test bed keeps its log beside the kubeconfig)."""
    backup = wait_velero_phase(api, "backups", name, timeout)
    phase = backup["status"]["phase"]
    if phase != "Completed":
        raise AssertionError(f"backup {name} ended {phase}, not Completed: {backup['status']}\n{_velero_errors(name)}")
    return backup


def _velero_errors(backup: str) -> str:
    """The error lines of the test bed's Velero log that name ``backup`` (the last 20)."""
    log = Path(os.environ["KUBECONFIG"]).parent / "logs" / "velero.log"
    if not log.exists():
        return f"(no Velero log at {log})"
    tag = f"backup=velero/{backup} "
    lines = [line for line in log.read_text(errors="replace").splitlines() if tag in line and "level=error" in line]
    return "\n".join(lines[-20:]) or "(Velero logged no error for it)"
