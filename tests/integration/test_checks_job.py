"""Custom check Jobs on the test bed: kwok completes Job pods, so a Job that can run passes.

kwok's stages on the test bed make every Job pod succeed (no stage makes a pod fail: kwok's
``pod-container-running-failed`` chaos stage is not configured, and it would need labels on the
pod that a custom check cannot set). A failing Job is produced the way a real one often fails: its
pod cannot be scheduled (it requests more CPU than any node has), so ``activeDeadlineSeconds``
(the check's timeout) expires and the Job controller marks the Job Failed with DeadlineExceeded.
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

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.integration.test_checks_fixtures"]

POD = {"image": "registry.example.com/lazarus-check:1", "command": ["/bin/check"], "timeout": 60}


def test_a_job_that_completes_passes_once_even_when_run_again(sandbox: Sandbox, batch: client.BatchV1Api) -> None:
    uid = str(uuid.uuid4())
    started = time.monotonic()
    report = sandbox.run({"customChecks": {"pod": POD}}, uid=uid)
    custom = report.status["custom"]
    assert custom["status"] == PASSED, custom
    assert custom["jobName"] == f"lazarus-check-{uid}"
    assert custom["podPhase"] == "Succeeded"
    # kwok's nodes run no kubelet: the API server cannot fetch logs, and the result says so.
    assert custom["result"].startswith("Job completed; 1 succeeded, 0 failed pod(s); logs: not available (")
    assert "logTail" not in custom
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
