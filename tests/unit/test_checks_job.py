"""Custom check Jobs: the Job object, adoption after a restart, the watch, the verdict."""

from __future__ import annotations

from typing import Any

from lazarus.checks.job import job_body, job_name, run_custom_check
from lazarus.checks.results import ERROR, FAILED, PASSED
from lazarus.kube.client import ApiError
from lazarus.sandbox import TEST_UID_LABEL
from tests.unit.test_checks_fakes import SANDBOX, TEST_UID, FakeResponse, FakeRest, make_context, watch_line

JOBS = f"/apis/batch/v1/namespaces/{SANDBOX}/jobs"
NAME = f"lazarus-check-{TEST_UID}"
POD = {"image": "registry.example.com/check:1", "command": ["/check"], "timeout": 60}


def job_state(conditions: list[dict[str, Any]], version: str = "200", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": NAME,
            "namespace": SANDBOX,
            "resourceVersion": version,
            "labels": {TEST_UID_LABEL: TEST_UID},
        },
        "status": {"conditions": conditions, **status},
    }


COMPLETE = [{"type": "Complete", "status": "True"}]
FAILED_DEADLINE = [
    {"type": "Failed", "status": "True", "reason": "DeadlineExceeded", "message": "Job was active longer"}
]


def test_job_body() -> None:
    ctx = make_context(FakeRest(), {"shop": SANDBOX, "billing-db": "sbx-billing"})
    pod = {
        **POD,
        "args": ["--strict"],
        "env": [{"name": "PGHOST", "value": "postgres"}, {"name": "LAZARUS_SANDBOX_NAMESPACE", "value": "spoofed"}],
        "resources": {"limits": {"cpu": "500m"}},
        "retryPolicy": "OnFailure",
        "backoffLimit": 2,
    }
    body = job_body(ctx, pod, SANDBOX)
    assert body["metadata"]["name"] == job_name(ctx.test) == NAME and len(NAME) <= 63
    assert body["metadata"]["labels"][TEST_UID_LABEL] == TEST_UID
    assert body["spec"]["activeDeadlineSeconds"] == 60 and body["spec"]["backoffLimit"] == 2
    pod_spec = body["spec"]["template"]["spec"]
    assert pod_spec["restartPolicy"] == "OnFailure" and pod_spec["automountServiceAccountToken"] is False
    container = pod_spec["containers"][0]
    assert (container["command"], container["args"], container["resources"]) == (
        ["/check"], ["--strict"], {"limits": {"cpu": "500m"}},
    )  # fmt: skip
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["PGHOST"] == "postgres"
    assert env["LAZARUS_SANDBOX_NAMESPACE"] == SANDBOX  # ours win
    assert env["LAZARUS_NAMESPACE_MAPPING"] == f"billing-db=sbx-billing,shop={SANDBOX}"
    assert env["LAZARUS_SANDBOX_NAMESPACE_BILLING_DB"] == "sbx-billing"
    assert (env["LAZARUS_TEST_NAME"], env["LAZARUS_BACKUP_NAME"]) == ("nightly", "shop-daily")
    with_account = job_body(ctx, {**POD, "serviceAccountName": "checker"}, SANDBOX)["spec"]["template"]["spec"]
    assert with_account["serviceAccountName"] == "checker" and "automountServiceAccountToken" not in with_account


def completed_job_with_log(rest: FakeRest, log: bytes) -> None:
    rest.streams[JOBS] = [FakeResponse([watch_line("MODIFIED", job_state(COMPLETE, succeeded=1))])]
    rest.add(f"/api/v1/namespaces/{SANDBOX}/pods", {"items": [
        {"metadata": {"name": "p1", "namespace": SANDBOX, "creationTimestamp": "2026-01-01T00:00:00Z"},
         "status": {"phase": "Succeeded"}},
    ]})  # fmt: skip
    rest.streams[f"/api/v1/namespaces/{SANDBOX}/pods/p1/log"] = [FakeResponse([log])]


def test_a_completed_job_passes_with_its_log_tail_masked_in_status() -> None:
    rest = FakeRest()
    completed_job_with_log(rest, b"checked 5 tables\npassword=hunter22\n" + b"x" * 400 + b"\n")
    result = run_custom_check(make_context(rest), {"pod": POD})
    assert (result.status, result.pod_phase, result.job_name) == (PASSED, "Succeeded", NAME)
    assert result.result == "Job completed; 1 succeeded, 0 failed pod(s); logs: last 3 line(s) in logTail"
    tail = result.to_status()["logTail"]
    assert tail[:2] == ["checked 5 tables", "password=***"]
    assert len(tail[2]) == 300 and tail[2].endswith("…(truncated)")
    assert "hunter22" not in str(result.to_status())
    assert [m for m, p in rest.requests if p == JOBS] == ["POST", "GET"]  # create, then one watch


def test_values_of_secrets_the_env_reads_are_masked_in_the_log_tail() -> None:
    rest = FakeRest()
    completed_job_with_log(rest, b"connecting with token s3cr3t-token\n")
    rest.add_secret(SANDBOX, "api", {"token": "s3cr3t-token\n"})
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}}]
    result = run_custom_check(make_context(rest), {"pod": {**POD, "env": env}})
    assert result.to_status()["logTail"] == ["connecting with token ***"]
    job = next(body for body in rest.posted if body["kind"] == "Job")
    assert {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}} in (
        job["spec"]["template"]["spec"]["containers"][0]["env"]
    )


