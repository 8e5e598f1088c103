"""The evidence report's content: per backup source, what was tested, how it went, with proof.

Built from the ``LazarusRestoreTest`` objects kept in the cluster (the audit trail) and their
Backups (for the source: a Backup's Velero Schedule). Only finished tests count; a test belongs
to the period by its completion time.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lazarus.outcome import Outcome, outcome_of

Obj = dict[str, Any]


@dataclass(frozen=True)
class Stats:
    """Minimum, median and maximum of a measurement, and the objective it is held to."""

    minimum: float
    median: float
    maximum: float
    objective: float | None
    missed: int
    """How many tests exceeded the objective they had."""


def _stats(values: list[float], objective: float | None, missed: int) -> Stats | None:
    if not values:
        return None
    return Stats(min(values), statistics.median(values), max(values), objective, missed)


@dataclass
class SourceReport:
    """Everything the report says about one backup source."""

    source: str
    outcomes: list[Outcome] = field(default_factory=list)
    """Finished tests in the period, oldest first."""

    @property
    def passed(self) -> int:
        return sum(o.success for o in self.outcomes)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success]

    @property
    def pass_rate(self) -> float:
        return self.passed / len(self.outcomes) if self.outcomes else 0.0

    @property
    def last(self) -> Outcome:
        return self.outcomes[-1]

    @property
    def last_success(self) -> Outcome | None:
        return next((o for o in reversed(self.outcomes) if o.success), None)

    @property
    def costs(self) -> dict[str, float]:
        """Total estimated cost of the tests that have one, per currency."""
        totals: dict[str, float] = {}
        for o in self.outcomes:
            if o.cost is not None:
                totals[o.currency] = totals.get(o.currency, 0.0) + o.cost
        return totals

    @property
    def rto(self) -> Stats | None:
        measured = [o for o in self.outcomes if o.rto is not None]
        return _stats([o.rto for o in measured if o.rto is not None], self.last.rto_objective,
                      sum(o.rto_missed for o in measured))  # fmt: skip

    @property
    def rpo(self) -> Stats | None:
        measured = [o for o in self.outcomes if o.rpo is not None]
        return _stats([o.rpo for o in measured if o.rpo is not None], self.last.rpo_objective,
                      sum(o.rpo_missed for o in measured))  # fmt: skip


@dataclass(frozen=True)
class Report:
    """The whole report: the period, when it was made, and one section per source."""

    generated: datetime
    since: datetime
    cluster: str
    sources: list[SourceReport]
    in_progress: int
    """Tests not finished when the report was made (not counted anywhere else)."""


def build_report(
    tests: Iterable[Obj], backups: Iterable[Obj], *, since: datetime, now: datetime, cluster: str = ""
) -> Report:
    """The report over the tests finished between ``since`` and ``now``."""
    by_name = {b["metadata"]["name"]: b for b in backups}
    sections: dict[str, SourceReport] = {}
    in_progress = 0
    for test in tests:
        outcome = outcome_of(test, by_name.get(str((test.get("spec") or {}).get("backupName", ""))))
        if not outcome.finished:
            in_progress += 1
            continue
        if outcome.completion_time is None or not since <= outcome.completion_time <= now:
            continue
        sections.setdefault(outcome.source, SourceReport(outcome.source)).outcomes.append(outcome)
    for section in sections.values():
        section.outcomes.sort(key=lambda o: o.completion_time or now)
    return Report(now, since, cluster, sorted(sections.values(), key=lambda s: s.source), in_progress)
