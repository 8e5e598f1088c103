"""Custom check Jobs on the test bed's real node: the check's container runs, its exit code is the
verdict and its log comes back (masked) in the result.

Three ways a check Job ends: its container exits 0 (Passed), exits non-zero (Failed:
BackoffLimitExceeded), or its pod cannot be scheduled at all (it requests more CPU than any node
has) until ``activeDeadlineSeconds``, the check's timeout, expires (Failed: DeadlineExceeded).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from kubernetes import client

from lazarus.checks.job import job_name
from lazarus.checks.results import FAILED, PASSED
from tests.integration.test_checks_fixtures import SOURCE, Sandbox
from tests.integration.workloads import BASE_IMAGE

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.integration.test_checks_fixtures"]

POD = {
    "image": BASE_IMAGE,
    "command": ["sh", "-c", 'echo "checking $LAZARUS_SANDBOX_NAMESPACE"; echo all good'],
    "timeout": 60,
}


def test_a_job_that_completes_passes_once_even_when_run_again(sandbox: Sandbox, batch: client.BatchV1Api) -> None:
    uid = str(uuid.uuid4())
    started = time.monotonic()
    report = sandbox.run({"customChecks": {"pod": POD}}, uid=uid)
    custom = report.status["custom"]
    assert custom["status"] == PASSED, custom
    assert custom["jobName"] == f"lazarus-check-{uid}"
    assert custom["podPhase"] == "Succeeded"
    assert custom["result"] == "Job completed; 1 succeeded, 0 failed pod(s); logs: last 2 line(s) in logTail"
    assert custom["logTail"] == [f"checking {sandbox.namespace}", "all good"]
    assert time.monotonic() - started < 30
    job: Any = batch.read_namespaced_job(custom["jobName"], sandbox.namespace)
    env = {e.name: e.value for e in job.spec.template.spec.containers[0].env}
    assert env["LAZARUS_SANDBOX_NAMESPACE"] == sandbox.namespace
    assert env["LAZARUS_NAMESPACE_MAPPING"] == f"{SOURCE}={sandbox.namespace}"
    assert job.spec.active_deadline_seconds == 60 and job.spec.backoff_limit == 0
    # The operator restarts mid-check and runs the checks again: the same Job is used.
    again = sandbox.run({"customChecks": {"pod": POD}}, uid=uid)
    assert again.status["custom"]["status"] == PASSED
    test = sandbox.test({}, uid=uid)
    jobs: list[Any] = batch.list_namespaced_job(sandbox.namespace, label_selector=f"lazarus.io/test-uid={uid}").items
    assert [j.metadata.name for j in jobs] == [job_name(test)]


def test_a_job_that_exits_non_zero_fails_with_its_log_masked(sandbox: Sandbox) -> None:
    """The check prints a Secret's value it reads and exits 1: Failed, and the value is masked."""
    sandbox.secret("check-token", {"token": "tok-3f9a7c21"})
    pod = {
        **POD,
        "command": ["sh", "-c", 'echo "token is $TOKEN"; echo "orders table missing" >&2; exit 3'],
        "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "check-token", "key": "token"}}}],
    }
    report = sandbox.run({"customChecks": {"pod": pod}}, uid=str(uuid.uuid4()))
    custom = report.status["custom"]
    assert custom["status"] == FAILED and not report.passed, custom
    assert custom["result"].startswith("Job failed: BackoffLimitExceeded"), custom["result"]
    assert "0 succeeded, 1 failed pod(s)" in custom["result"] and custom["podPhase"] == "Failed"
    assert sorted(custom["logTail"]) == ["orders table missing", "token is ***"]
    assert "tok-3f9a7c21" not in str(report.status)


def test_a_job_that_cannot_run_fails_at_its_deadline(sandbox: Sandbox) -> None:
    pod = {**POD, "timeout": 3, "resources": {"requests": {"cpu": "100000"}}}
    started = time.monotonic()
    report = sandbox.run({"customChecks": {"pod": pod}}, uid=str(uuid.uuid4()))
    custom = report.status["custom"]
    assert custom["status"] == FAILED, custom
    assert custom["result"].startswith("Job failed: DeadlineExceeded")
    # The Job controller removes the pod that never ran when the deadline passes.
    assert "; logs: not available (" in custom["result"]
    assert 3 <= time.monotonic() - started < 40
    assert not report.passed
