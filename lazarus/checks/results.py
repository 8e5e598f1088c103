"""Results of health checks, in the shape of ``status.healthChecks`` of a LazarusRestoreTest.

Outcomes (``status`` of every result):

- ``Passed``: the check ran and every expectation held.
- ``Failed``: the check ran and found the restored application or data wrong (a count out of
  range, a missing value, an unexpected HTTP status, a Job that failed).
- ``Error``: the check could not run (bad SQL, unknown column, unreachable host, wrong password,
  missing Secret or key, a result of the wrong shape, the overall timeout); ``result`` says which
  and why.
- ``Skipped``: the check is disabled (``enabled: false``).

A group (one database check, the HTTP endpoints) takes the most severe outcome of its members:
``Failed`` over ``Error`` (a proven failure says more about the backup than a check that could not
run) over ``Passed`` over ``Skipped``.

Every text is bounded (``MAX_TEXT``) and holds no secret value: the code that builds it scrubs
driver messages first (``CheckContext.scrub``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

PASSED, FAILED, SKIPPED, ERROR = "Passed", "Failed", "Skipped", "Error"

# Most severe first (see the module docstring).
_SEVERITY = (FAILED, ERROR, PASSED, SKIPPED)

# Longest ``result``/``message`` text kept: status is stored in etcd with the object and read by
# every watcher of tests, so one check must not bloat it; 1 KiB holds any useful diagnosis.
MAX_TEXT = 1024


def bounded(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` cut to ``limit`` characters, marking the cut."""
    marker = " …(truncated)"
    return text if len(text) <= limit else text[: limit - len(marker)] + marker


def rollup(statuses: Iterable[str]) -> str:
    """The group outcome of ``statuses`` (``Skipped`` when there are none)."""
    present = set(statuses)
    return next((s for s in _SEVERITY if s in present), SKIPPED)


def _seconds(value: float) -> float:
    return round(max(value, 0.0), 3)


@dataclass
class CheckResult:
    """One query or one HTTP endpoint (``status.healthChecks.*.checks[]``)."""

    name: str
    status: str
    result: str = ""
    duration: float = 0.0
    status_code: int | None = None
    """The HTTP status received (HTTP checks only)."""

    def to_status(self) -> dict[str, Any]:
        """The status item (``statusCode`` only when there is one)."""
        item: dict[str, Any] = {
            "name": self.name,
            "status": self.status,
            "result": bounded(self.result),
            "duration": _seconds(self.duration),
        }
        if self.status_code is not None:
            item["statusCode"] = self.status_code
        return item


@dataclass
class GroupResult:
    """One database check, or all HTTP endpoints together."""

    status: str
    message: str = ""
    checks: list[CheckResult] = field(default_factory=list)
    name: str | None = None
    """The database check's name (``databases[]`` only: ``database`` and ``http`` have none)."""
    newest_data: datetime | None = None
    """Newest timestamp found by this group's ``expectedRecency`` queries."""

    def to_status(self) -> dict[str, Any]:
        """The status object (``name`` only for ``databases[]`` items)."""
        group: dict[str, Any] = {}
        if self.name is not None:
            group["name"] = self.name
        group.update(
            {
                "status": self.status,
                "message": bounded(self.message),
                "checks": [c.to_status() for c in self.checks],
            }
        )
        return group


@dataclass
class CustomResult:
    """The custom check Job (``status.healthChecks.custom``)."""

    status: str
    result: str = ""
    job_name: str | None = None
    pod_phase: str | None = None
    duration: float = 0.0
    log_tail: str | None = None
    """The bounded tail of the check pod's log, when the cluster could serve it. Never written to
    status by ``to_status`` (the CRD forbids pod logs there: they may hold secrets); it is here for
    the caller to decide where it may go."""

    def to_status(self) -> dict[str, Any]:
        """The status object; never includes ``log_tail``."""
        item: dict[str, Any] = {"status": self.status, "result": bounded(self.result)}
        if self.job_name:
            item["jobName"] = self.job_name
        if self.pod_phase:
            item["podPhase"] = self.pod_phase
        item["duration"] = _seconds(self.duration)
        return item
