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
# One line of a log tail in status (a line longer than this is cut, marked).
MAX_LOG_LINE = 300
# Most column names and first-column names one query keeps in status (``QueryFigures``): enough
# for any table's columns or a schema's tables; more would bloat status for little value.
MAX_NAMES = 200
# Longest column or first-column name kept (PostgreSQL identifiers are at most 63 bytes, MySQL's
# 64; a longer first-column value is data, not a name, and is cut).
MAX_NAME_LENGTH = 128


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


@dataclass(frozen=True)
class QueryFigures:
    """A query's result as data, for baselines (``lazarus.baseline``): the texts are for people.

    ``value``: the query's single value when it is a number (``SELECT count(*) ...``, a MongoDB
    filter's count); ``rows``: every row returned; ``columns``: the result's column names;
    ``names``: for queries that set ``expectedColumns`` (catalog queries listing columns, tables
    or collections), every value of the first column — None when there are more than
    ``MAX_NAMES`` (an incomplete set would make every missing name look removed).
    """

    rows: int
    value: float | None = None
    columns: tuple[str, ...] = ()
    names: tuple[str, ...] | None = None

    def to_status(self) -> dict[str, Any]:
        """The fields of a ``checks[]`` status item (empty ones left out)."""
        item: dict[str, Any] = {"rows": self.rows}
        if self.value is not None:
            item["value"] = self.value
        if self.columns:
            item["columns"] = list(self.columns)
        if self.names is not None:
            item["names"] = list(self.names)
        return item


@dataclass
class CheckResult:
    """One query or one HTTP endpoint (``status.healthChecks.*.checks[]``)."""

    name: str
    status: str
    result: str = ""
    duration: float = 0.0
    status_code: int | None = None
    """The HTTP status received (HTTP checks only)."""
    figures: QueryFigures | None = None
    """What a database query returned, as data (queries that ran only): baselines compare it."""

    def to_status(self) -> dict[str, Any]:
        """The status item (``statusCode`` and the figures only when there are some)."""
        item: dict[str, Any] = {
            "name": self.name,
            "status": self.status,
            "result": bounded(self.result),
            "duration": _seconds(self.duration),
        }
        if self.status_code is not None:
            item["statusCode"] = self.status_code
        if self.figures is not None:
            item.update(self.figures.to_status())
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
    """The bounded tail of the check pod's log (secrets masked), when the cluster could serve it."""

    def to_status(self) -> dict[str, Any]:
        """The status object (``logTail``: the log tail as lines, each bounded)."""
        item: dict[str, Any] = {"status": self.status, "result": bounded(self.result)}
        if self.log_tail:
            item["logTail"] = [bounded(line, MAX_LOG_LINE) for line in self.log_tail.splitlines()]
        if self.job_name:
            item["jobName"] = self.job_name
        if self.pod_phase:
            item["podPhase"] = self.pod_phase
        item["duration"] = _seconds(self.duration)
        return item
