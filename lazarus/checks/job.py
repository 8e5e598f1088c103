"""Custom checks: a Kubernetes Job of the user's in the sandbox; the check passes when it completes.

The Job:

- runs in the sandbox of the backup's only namespace (with several, the first in sorted order of
  the source names), named ``lazarus-check-<test UID>``: deterministic, so an operator restart
  during the check finds the Job it created instead of starting a second one (a Job of that name
  not labelled with this test's UID is an ``Error``, never adopted);
- is labelled like every object of the test (``lazarus.sandbox.owner_labels``) and dies with the
  sandbox namespace;
- runs ``pod.image`` with ``command``, ``args``, ``env`` and ``resources`` as given, plus the
  variables ``LAZARUS_SANDBOX_NAMESPACE`` (where it runs), ``LAZARUS_NAMESPACE_MAPPING``
  (``source=sandbox,...``), ``LAZARUS_SANDBOX_NAMESPACE_<SOURCE>`` (per source namespace, upper
  case, ``-`` as ``_``), ``LAZARUS_TEST_NAME``, ``LAZARUS_TEST_NAMESPACE`` and
  ``LAZARUS_BACKUP_NAME`` (Kubernetes adds ``<SERVICE>_SERVICE_HOST``/``_PORT`` for the Services of
  its namespace);
- has ``activeDeadlineSeconds`` = ``pod.timeout``, ``backoffLimit`` = ``pod.backoffLimit``, the
  pod's ``restartPolicy`` = ``pod.retryPolicy``; no service-account token unless
  ``pod.serviceAccountName`` is set (a check that needs the API says so).

Waiting: a WATCH on that one Job (``fieldSelector=metadata.name=...``) from the resourceVersion
the create/read returned, until its ``Complete`` or ``Failed`` condition, bounded by the Job's
deadline plus ``JOB_DEADLINE_GRACE`` and by the overall deadline. No polling: an ended watch is
resumed from the last resourceVersion; an expired one (410) re-reads the Job once.

Result: ``Passed`` (Complete), ``Failed`` (Failed: its reason, e.g. ``DeadlineExceeded`` or
``BackoffLimitExceeded``, and message), ``Error`` (the Job could not be created, vanished, or did
not finish in time), with the phase of its newest pod. The tail of that pod's log (at most
``LOG_TAIL_LINES`` lines / ``LOG_TAIL_BYTES`` bytes) goes into ``CustomResult.log_tail`` (status
``logTail``), masked like every check text: the values of the Secrets the check's ``env`` reads
(``valueFrom.secretKeyRef``) and any URI or ``password=`` password. If such a Secret cannot be
read the tail is withheld rather than shown unmasked. The result text says whether logs were
available and, if not, why.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

from lazarus.checks.context import CheckContext, CheckError
from lazarus.checks.results import ERROR, FAILED, PASSED, SKIPPED, CustomResult
from lazarus.kube.client import CONNECTION_ERRORS, ApiError
from lazarus.kube.watch import decode_watch_stream
from lazarus.sandbox import TEST_UID_LABEL, owner_labels

JOB_NAME_PREFIX = "lazarus-check-"
CONTAINER_NAME = "check"
CHECK_LABEL = "lazarus.io/check"
MANAGED_BY = {"app.kubernetes.io/managed-by": "lazarus"}
# CRD defaults, repeated for specs the API server did not default.
DEFAULT_TIMEOUT = 300
DEFAULT_RETRY_POLICY = "Never"
DEFAULT_BACKOFF_LIMIT = 0
# The Job controller marks a Job Failed (DeadlineExceeded) shortly after activeDeadlineSeconds;
# wait this much longer for that verdict before giving up on the Job ourselves.
JOB_DEADLINE_GRACE = 30.0
# A single watch request lasts at most this long (the API server ends it; it is then resumed).
WATCH_SECONDS = 300
# Read timeout of a watch beyond its server-side timeout: a silent connection past that is dead.
WATCH_READ_MARGIN = 10.0
WATCH_READ_SIZE = 64 * 1024
# A watch that ends sooner than this without an event (a proxy cutting it, say) is resumed only
# after a pause of the same length, so a misbehaving server cannot turn the wait into a busy loop.
WATCH_MIN_SECONDS = 1.0
# The log tail kept in status: enough for the error a check prints last, small enough for etcd.
LOG_TAIL_LINES = 20
LOG_TAIL_BYTES = 4 * 1024
_JOBS = "/apis/batch/v1/namespaces/{namespace}/jobs"
_POD_JOB_LABEL = "batch.kubernetes.io/job-name"
# Anything a Kubernetes API call raises: an error answer, or no answer.
API_ERRORS: tuple[type[BaseException], ...] = (ApiError, *CONNECTION_ERRORS)


def job_name(test: Mapping[str, Any]) -> str:
    """The deterministic name of a test's check Job (at most 50 characters)."""
    return f"{JOB_NAME_PREFIX}{test['metadata']['uid']}"