def test_the_log_tail_is_withheld_when_a_secret_to_mask_cannot_be_read() -> None:
    rest = FakeRest()
    completed_job_with_log(rest, b"token s3cr3t-token\n")
    # The Secret "api" does not exist (404): the values to mask are unknown.
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}}]
    result = run_custom_check(make_context(rest), {"pod": {**POD, "env": env}})
    assert result.status == PASSED and "logTail" not in result.to_status()
    assert "logs: withheld (Secret" in result.result and "s3cr3t" not in result.result


def test_a_failed_job_fails_with_its_reason_and_a_note_on_missing_logs() -> None:
    rest = FakeRest()
    rest.streams[JOBS] = [FakeResponse([watch_line("MODIFIED", job_state(FAILED_DEADLINE, failed=1))])]
    rest.add(f"/api/v1/namespaces/{SANDBOX}/pods", {"items": [
        {"metadata": {"name": "p1", "namespace": SANDBOX}, "status": {"phase": "Pending"}},
    ]})  # fmt: skip
    result = run_custom_check(make_context(rest), {"pod": POD})
    assert result.status == FAILED
    assert result.result == (
        "Job failed: DeadlineExceeded (Job was active longer); 0 succeeded, 1 failed pod(s); "
        "logs: not available (pod p1 never started)"
    )
    assert result.log_tail is None


def test_unavailable_logs_are_explained() -> None:
    rest = FakeRest()
    rest.streams[JOBS] = [FakeResponse([watch_line("MODIFIED", job_state(COMPLETE, succeeded=1))])]
    rest.add(f"/api/v1/namespaces/{SANDBOX}/pods", {"items": [
        {"metadata": {"name": "p1", "namespace": SANDBOX}, "status": {"phase": "Succeeded"}},
    ]})  # fmt: skip
    rest.streams[f"/api/v1/namespaces/{SANDBOX}/pods/p1/log"] = [ApiError(502, "BadGateway", "no kubelet on this node")]
    result = run_custom_check(make_context(rest), {"pod": POD})
    assert result.result.endswith("logs: not available (no kubelet on this node)")


def test_a_restart_adopts_the_existing_job_instead_of_creating_another() -> None:
    rest = FakeRest()
    rest.add(f"{JOBS}/{NAME}", job_state(COMPLETE, succeeded=1))  # created before the restart
    result = run_custom_check(make_context(rest), {"pod": POD})
    assert result.status == PASSED
    assert [m for m, p in rest.requests if p.startswith(JOBS)] == ["POST", "GET"]  # conflict, read; no watch
    assert rest.posted == []


def test_a_foreign_job_with_the_name_is_never_adopted() -> None:
    rest = FakeRest()
    foreign = job_state(COMPLETE)
    foreign["metadata"]["labels"] = {TEST_UID_LABEL: "someone-else"}
    rest.add(f"{JOBS}/{NAME}", foreign)
    result = run_custom_check(make_context(rest), {"pod": POD})
    assert result.status == ERROR
    assert (
        result.result == f"Job {SANDBOX}/{NAME} exists and is not this test's (label {TEST_UID_LABEL}='someone-else')"
    )


def test_the_watch_resumes_from_the_last_version_and_relists_when_expired() -> None:
    rest = FakeRest()
    running = job_state([], version="150")
    rest.streams[JOBS] = [
        FakeResponse([watch_line("MODIFIED", running)]),  # ends normally: resume from 150
        FakeResponse([watch_line("ERROR", {"kind": "Status", "code": 410, "reason": "Expired"})]),
        FakeResponse([watch_line("MODIFIED", job_state(COMPLETE, version="300", succeeded=1))]),
    ]
    original = rest.request

    def request(method: str, path: str, **options: Any) -> dict[str, Any]:
        if method == "GET" and path == f"{JOBS}/{NAME}":
            return job_state([], version="250")  # the relist after 410
        return original(method, path, **options)

    rest.request = request  # type: ignore[method-assign]
    result = run_custom_check(make_context(rest), {"pod": POD})
    assert result.status == PASSED
    assert [m for m, p in rest.requests if p == JOBS] == ["POST", "GET", "GET", "GET"]


def test_a_deleted_job_and_a_job_that_never_finishes_are_errors() -> None:
    rest = FakeRest()
    rest.streams[JOBS] = [FakeResponse([watch_line("DELETED", job_state([]))])]
    assert run_custom_check(make_context(rest), {"pod": POD}).result == (
        f"Job {SANDBOX}/{NAME} was deleted before it finished"
    )
    slow = FakeRest()
    result = run_custom_check(make_context(slow, seconds=1.5, real_sleep=True), {"pod": POD})
    assert (result.status, result.result) == (
        ERROR, f"Job {SANDBOX}/{NAME} did not finish in time (0 succeeded, 0 failed pod(s))",
    )  # fmt: skip
    assert len([p for _, p in slow.requests if p == JOBS]) <= 3  # empty watches are not re-opened in a busy loop


def test_an_api_error_on_create_is_reported() -> None:
    class Forbidden(FakeRest):
        def request(self, method: str, path: str, **options: Any) -> dict[str, Any]:
            raise ApiError(403, "Forbidden", "jobs.batch is forbidden")

    result = run_custom_check(make_context(Forbidden()), {"pod": POD})
    assert result.result == f"cannot create Job {SANDBOX}/{NAME}: 403 Forbidden: jobs.batch is forbidden"
