"""The health-check runner: parallel tasks, one deadline, contained failures, the CRD's status shape."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

import lazarus.checks.database
import lazarus.checks.http
import lazarus.checks.job
import lazarus.checks.runner
from lazarus.checks import run_health_checks
from lazarus.checks.results import ERROR, FAILED, PASSED, SKIPPED, CheckResult, CustomResult, GroupResult
from lazarus.daemonpool import DaemonPool
from tests.unit.test_checks_fakes import SANDBOX, SOURCE, FakeRest, make_test
from tests.unit.test_crds import generate, validate
from tests.waiting import JOIN_TIMEOUT

ROOT = Path(__file__).resolve().parents[2]
STATUS_SCHEMA = generate.health_check_status()
MAPPING = {SOURCE: SANDBOX}


def assert_valid_status(status: dict[str, Any]) -> None:
    assert validate(status, STATUS_SCHEMA, "status.healthChecks") == []


def sample_checks() -> dict[str, Any]:
    sample = yaml.safe_load((ROOT / "manifests/samples/restoretest-postgres.yaml").read_text())
    checks: dict[str, Any] = sample["spec"]["healthChecks"]
    return checks


def db_spec(name: str, sql: str = "SELECT 1") -> dict[str, Any]:
    return {"name": name, "type": "postgres", "serviceRef": {"name": "db"}, "queries": [{"name": "q", "sql": sql}]}


def test_every_kind_of_check_runs_and_lands_in_its_place(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def database(ctx: Any, spec: dict[str, Any], *, named: bool, engine: Any = None) -> GroupResult:
        seen.append(f"database:{spec['name']}:{named}")
        return GroupResult(
            PASSED, "ok", [CheckResult("q", PASSED, "Count: 1", 0.5)], name=spec["name"] if named else None
        )

    def endpoint(ctx: Any, spec: dict[str, Any]) -> CheckResult:
        seen.append(f"http:{spec['name']}")
        return CheckResult(spec["name"], PASSED, "HTTP 200 in 0.010s", 0.01, 200)

    def custom(ctx: Any, spec: dict[str, Any]) -> CustomResult:
        seen.append("custom")
        return CustomResult(PASSED, "Job completed", "lazarus-check-x", "Succeeded", 2.0, log_tail="checked 5 tables")

    monkeypatch.setattr(lazarus.checks.database, "run_database_check", database)
    monkeypatch.setattr(lazarus.checks.http, "run_endpoint", endpoint)
    monkeypatch.setattr(lazarus.checks.job, "run_custom_check", custom)
    checks = sample_checks()
    checks["databases"] = [db_spec("second")]
    report = run_health_checks(FakeRest(), make_test(checks), MAPPING)  # type: ignore[arg-type]
    assert sorted(seen) == sorted(
        [
            "database:users-db:False",
            "database:second:True",
            "http:api-health",
            "http:api-metrics",
            "http:api-version",
            "custom",
        ]
    )
    status = report.status
    assert_valid_status(status)
    assert status["phase"] == "Completed"
    assert "name" not in status["database"] and status["databases"][0]["name"] == "second"
    assert [c["name"] for c in status["http"]["checks"]] == ["api-health", "api-metrics", "api-version"]
    assert status["http"]["checks"][0]["statusCode"] == 200
    assert status["http"]["message"] == "3 of 3 endpoints passed"
    assert status["custom"] == {
        "status": PASSED, "result": "Job completed", "jobName": "lazarus-check-x", "podPhase": "Succeeded",
        "duration": 2.0, "logTail": ["checked 5 tables"],
    }  # fmt: skip
    assert (report.passed, report.summary) == (True, "6 health checks passed")


def test_nothing_raises_and_every_missing_thing_is_named() -> None:
    """The sample against an empty cluster: every check fails to locate what it needs."""
    checks = sample_checks()
    checks["timeout"] = 3
    rest = FakeRest()
    rest.add_secret("lazarus-system", "api-token", {"token": "Bearer s3cr3t-token"})
    test = make_test(checks)
    test["metadata"]["namespace"] = "lazarus-system"
    started = time.monotonic()
    report = run_health_checks(rest, test, {"prod-db": SANDBOX})  # type: ignore[arg-type]
    assert time.monotonic() - started < 4.5
    assert_valid_status(report.status)
    database = report.status["database"]
    assert database["status"] == ERROR
    assert database["message"] == (
        f"cannot locate the database: Secret {SANDBOX}/restore-db-creds not found "
        "(the restored copy of prod-db/restore-db-creds: was it in the backup?)"
    )
    http = report.status["http"]["checks"]
    assert {c["status"] for c in http} == {ERROR}
    assert http[0]["result"].startswith(f"Service {SANDBOX}/api-service not found")
    assert report.status["custom"]["status"] == ERROR
    assert not report.passed
    assert report.summary.startswith("5 of 7 health checks did not pass: database: Error (cannot locate")
    assert "s3cr3t" not in str(report)


def test_check_threads_do_not_hold_up_the_process_exit() -> None:
    """A check that never ends leaves no thread that interpreter exit would join."""
    release = threading.Event()

    def endless(ctx: Any, spec: dict[str, Any], *, named: bool, engine: Any = None) -> GroupResult:
        release.wait()
        return GroupResult(PASSED, "ok")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lazarus.checks.database, "run_database_check", endless)
        checks = {"databases": [db_spec("db")], "timeout": 0.2}
        report = run_health_checks(FakeRest(), make_test(checks), MAPPING)  # type: ignore[arg-type]
    try:
        assert not report.passed
        assert [t.daemon for t in threading.enumerate() if t.name == "lazarus-check"] == [True]
    finally:
        release.set()


def test_checks_run_in_parallel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Six checks, at most three at a time (a pool of three), in two rounds of three: each check
    waits at a barrier for three, which opens only when three run at once (else it breaks, and
    the check errs)."""
    pools: list[int] = []

    class RecordingPool(DaemonPool):
        def __init__(self, max_workers: int, name: str) -> None:
            pools.append(max_workers)
            super().__init__(max_workers, name)

    monkeypatch.setattr(lazarus.checks.runner, "DaemonPool", RecordingPool)
    running, peak = 0, 0
    lock = threading.Lock()
    three_at_once = threading.Barrier(3, timeout=JOIN_TIMEOUT)

    def check(ctx: Any, spec: dict[str, Any], *, named: bool, engine: Any = None) -> GroupResult:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        three_at_once.wait()
        with lock:
            running -= 1
        return GroupResult(PASSED, "ok", name=spec["name"])

    monkeypatch.setattr(lazarus.checks.database, "run_database_check", check)
    checks = {"databases": [db_spec(f"db{i}") for i in range(6)]}
    report = run_health_checks(FakeRest(), make_test(checks), MAPPING, max_parallel=3)  # type: ignore[arg-type]
    assert pools == [3] and peak == 3
    assert report.passed, report.problems  # every check got through the barrier


