"""Crash safety: kill the operator at any point of a test and restart it; the test still ends
with exactly one Velero Restore and no leaked namespace."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.integration.kube import wait_backup_completed, wait_until
from tests.integration.operator_process import start_operator
from tests.integration.test_restoretest import (
    GROUP,
    PLURAL,
    VERSION,
    _backup,
    _create_test,
    _get_test,
    _gone,
    _restores_of,
    _snapshot,
    _wait_phase,
    production,  # noqa: F401 - fixture
    stuck_backup,  # noqa: F401 - fixture
)

pytestmark = pytest.mark.integration

TERMINAL = {"Succeeded", "Failed"}


def _sandboxes_of(core: client.CoreV1Api, uid: str) -> list[str]:
    return [ns.metadata.name for ns in core.list_namespace(label_selector=f"lazarus.io/test-uid={uid}").items]


def _phase(custom: client.CustomObjectsApi, namespace: str, name: str) -> str:
    return ((_get_test(custom, namespace, name) or {}).get("status") or {}).get("phase") or ""


def test_killed_again_and_again_the_test_still_ends_with_one_restore(
    lazarus_crds: list[str],
    core: client.CoreV1Api,
    apps: client.AppsV1Api,
    custom: client.CustomObjectsApi,
    production: dict[str, Any],  # noqa: F811
    namespace: str,
    tmp_path: Path,
) -> None:
    source = production["namespace"]
    backup = _backup(custom, source)
    wait_backup_completed(custom, backup)
    production["before"] = _snapshot(core, apps, source)
    name = _create_test(custom, namespace, backup, cleanup={"enabled": False})

    rng = random.Random(7)
    phases_killed_in = []
    for attempt in range(25):
        operator = start_operator(f"crash-{attempt}", tmp_path, "--no-leader-elect")
        time.sleep(rng.uniform(0.05, 0.8))  # let it run to a random point, then kill it there
        operator.stop()  # SIGKILL
        phase = _phase(custom, namespace, name)
        phases_killed_in.append(phase)
        if phase in TERMINAL:
            break
    else:
        operator = start_operator("crash-final", tmp_path, "--no-leader-elect")
        _wait_phase(custom, namespace, name, TERMINAL)
        operator.stop()

    test = _get_test(custom, namespace, name)
    assert test is not None
    assert test["status"]["phase"] == "Succeeded", (phases_killed_in, test["status"])
    uid = test["metadata"]["uid"]
    assert len(_restores_of(custom, uid)) == 1, "a restart created a second Velero Restore"
    assert _sandboxes_of(core, uid) == test["status"]["sandboxNamespaces"]

    operator = start_operator("crash-cleanup", tmp_path, "--no-leader-elect")
    try:
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        wait_until("the test to be gone", lambda: _get_test(custom, namespace, name) is None, timeout=120)
        wait_until("no sandbox left", lambda: not _sandboxes_of(core, uid), timeout=120)
        assert not _restores_of(custom, uid)
    finally:
        operator.stop()


def test_killed_while_waiting_for_workloads_it_resumes_and_succeeds(
    lazarus_crds: list[str],
    core: client.CoreV1Api,
    apps: client.AppsV1Api,
    custom: client.CustomObjectsApi,
    production: dict[str, Any],  # noqa: F811
    stuck_backup: str,  # noqa: F811
    namespace: str,
    tmp_path: Path,
) -> None:
    operator = start_operator("verifying-1", tmp_path, "--no-leader-elect")
    name = _create_test(custom, namespace, stuck_backup)
    test = _wait_phase(custom, namespace, name, {"Verifying"})
    operator.stop()
    sandbox = test["status"]["namespaceMapping"][production["namespace"]]
    # While no operator runs, the stuck workload becomes schedulable.
    apps.patch_namespaced_deployment("stuck", sandbox, {"spec": {"template": {"spec": {"nodeSelector": None}}}})

    operator = start_operator("verifying-2", tmp_path, "--no-leader-elect")
    try:
        done = _wait_phase(custom, namespace, name, TERMINAL)
        assert done["status"]["phase"] == "Succeeded", done["status"]
        assert len(_restores_of(custom, done["metadata"]["uid"])) <= 1
        wait_until("cleanup after success", lambda: _gone(core, [sandbox]), timeout=120)
        # The finalizer needs a running operator: delete the test while there is one.
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        wait_until("the test to be gone", lambda: _get_test(custom, namespace, name) is None, timeout=60)
    finally:
        operator.stop()
