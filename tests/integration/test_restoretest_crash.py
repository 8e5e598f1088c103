"""Crash safety: kill the operator in every phase of a test and restart it; the test still ends
with exactly one Velero Restore ever created and no leaked namespace.

The application makes each phase last long enough to be killed in: Velero is frozen while the
test waits for its backup (Pending), the restore brings a volume's data back (Restoring), the
restored pod gets ready only after a delay (Verifying), and a custom check Job sleeps (Checking).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.integration.kube import wait_backup_completed, wait_until
from tests.integration.operator_process import start_operator
from tests.integration.restores_created import RestoresCreated
from tests.integration.test_restoretest import (
    GROUP,
    PLURAL,
    VERSION,
    _backup,
    _condition,
    _create_test,
    _get_test,
    _gone,
    _restores_of,
    _snapshot,
    _wait_phase,
    production,  # noqa: F401 - fixture
    stuck_backup,  # noqa: F401 - fixture
)
from tests.integration.testbed_control import TESTBED_SCRIPT, checked_testbed_env
from tests.integration.workloads import BASE_IMAGE, apply, statefulset

pytestmark = pytest.mark.integration

TERMINAL = {"Succeeded", "Failed"}
READY_AFTER = 10  # seconds the restored pod takes to get ready: Verifying lasts that long
CHECK_SLEEP = 8  # seconds the custom check Job runs: Checking lasts that long
VELERO_FROZEN = 10  # seconds Velero is frozen while the test waits for its backup


def _sandboxes_of(core: client.CoreV1Api, uid: str) -> list[str]:
    return [ns.metadata.name for ns in core.list_namespace(label_selector=f"lazarus.io/test-uid={uid}").items]


def _phase_of(test: dict[str, Any] | None) -> str:
    """The phase, with a finished test whose sandbox is not yet removed called 'cleanup'."""
    status = (test or {}).get("status") or {}
    phase = status.get("phase") or ""
    if phase == "Succeeded" and _condition(test or {}, "CleanupCompleted") != "True":
        return "cleanup"
    return phase


def _slow_app(namespace: str) -> list[dict[str, Any]]:
    """A StatefulSet on the real node with data on its volume, Ready ``READY_AFTER`` s after start."""
    container = {
        "name": "app",
        "image": BASE_IMAGE,
        "command": ["sh", "-c", "test -f /data/orders || echo 42 >/data/orders; exec sleep 3600"],
        "readinessProbe": {"exec": {"command": ["test", "-f", "/data/orders"]},
                           "initialDelaySeconds": READY_AFTER, "periodSeconds": 1},
    }  # fmt: skip
    objects = statefulset(namespace, "app", container, mount_path="/data", fs_group=0, port=8080)
    objects[1]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 1
    return objects


def test_killed_in_every_phase_the_test_still_ends_with_one_restore(
    lazarus_crds: list[str],
    api_client: client.ApiClient,
    core: client.CoreV1Api,
    apps: client.AppsV1Api,
    custom: client.CustomObjectsApi,
    production: dict[str, Any],  # noqa: F811
    namespace: str,
    tmp_path: Path,
    restores_created: RestoresCreated,
) -> None:
    env = checked_testbed_env(api_client)
    source = production["namespace"]
    apply(*_slow_app(source))
    wait_until("the production app", lambda: (apps.read_namespaced_stateful_set("app", source).status.ready_replicas
                                              or 0) >= 1, timeout=120)  # fmt: skip
    production["before"] = _snapshot(core, apps, source)
    checks = {"customChecks": {"pod": {"image": BASE_IMAGE, "command": ["sleep", str(CHECK_SLEEP)]}}}
    phases_killed_in: list[str] = []
    attempt = 0

    def run_until(phase: str) -> None:
        """Start an operator, SIGKILL it as soon as the test is in ``phase``, note where it died."""
        nonlocal attempt
        attempt += 1
        operator = start_operator(f"crash-{attempt}", tmp_path, "--no-leader-elect")
        try:
            wait_until(f"the test to reach {phase}",
                       lambda: _phase_of(_get_test(custom, namespace, name)) == phase or None,
                       timeout=240, interval=0.05)  # fmt: skip
        finally:
            operator.stop()  # SIGKILL
        phases_killed_in.append(_phase_of(_get_test(custom, namespace, name)))

    # Pending: Velero is frozen, so the backup stays New and the test waits for it.
    frozen = subprocess.Popen([str(TESTBED_SCRIPT), "pause", "velero", str(VELERO_FROZEN)], env=env)
    try:
        time.sleep(1)
        backup = _backup(custom, source, defaultVolumesToFsBackup=True)
        name = _create_test(custom, namespace, backup, healthChecks=checks)
        run_until("Pending")
    finally:
        frozen.wait(VELERO_FROZEN + 30)
    wait_backup_completed(custom, backup, timeout=180)
    for phase in ("Restoring", "Verifying", "Checking", "cleanup"):
        run_until(phase)
    assert phases_killed_in == ["Pending", "Restoring", "Verifying", "Checking", "cleanup"]

    operator = start_operator("crash-final", tmp_path, "--no-leader-elect")
    try:
        test = wait_until("cleanup", lambda: (t := _get_test(custom, namespace, name)) and _phase_of(t) == "Succeeded"
                          and t, timeout=240)  # fmt: skip
        uid = test["metadata"]["uid"]
        assert test["status"]["result"]["success"] is True, test["status"]
        assert len(restores_created.of(uid)) == 1, "a restart created a second Velero Restore"
        assert not _sandboxes_of(core, uid) and not _restores_of(custom, uid)
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        wait_until("the test to be gone", lambda: _get_test(custom, namespace, name) is None, timeout=120)
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
    restores_created: RestoresCreated,
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
        assert len(restores_created.of(done["metadata"]["uid"])) == 1
        wait_until("cleanup after success", lambda: _gone(core, [sandbox]), timeout=120)
        # The finalizer needs a running operator: delete the test while there is one.
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        wait_until("the test to be gone", lambda: _get_test(custom, namespace, name) is None, timeout=60)
    finally:
        operator.stop()
