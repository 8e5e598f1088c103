"""Run a test's health checks: in parallel, each within its own timeouts, all under one deadline.

Contract of ``run_health_checks``:

- Every enabled check of ``spec.healthChecks`` runs: each database check (its queries in order on
  one connection), each HTTP endpoint, and the custom check Job, as separate tasks on a bounded
  thread pool (``MAX_PARALLEL_CHECKS``). Disabled ones are reported ``Skipped``.
- All of it ends by ``spec.healthChecks.timeout`` (default 600 s): every timeout a check applies is
  capped by that deadline, and a task still running at the deadline is reported ``Error`` ("did
  not finish within the overall health-check timeout") while the call returns on time; the
  worker finishes in the background within its own (capped) timeouts.
- One check failing never stops another. Nothing a check meets raises out of this call: a check
  that cannot run ends ``Error`` saying what and why; even an unexpected exception becomes an
  ``Error`` result (and a log line with its traceback, never its locals).
- The result is a ``HealthCheckReport``: ``status`` is exactly ``status.healthChecks`` of the CRD
  (phase ``Completed``, or ``Skipped`` when checks are disabled or none are configured);
  ``passed`` is whether no enabled check ended ``Failed`` or ``Error``; ``newest_data`` is the
  newest timestamp any ``expectedRecency`` query found (for the test's RPO); ``summary`` is one
  line for the test's message and Events.
- Secrets read for the checks appear in no result, summary or log line.
- ``spec.healthChecks.retries`` (CRD: "retries of a failed check") is how often a database
  connection that failed for a transient reason is tried again: a failed expectation on restored
  data is never retried (the data does not change between attempts). HTTP endpoints use their
  own ``retries``, the custom Job its ``backoffLimit``.

API requests per run: one GET per distinct Secret and Service the checks name, plus for a custom
check one create (or read), one watch (resumed if the server ends it), one pod list and one log
read.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from lazarus.checks.context import CheckContext
from lazarus.checks.results import (
    ERROR,
    PASSED,
    SKIPPED,
    CheckResult,
    CustomResult,
    GroupResult,
    bounded,
    rollup,
)
from lazarus.daemonpool import DaemonPool
from lazarus.kube.client import Rest

log = structlog.get_logger(__name__)

# CRD defaults of spec.healthChecks, repeated for specs the API server did not default.
DEFAULT_TIMEOUT = 600.0
DEFAULT_RETRIES = 3
# Checks running at once per test. Each holds one database connection, HTTP request or Job watch;
# eight keep a test with many checks fast without opening dozens of connections into a sandbox (or
# taking all of the operator's API connection pool, sized for workers plus watches).
MAX_PARALLEL_CHECKS = 8
# How many problems the one-line summary names (all of them are in status).
SUMMARY_PROBLEMS = 5

COMPLETED = "Completed"

Result = GroupResult | CheckResult | CustomResult


@dataclass(frozen=True)
class HealthCheckReport:
    """The outcome of one run of a test's health checks (see the module docstring)."""

    status: dict[str, Any]
    """``status.healthChecks``, exactly as the CRD defines it."""
    passed: bool
    """No enabled check ended ``Failed`` or ``Error`` (True when none ran)."""
    summary: str
    """One line, e.g. ``3 of 7 health checks did not pass: database/orders: Failed (...)``."""
    problems: list[str] = field(default_factory=list)
    """One line per check that did not pass (``kind[/name]/check: Status (result)``)."""
    newest_data: datetime | None = None
    """Newest timestamp found by ``expectedRecency`` queries (for RPO); None without one."""


@dataclass
class _Task:
    slot: tuple[str, int]
    label: str
    run: Callable[[], Result]
    error: Callable[[str], Result]
    """Builds this task's result for a task that could not finish, from a reason."""


def run_health_checks(
    rest: Rest,
    test: Mapping[str, Any],
    namespace_mapping: Mapping[str, str],
    *,
    backup_time: datetime | None = None,
    max_parallel: int = MAX_PARALLEL_CHECKS,
) -> HealthCheckReport:
    """Run every enabled health check of ``test`` against its sandbox (see the module docstring).

    ``namespace_mapping``: source namespace → sandbox namespace (``status.namespaceMapping``).
    ``backup_time``: when the backup was taken (``expectedRecency`` measures from it; default now).
    """
    checks: Mapping[str, Any] = (test.get("spec") or {}).get("healthChecks") or {}
    if not checks.get("enabled", True):
        return HealthCheckReport({"phase": SKIPPED}, True, "health checks are disabled")
    timeout = float(checks.get("timeout") or DEFAULT_TIMEOUT)
    started = time.monotonic()
    ctx = CheckContext(
        rest,
        dict(test),
        namespace_mapping,
        deadline=started + timeout,
        reference_time=backup_time or datetime.now(UTC),
        retries=int(checks["retries"]) if checks.get("retries") is not None else DEFAULT_RETRIES,
    )
    status: dict[str, Any] = {"phase": COMPLETED}
    tasks = _tasks(ctx, checks, status)
    if not tasks and len(status) == 1:
        return HealthCheckReport({"phase": SKIPPED}, True, "no health checks are configured")
    results = _execute(ctx, tasks, timeout, max_parallel)
    report = _report(status, tasks, results)
    log.info(
        "health checks finished",
        test=f"{test['metadata'].get('namespace')}/{test['metadata'].get('name')}",
        passed=report.passed,
        checks=len(tasks),
        seconds=round(time.monotonic() - started, 3),
    )
    return report