def _env_name(namespace: str) -> str:
    return "LAZARUS_SANDBOX_NAMESPACE_" + re.sub(r"[^A-Z0-9]", "_", namespace.upper())


def job_body(ctx: CheckContext, pod: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    """The Job object for custom check ``pod`` in sandbox ``namespace``."""
    test = ctx.test
    ours = {
        "LAZARUS_SANDBOX_NAMESPACE": namespace,
        "LAZARUS_NAMESPACE_MAPPING": ",".join(f"{s}={t}" for s, t in sorted(ctx.mapping.items())),
        **{_env_name(s): t for s, t in sorted(ctx.mapping.items())},
        "LAZARUS_TEST_NAME": str(test["metadata"]["name"]),
        "LAZARUS_TEST_NAMESPACE": ctx.test_namespace,
        "LAZARUS_BACKUP_NAME": str((test.get("spec") or {}).get("backupName", "")),
    }
    env = [dict(e) for e in pod.get("env") or [] if e.get("name") not in ours]
    env += [{"name": k, "value": v} for k, v in ours.items()]
    container: dict[str, Any] = {"name": CONTAINER_NAME, "image": pod["image"], "env": env}
    for key in ("command", "args", "resources"):
        if pod.get(key):
            container[key] = pod[key]
    labels = {**owner_labels(test), **MANAGED_BY, CHECK_LABEL: "custom"}
    pod_spec: dict[str, Any] = {
        "restartPolicy": pod.get("retryPolicy") or DEFAULT_RETRY_POLICY,
        "containers": [container],
    }
    if pod.get("serviceAccountName"):
        pod_spec["serviceAccountName"] = pod["serviceAccountName"]
    else:
        pod_spec["automountServiceAccountToken"] = False
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name(test), "namespace": namespace, "labels": labels},
        "spec": {
            "backoffLimit": int(pod.get("backoffLimit") or DEFAULT_BACKOFF_LIMIT),
            "activeDeadlineSeconds": int(pod.get("timeout") or DEFAULT_TIMEOUT),
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def _finished(job: Mapping[str, Any]) -> dict[str, Any] | None:
    """The Job's ``Complete`` or ``Failed`` condition when it is true."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return dict(condition)
    return None


def _create_or_adopt(ctx: CheckContext, body: dict[str, Any]) -> dict[str, Any]:
    """Create the Job, or read the one this test created before; ``CheckError`` otherwise."""
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    collection = _JOBS.format(namespace=namespace)
    try:
        return ctx.rest.request("POST", collection, body=body)
    except ApiError as exc:
        if not exc.conflict:
            raise CheckError(f"cannot create Job {namespace}/{name}: {exc}") from None
    try:
        job = ctx.rest.request("GET", f"{collection}/{name}")
    except ApiError as exc:
        raise CheckError(f"cannot read Job {namespace}/{name}: {exc}") from None
    uid = (job["metadata"].get("labels") or {}).get(TEST_UID_LABEL)
    if uid != ctx.test["metadata"]["uid"]:
        raise CheckError(f"Job {namespace}/{name} exists and is not this test's (label {TEST_UID_LABEL}={uid!r})")
    return job


def _wait(ctx: CheckContext, job: dict[str, Any], deadline: float) -> dict[str, Any]:
    """Watch the Job until it finishes or ``deadline`` (clock) passes; return its last state."""
    namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
    collection = _JOBS.format(namespace=namespace)
    version = str(job["metadata"].get("resourceVersion", ""))
    while _finished(job) is None:
        left = min(deadline, ctx.deadline) - ctx.clock()
        if left <= 0:
            return job
        seconds = max(1, min(int(left), WATCH_SECONDS))
        query = [
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("fieldSelector", f"metadata.name={name}"),
            ("resourceVersion", version),
            ("timeoutSeconds", str(seconds)),
        ]
        opened, events = ctx.clock(), 0
        try:
            response = ctx.rest.open("GET", collection, query=query, timeout=(5.0, seconds + WATCH_READ_MARGIN))
        except ApiError as exc:
            if not exc.expired:
                raise CheckError(f"cannot watch Job {namespace}/{name}: {exc}") from None
            job = _read_job(ctx, collection, name)
            version = str(job["metadata"].get("resourceVersion", ""))
            continue
        except CONNECTION_ERRORS as exc:
            raise CheckError(f"cannot watch Job {namespace}/{name}: the API server is unreachable ({exc})") from None
        try:
            for event in decode_watch_stream(response.stream(WATCH_READ_SIZE)):
                events += 1
                obj = event.object
                if event.type == "ERROR":
                    if ApiError.from_status(obj).expired:
                        job = _read_job(ctx, collection, name)
                        version = str(job["metadata"].get("resourceVersion", ""))
                        break
                    raise CheckError(f"watching Job {namespace}/{name} failed: {obj.get('message', obj)}")
                version = str(obj.get("metadata", {}).get("resourceVersion", version))
                if event.type == "DELETED":
                    raise CheckError(f"Job {namespace}/{name} was deleted before it finished")
                if event.type in ("ADDED", "MODIFIED"):
                    job = obj
                    if _finished(job) is not None:
                        break
        except CONNECTION_ERRORS:
            pass  # the stream broke or went silent: resume from the last resourceVersion
        except ValueError:
            raise CheckError(f"watching Job {namespace}/{name} returned malformed data") from None
        finally:
            response.close()
            response.release_conn()
        if not events and ctx.clock() - opened < WATCH_MIN_SECONDS:
            ctx.sleep(min(WATCH_MIN_SECONDS, max(min(deadline, ctx.deadline) - ctx.clock(), 0.0)))
    return job


def _read_job(ctx: CheckContext, collection: str, name: str) -> dict[str, Any]:
    try:
        return ctx.rest.request("GET", f"{collection}/{name}")
    except ApiError as exc:
        raise CheckError(f"cannot read Job {name}: {exc}") from None


def _newest_pod(ctx: CheckContext, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        pods = (
            ctx.rest.request(
                "GET", f"/api/v1/namespaces/{namespace}/pods", query={"labelSelector": f"{_POD_JOB_LABEL}={name}"}
            ).get("items")
            or []
        )
    except API_ERRORS:
        return None
    return max(pods, key=lambda p: p["metadata"].get("creationTimestamp") or "", default=None)


def _log_tail(ctx: CheckContext, pod: Mapping[str, Any] | None) -> tuple[str | None, str]:
    """(the log tail or None, a note on it for the result text)."""
    if pod is None:
        return None, "logs: not available (no pod of the Job is left)"
    name = pod["metadata"]["name"]
    if (pod.get("status") or {}).get("phase") == "Pending":
        return None, f"logs: not available (pod {name} never started)"
    path = f"/api/v1/namespaces/{pod['metadata']['namespace']}/pods/{name}/log"
    query = {"container": CONTAINER_NAME, "tailLines": LOG_TAIL_LINES, "limitBytes": LOG_TAIL_BYTES}
    try:
        response = ctx.rest.open("GET", path, query=query, timeout=(5.0, 15.0))
    except ApiError as exc:
        return None, f"logs: not available ({exc.message or exc.reason or exc.status})"
    except CONNECTION_ERRORS as exc:
        return None, f"logs: not available ({exc})"
    try:
        tail = response.read(LOG_TAIL_BYTES).decode("utf-8", "replace")
    finally:
        response.close()
        response.release_conn()
    lines = len(tail.splitlines())
    return tail, f"logs: last {lines} line(s) in logTail"


def _mask_env_secrets(ctx: CheckContext, pod: Mapping[str, Any], namespace: str) -> None:
    """Remember for scrubbing the value of every Secret key the check's ``env`` reads.

    Raises ``CheckError`` if one cannot be read: the log tail is then withheld, not shown unmasked.
    """
    for var in pod.get("env") or []:
        ref = (var.get("valueFrom") or {}).get("secretKeyRef")
        if not ref:
            continue
        path = f"/api/v1/namespaces/{namespace}/secrets/{ref['name']}"
        try:
            data = ctx.rest.request("GET", path).get("data") or {}
        except API_ERRORS as exc:
            raise CheckError(f"Secret {namespace}/{ref['name']} could not be read to mask it ({exc})") from None
        if ref["key"] in data:
            value = base64.b64decode(data[ref["key"]]).decode("utf-8", "replace")
            ctx.remember_secret(value)
            ctx.remember_secret(value.rstrip("\r\n"))


def _masked_log_tail(
    ctx: CheckContext, pod_spec: Mapping[str, Any], newest: Mapping[str, Any] | None, namespace: str
) -> tuple[str | None, str]:
    """The newest pod's log tail with the check's secrets masked (see the module docstring)."""
    tail, note = _log_tail(ctx, newest)
    if tail is None:
        return None, note
    try:
        _mask_env_secrets(ctx, pod_spec, namespace)
    except CheckError as exc:
        return None, f"logs: withheld ({exc})"
    return ctx.scrub(tail), note


def run_custom_check(ctx: CheckContext, custom: Mapping[str, Any]) -> CustomResult:
    """Run the custom check Job (see the module docstring); never raises for anything it meets."""
    started = ctx.clock()
    if not custom.get("enabled", True):
        return CustomResult(status=SKIPPED, result="disabled")
    result = CustomResult(status=ERROR, job_name=job_name(ctx.test))
    try:
        namespace = ctx.mapping[sorted(ctx.mapping)[0]] if ctx.mapping else None
        if namespace is None:
            raise CheckError("the test has no sandbox namespace to run the Job in")
        pod = custom.get("pod") or {}
        timeout = float(pod.get("timeout") or DEFAULT_TIMEOUT)
        job = _create_or_adopt(ctx, job_body(ctx, pod, namespace))
        job = _wait(ctx, job, ctx.clock() + timeout + JOB_DEADLINE_GRACE)
        condition = _finished(job)
        newest = _newest_pod(ctx, namespace, result.job_name or "")
        result.pod_phase = (newest or {}).get("status", {}).get("phase")
        status = job.get("status") or {}
        pods = f"{int(status.get('succeeded') or 0)} succeeded, {int(status.get('failed') or 0)} failed pod(s)"
        if condition is None:
            result.result = f"Job {namespace}/{result.job_name} did not finish in time ({pods})"
            return result
        result.log_tail, note = _masked_log_tail(ctx, pod, newest, namespace)
        if condition["type"] == "Complete":
            result.status, verdict = PASSED, "Job completed"
        else:
            result.status = FAILED
            verdict = f"Job failed: {condition.get('reason') or 'Failed'}"
            if condition.get("message"):
                verdict += f" ({condition['message']})"
        result.result = f"{verdict}; {pods}; {note}"
    except CheckError as exc:
        result.result = ctx.scrub(str(exc))
    except API_ERRORS as exc:
        result.result = ctx.scrub(f"Kubernetes API error: {exc}")
    finally:
        result.duration = ctx.clock() - started
    return result
