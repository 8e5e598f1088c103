"""The global limits of restore tests: at most N at once, and an overall deadline per test.

A separate operator for this module: ``--max-concurrent-tests 1`` and a short ``--test-timeout``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.integration.kube import wait_until
from tests.integration.operator_process import OperatorProcess
from tests.integration.test_restoretest import (
    FAILURE_RETENTION,
    _create_test,
    _gone,
    _wait_phase,
    lifecycle_operator,
)

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.integration.test_restoretest"]

TEST_TIMEOUT = 30


@pytest.fixture(scope="module")
def limited_operator(lazarus_crds: list[str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    yield from lifecycle_operator(
        "limits", tmp_path_factory, "--max-concurrent-tests", "1", "--test-timeout", str(TEST_TIMEOUT)
    )


def test_a_test_waits_for_a_free_slot_and_a_test_over_its_deadline_fails_with_timeout(
    limited_operator: OperatorProcess,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    production: dict[str, Any],
    stuck_backup: str,
    namespace: str,
) -> None:
    # The first test waits (up to 10 minutes by default) for a workload that never becomes ready.
    first = _create_test(custom, namespace, stuck_backup)
    running = _wait_phase(custom, namespace, first, {"Verifying"})
    # The second would finish at once (it waits for no workload kind the backup has) but the
    # only slot is taken.
    second = _create_test(custom, namespace, stuck_backup, workloads={"waitFor": ["DaemonSets"]})
    waiting = _wait_phase(custom, namespace, second, {"Pending"})
    assert waiting["status"]["reason"] == "WaitingForSlot", waiting["status"]
    assert waiting["status"]["message"] == "waiting for a free slot: 1 running, at most 1 at once"
    assert not waiting["status"].get("sandboxNamespaces")

    # The overall deadline ends the first test, which frees the slot for the second.
    timed_out = _wait_phase(custom, namespace, first, {"Failed", "Succeeded"}, timeout=TEST_TIMEOUT + 60)
    assert timed_out["status"]["reason"] == "Timeout", timed_out["status"]
    assert timed_out["status"]["message"] == f"the test did not finish within {TEST_TIMEOUT}s"
    done = _wait_phase(custom, namespace, second, {"Failed", "Succeeded"})
    assert done["status"]["phase"] == "Succeeded", done["status"]
    sandboxes = list(running["status"]["sandboxNamespaces"]) + list(done["status"]["sandboxNamespaces"])
    wait_until("both sandboxes to be removed", lambda: _gone(core, sandboxes), timeout=FAILURE_RETENTION + 120)