def test_the_overall_timeout_cuts_off_a_hung_check_and_keeps_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def check(ctx: Any, spec: dict[str, Any], *, named: bool, engine: Any = None) -> GroupResult:
        if spec["name"] == "hung":
            release.wait(10)
        return GroupResult(PASSED, "ok", [CheckResult("q", PASSED)], name=spec["name"])

    monkeypatch.setattr(lazarus.checks.database, "run_database_check", check)
    checks = {"timeout": 1, "databases": [db_spec("hung"), db_spec("quick")]}
    started = time.monotonic()
    try:
        report = run_health_checks(FakeRest(), make_test(checks), MAPPING)  # type: ignore[arg-type]
    finally:
        release.set()
    assert time.monotonic() - started < 1.5
    hung, quick = report.status["databases"]
    assert (hung["status"], hung["message"]) == (ERROR, "did not finish within the overall health-check timeout of 1s")
    reason = "did not finish within the overall health-check timeout of 1s"
    assert hung["checks"] == [{"name": "q", "status": ERROR, "result": f"not finished: {reason}", "duration": 0.0}]
    assert quick["status"] == PASSED
    assert report.problems == ["databases/hung: Error (did not finish within the overall health-check timeout of 1s)"]


def test_an_unexpected_exception_becomes_an_error_result(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(ctx: Any, spec: dict[str, Any]) -> CheckResult:
        ctx.remember_secret("hunter22")
        raise RuntimeError("boom with hunter22")

    monkeypatch.setattr(lazarus.checks.http, "run_endpoint", broken)
    checks = {"http": {"endpoints": [{"name": "api", "url": "http://api/"}]}}
    report = run_health_checks(FakeRest(), make_test(checks), MAPPING)  # type: ignore[arg-type]
    assert report.status["http"]["checks"][0] == {
        "name": "api", "status": ERROR, "result": "internal error (RuntimeError): boom with ***", "duration": 0.0,
    }  # fmt: skip
    assert report.status["http"]["status"] == ERROR


def test_disabled_and_absent_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    rest: Any = FakeRest()
    assert run_health_checks(rest, make_test({"enabled": False, "database": db_spec("x")}), MAPPING).status == {
        "phase": SKIPPED
    }
    assert run_health_checks(rest, make_test({}), MAPPING).status == {"phase": SKIPPED}
    checks = {
        "database": {**db_spec("x"), "enabled": False},
        "http": {"enabled": False, "endpoints": [{"name": "a", "url": "http://a/"}]},
        "customChecks": {"enabled": False, "pod": {"image": "busybox"}},
    }
    report = run_health_checks(rest, make_test(checks), MAPPING)
    assert report.status == {
        "phase": "Completed",
        "database": {"status": SKIPPED, "message": "disabled", "checks": []},
        "http": {"status": SKIPPED, "message": "disabled", "checks": []},
        "custom": {"status": SKIPPED, "result": "disabled", "duration": 0.0},
    }
    assert report.passed
    assert_valid_status(report.status)
    assert rest.requests == []


def test_newest_data_and_failures_are_summarised(monkeypatch: pytest.MonkeyPatch) -> None:
    newest = {"a": datetime(2026, 1, 1, tzinfo=UTC), "b": datetime(2026, 1, 3, tzinfo=UTC)}

    def check(ctx: Any, spec: dict[str, Any], *, named: bool, engine: Any = None) -> GroupResult:
        status = FAILED if spec["name"] == "b" else PASSED
        result = CheckResult("fresh", status, "Newest: ...")
        return GroupResult(status, "m", [result], name=spec["name"], newest_data=newest[spec["name"]])

    monkeypatch.setattr(lazarus.checks.database, "run_database_check", check)
    report = run_health_checks(FakeRest(), make_test({"databases": [db_spec("a"), db_spec("b")]}), MAPPING)  # type: ignore[arg-type]
    assert report.newest_data == newest["b"]
    assert report.problems == ["databases/b/fresh: Failed (Newest: ...)"]
    assert report.summary == "1 of 2 health checks did not pass: databases/b/fresh: Failed (Newest: ...)"


def test_long_results_are_bounded() -> None:
    item = CheckResult("q", FAILED, "x" * 5000).to_status()
    assert len(item["result"]) == 1024 and item["result"].endswith("…(truncated)")
