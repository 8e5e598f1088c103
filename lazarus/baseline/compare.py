"""Compare a test's snapshot with its source's baseline: the drift a restore that "works" hides.

The baseline is a window of the source's newest good tests (newest first; ``Policy.history``
of them). Drops are measured against the highest figure in the window, so a loss spread over
several tests (10 % a day) adds up until it is flagged instead of moving the baseline down with
it; what is gone (kinds, columns, names) and the RTO are compared with the newest good test,
whose state was accepted last.

Findings (``Finding.type``), each only where both sides have the figure:

- ``KindRemoved``: a group/Kind the backup held (e.g. ``apps/Deployment``) is no longer in it;
- ``ItemsDropped``: a kind's item count dropped by more than ``maxDropFraction``;
- ``ValueDropped``: a query's numeric single value (``SELECT count(*) ...``) dropped by more than
  ``maxDropFraction``; for queries with neither a value nor names, ``RowsDropped``: its row
  count did;
- ``ColumnsRemoved``: column names the query's result had are gone (``SELECT * ...``);
- ``NamesRemoved``: values the first column of an ``expectedColumns`` query listed are gone (the
  columns, tables or collections a catalog query lists: schema drift);
- ``RtoGrew``: the RTO grew beyond ``maxRtoGrowthFactor`` times the baseline's, and by at least
  ``RTO_NOISE_SECONDS``.

Drops are relative to a positive baseline figure (a baseline of 0 or less cannot drop by a
fraction). Queries and kinds that exist on one side only (a query added to or removed from the
spec, one that did not run) are not compared. Growth is never drift.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lazarus.baseline.snapshot import Figures, Snapshot
from lazarus.checks.results import bounded

FAIL, WARN = "Fail", "Warn"
# Finding.type values (a bounded metric label, lazarus_baseline_drift_total{finding}).
FINDING_TYPES = (
    "KindRemoved", "ItemsDropped", "ValueDropped", "RowsDropped", "ColumnsRemoved", "NamesRemoved", "RtoGrew",
)  # fmt: skip
# CRD defaults of spec.baseline, repeated for specs the API server did not default.
DEFAULT_MAX_DROP_FRACTION = 0.2
DEFAULT_MAX_RTO_GROWTH_FACTOR = 2.0
DEFAULT_HISTORY = 5
# RTO growth below this many seconds is noise (a restore of a small namespace varies by seconds
# with the API server's and Velero's load), whatever the factor.
RTO_NOISE_SECONDS = 30.0


@dataclass(frozen=True)
class Policy:
    """``spec.baseline`` of a test."""

    enabled: bool = True
    max_drop_fraction: float = DEFAULT_MAX_DROP_FRACTION
    max_rto_growth_factor: float = DEFAULT_MAX_RTO_GROWTH_FACTOR
    on_drift: str = FAIL
    history: int = DEFAULT_HISTORY

    @classmethod
    def of(cls, test: Mapping[str, Any]) -> Policy:
        spec = (test.get("spec") or {}).get("baseline") or {}
        return cls(
            enabled=spec.get("enabled", True) is not False,
            max_drop_fraction=float(spec.get("maxDropFraction", DEFAULT_MAX_DROP_FRACTION)),
            max_rto_growth_factor=float(spec.get("maxRtoGrowthFactor", DEFAULT_MAX_RTO_GROWTH_FACTOR)),
            on_drift=str(spec.get("onDrift", FAIL)),
            history=max(int(spec.get("history", DEFAULT_HISTORY)), 1),
        )


@dataclass(frozen=True)
class Finding:
    """One difference that counts as drift."""

    type: str
    subject: str
    """The kind (``apps/Deployment``), the query (``databases/orders/count``) or ``rto``."""
    message: str

    def to_status(self) -> dict[str, str]:
        return {"type": self.type, "subject": self.subject, "message": bounded(self.message)}


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:g}"


def _drop(baseline: float, current: float, fraction: float) -> str | None:
    """``"5432 → 2716 (-50%)"`` when ``current`` is more than ``fraction`` below ``baseline``."""
    if baseline <= 0 or (baseline - current) / baseline <= fraction:
        return None
    return f"{_number(baseline)} → {_number(current)} (-{100 * (baseline - current) / baseline:.0f}%)"


def _drop_from_peak(
    window: Sequence[Snapshot], figures: Sequence[float | None], current: float, fraction: float
) -> str | None:
    """``_drop`` from the highest of ``figures`` (one per snapshot of ``window``, None where it
    has none), naming the backup it came from when that is not the newest good test's."""
    known = [(float(value), snapshot) for value, snapshot in zip(figures, window, strict=True) if value is not None]
    if not known:
        return None
    peak, where = max(known, key=lambda pair: pair[0])  # the newest of equal peaks
    dropped = _drop(peak, current, fraction)
    if dropped and where is not window[0]:
        dropped += f" (from backup {where.backup}, the highest of the last {len(window)} good tests)"
    return dropped


