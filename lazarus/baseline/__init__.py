"""Baselines: each successful test of a backup source leaves its figures; the next test of that
source is compared with them, to catch the backup that restores "fine" with half the data.

Two entry points for the restore-test controller:

- ``compare_with_baseline`` while deciding the result (after the health checks ran): reads the
  source's baseline (one GET) and returns ``BaselineCheck``: ``status`` for ``status.baseline``,
  whether the drift fails the test (``spec.baseline.onDrift: Fail``) and one line saying why;
- ``record_baseline`` once the test has ended (where the finished test is reported): a
  Succeeded test without drift becomes the source's new baseline (one GET, one write).

A drifted test never replaces the baseline, whether it failed or only warned: the baseline stays
the last good state until the data comes back or a user resets it (deletes the ConfigMap,
``lazarus.baseline.store``). Tests of the ``manual`` source have no baseline: they are one-off
tests of unrelated backups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lazarus.api.v1alpha1 import FailureReason, Phase
from lazarus.baseline.compare import FAIL, Policy, compare
from lazarus.baseline.snapshot import snapshot_of
from lazarus.baseline.store import BaselineStore
from lazarus.checks.results import bounded
from lazarus.sources import MANUAL

__all__ = ["BASELINE_DRIFT", "BaselineCheck", "BaselineStore", "compare_with_baseline", "record_baseline"]

# Failure reason (and Warning Event reason) of a test whose figures drifted from the baseline.
BASELINE_DRIFT = FailureReason.BASELINE_DRIFT
# status.baseline.result values.
DISABLED, NOT_APPLICABLE, NO_BASELINE = "Disabled", "NotApplicable", "NoBaseline"
MATCHED, DRIFTED = "Matched", "Drifted"
# Findings kept in status.baseline (the CRD allows 100): a bound on the status object; the message
# lists them all, up to its own bound (MAX_TEXT).
MAX_FINDINGS = 50


@dataclass(frozen=True)
class BaselineCheck:
    """The comparison of one test with its source's baseline."""

    status: dict[str, Any]
    """``status.baseline``."""
    drifted: bool = False
    fails_test: bool = False
    """Drift, and ``spec.baseline.onDrift`` is ``Fail``: fail the test with ``BASELINE_DRIFT``."""
    message: str = ""
    """One line: what drifted, or what was decided."""


def compare_with_baseline(
    store: BaselineStore, test: dict[str, Any], source: str, *, health_checks: dict[str, Any], rto: float
) -> BaselineCheck:
    """Compare ``test`` (``health_checks``: its ``status.healthChecks`` just measured; ``rto``: its
    RTO) with the baseline of ``source``. Raises ``ApiError`` if the baseline cannot be read."""
    policy = Policy.of(test)
    status: dict[str, Any] = {"source": source}
    if not policy.enabled:
        return BaselineCheck({**status, "result": DISABLED, "message": "baselines are disabled for this test"})
    if source == MANUAL:
        message = "no baseline: the test belongs to no Schedule or policy: no earlier tests to compare it with"
        return BaselineCheck({**status, "result": NOT_APPLICABLE, "message": message}, message=message)
    status["configMap"] = store.location(source)
    stored = store.load(source)
    if stored is None or stored.snapshot is None:
        message = f"first test of {source} with a baseline: if it succeeds, it sets the baseline"
        return BaselineCheck({**status, "result": NO_BASELINE, "message": message}, message=message)
    baseline = stored.snapshot
    status.update(baselineTest=baseline.test, baselineBackup=baseline.backup, baselineTime=baseline.completion_time)
    findings = compare(snapshot_of(test, health_checks=health_checks, rto=rto), stored.window(policy.history), policy)
    if not findings:
        message = f"matches the baseline of {source} (backup {baseline.backup})"
        return BaselineCheck({**status, "result": MATCHED, "message": message, "findings": []}, message=message)
    found = "; ".join(f.message for f in findings)
    message = bounded(f"drifted from the baseline of {source} (backup {baseline.backup}): {found}")
    status.update(result=DRIFTED, message=message, findings=[f.to_status() for f in findings[:MAX_FINDINGS]])
    return BaselineCheck(status, True, policy.on_drift == FAIL, message)


def record_baseline(store: BaselineStore, test: dict[str, Any], source: str) -> dict[str, Any]:
    """Make the finished ``test`` the baseline of ``source`` if it succeeded without drift.

    Returns the status to merge (``{"baseline": {"recorded": bool}}``: whether the baseline now
    holds this test's figures; empty when the test was not compared). Idempotent: a baseline
    already from this test is left as it is, and so is one from a test that completed later.
    Raises ``ApiError`` (409 on a concurrent write) to be retried.
    """
    compared = (test.get("status") or {}).get("baseline") or {}
    if compared.get("result") not in (NO_BASELINE, MATCHED):
        return {}
    if test["status"].get("phase") != Phase.SUCCEEDED:
        return {"baseline": {"recorded": False}}
    snapshot = snapshot_of(test)
    stored = store.load(source)
    current = stored.snapshot if stored is not None else None
    if current is not None and current.test_uid == snapshot.test_uid:
        return {"baseline": {"recorded": True}}
    if current is not None and current.completion_time > snapshot.completion_time:
        return {"baseline": {"recorded": False}}
    store.save(source, snapshot, stored)
    return {"baseline": {"recorded": True}}