def _tasks(ctx: CheckContext, checks: Mapping[str, Any], status: dict[str, Any]) -> list[_Task]:
    """The tasks to run; disabled checks go straight into ``status`` as Skipped."""
    from lazarus.checks.database import run_database_check

    tasks: list[_Task] = []

    def database(slot: tuple[str, int], spec: Mapping[str, Any], named: bool) -> None:
        name = str(spec.get("name") or "database")
        if not spec.get("enabled", True):
            skipped = GroupResult(SKIPPED, "disabled", name=name if named else None)
            _place(status, slot, skipped.to_status())
            return

        def error(reason: str) -> GroupResult:
            queries = spec.get("queries") or []
            unfinished = [CheckResult(str(q.get("name", "query")), ERROR, f"not finished: {reason}") for q in queries]
            return GroupResult(ERROR, reason, unfinished, name=name if named else None)

        label = "database" if not named else f"databases/{name}"
        tasks.append(_Task(slot, label, lambda: run_database_check(ctx, spec, named=named), error))

    if checks.get("database"):
        database(("database", 0), checks["database"], named=False)
    for index, spec in enumerate(checks.get("databases") or []):
        status.setdefault("databases", []).append(None)
        database(("databases", index), spec, named=True)

    http = checks.get("http")
    if http:
        if not http.get("enabled", True):
            status["http"] = GroupResult(SKIPPED, "disabled").to_status()
        else:
            from lazarus.checks.http import run_endpoint

            def endpoint_task(index: int, endpoint: Mapping[str, Any]) -> _Task:
                name = str(endpoint.get("name", "endpoint"))
                return _Task(
                    ("http", index),
                    f"http/{name}",
                    lambda: run_endpoint(ctx, endpoint),
                    lambda reason: CheckResult(name, ERROR, reason),
                )

            tasks += [endpoint_task(i, e) for i, e in enumerate(http.get("endpoints") or [])]

    custom = checks.get("customChecks")
    if custom:
        from lazarus.checks.job import job_name, run_custom_check

        tasks.append(
            _Task(
                ("custom", 0),
                "custom",
                lambda: run_custom_check(ctx, custom),
                lambda reason: CustomResult(ERROR, reason, job_name=job_name(ctx.test)),
            )
        )
    return tasks


def _guarded(ctx: CheckContext, task: _Task) -> Result:
    """``task.run()``; an unexpected exception becomes the task's Error result."""
    try:
        return task.run()
    except Exception as exc:  # the contract: nothing escapes; the bug is logged, secrets scrubbed
        log.error(
            "health check raised",
            check=task.label,
            error=f"{type(exc).__name__}: {ctx.scrub(str(exc))}",
            traceback="".join(traceback.format_tb(exc.__traceback__)),
        )
        return task.error(f"internal error ({type(exc).__name__}): {ctx.scrub(str(exc))}")


def _execute(ctx: CheckContext, tasks: list[_Task], timeout: float, max_parallel: int) -> list[Result]:
    """Run ``tasks`` on a bounded pool; return their results in order, by the deadline at the latest."""
    if not tasks:
        return []
    executor = DaemonPool(max(1, min(max_parallel, len(tasks))), "lazarus-check")
    futures: list[Future[Result]] = [executor.submit(_guarded, ctx, task) for task in tasks]
    done, _ = wait(futures, timeout=max(ctx.remaining(), 0.0))
    for future in futures:
        future.cancel()  # those still waiting for a slot never start; running ones end on their own
    reason = f"did not finish within the overall health-check timeout of {timeout:g}s"
    return [f.result() if f in done else task.error(reason) for f, task in zip(futures, tasks, strict=True)]


def _place(status: dict[str, Any], slot: tuple[str, int], item: dict[str, Any]) -> None:
    kind, index = slot
    if kind == "databases":
        status["databases"][index] = item
    else:
        status[kind] = item


def _report(status: dict[str, Any], tasks: list[_Task], results: list[Result]) -> HealthCheckReport:
    """Assemble ``status.healthChecks`` and the report from the results, in spec order."""
    problems: list[str] = []
    newest: datetime | None = None
    endpoints: list[CheckResult] = []
    total = 0
    for task, result in zip(tasks, results, strict=True):
        if isinstance(result, GroupResult):
            _place(status, task.slot, result.to_status())
            total += len(result.checks)
            problems += _group_problems(task.label, result)
            if result.newest_data and (newest is None or result.newest_data > newest):
                newest = result.newest_data
        elif isinstance(result, CustomResult):
            status["custom"] = result.to_status()
            total += 1
            if result.status not in (PASSED, SKIPPED):
                problems.append(f"custom: {result.status} ({result.result})")
        else:
            endpoints.append(result)
            total += 1
            if result.status not in (PASSED, SKIPPED):
                problems.append(f"{task.label}: {result.status} ({result.result})")
    if endpoints:
        passed = sum(e.status == PASSED for e in endpoints)
        group = GroupResult(rollup(e.status for e in endpoints), f"{passed} of {len(endpoints)} endpoints passed")
        group.checks = endpoints
        status["http"] = group.to_status()
    if problems:
        named = "; ".join(problems[:SUMMARY_PROBLEMS]) + ("; …" if len(problems) > SUMMARY_PROBLEMS else "")
        summary = bounded(f"{len(problems)} of {max(total, len(problems))} health checks did not pass: {named}")
    else:
        summary = f"{total} health checks passed"
    return HealthCheckReport(status, not problems, summary, problems, newest)


def _group_problems(label: str, group: GroupResult) -> list[str]:
    """Problem lines of a database check: one for the group when none of its queries ran."""
    if group.status in (PASSED, SKIPPED):
        return []
    if all(c.status == ERROR and c.result.startswith("not ") for c in group.checks):
        return [f"{label}: {group.status} ({group.message})"]
    return [f"{label}/{c.name}: {c.status} ({c.result})" for c in group.checks if c.status not in (PASSED, SKIPPED)]