def _kinds(window: Sequence[Snapshot], current: Mapping[str, int], fraction: float) -> Iterator[Finding]:
    for kind, before in sorted((window[0].kinds or {}).items()):
        now = current.get(kind, 0)
        if before > 0 and now == 0:
            yield Finding("KindRemoved", kind, f"{kind}: the backup held {before}, now none")
        elif dropped := _drop_from_peak(window, [(s.kinds or {}).get(kind) for s in window], now, fraction):
            yield Finding("ItemsDropped", kind, f"{kind}: {dropped} items in the backup")


def _removed(before: Any, now: Any) -> list[str]:
    return sorted(set(before or ()) - set(now or ()))


def _query(key: str, window: Sequence[Snapshot], current: Figures, fraction: float) -> Iterator[Finding]:
    newest = window[0].queries[key]

    def figure(name: str) -> list[float | None]:
        return [(snapshot.queries.get(key) or {}).get(name) for snapshot in window]

    if newest.get("value") is not None and current.get("value") is not None:
        if dropped := _drop_from_peak(window, figure("value"), float(current["value"]), fraction):
            yield Finding("ValueDropped", key, f"{key}: value {dropped}")
    elif newest.get("names") is None and newest.get("rows") is not None and current.get("rows") is not None:
        if dropped := _drop_from_peak(window, figure("rows"), float(current["rows"]), fraction):
            yield Finding("RowsDropped", key, f"{key}: rows {dropped}")
    if current.get("columns") and (gone := _removed(newest.get("columns"), current["columns"])):
        yield Finding("ColumnsRemoved", key, f"{key}: columns gone: {', '.join(gone)}")
    if current.get("names") is not None and (gone := _removed(newest.get("names"), current["names"])):
        yield Finding("NamesRemoved", key, f"{key}: no longer lists {', '.join(gone)}")


def compare(current: Snapshot, window: Sequence[Snapshot], policy: Policy) -> list[Finding]:
    """Every finding of ``current`` against the baseline ``window`` (newest good test first; only
    its first ``policy.history`` are used; see the module docstring), in a fixed order."""
    window = window[: policy.history]
    if not window:
        return []
    baseline = window[0]
    findings: list[Finding] = []
    if current.kinds is not None and baseline.kinds is not None:
        findings += _kinds(window, current.kinds, policy.max_drop_fraction)
    for key in sorted(baseline.queries.keys() & current.queries.keys()):
        findings += _query(key, window, current.queries[key], policy.max_drop_fraction)
    if current.rto is not None and baseline.rto is not None:
        grown = current.rto - baseline.rto
        if current.rto > baseline.rto * policy.max_rto_growth_factor and grown >= RTO_NOISE_SECONDS:
            findings.append(
                Finding(
                    "RtoGrew",
                    "rto",
                    f"RTO {current.rto:.0f}s is {current.rto / max(baseline.rto, 0.001):.1f}x the baseline's "
                    f"{baseline.rto:.0f}s (allowed {policy.max_rto_growth_factor:g}x)",
                )
            )
    return findings
