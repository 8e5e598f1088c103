"""What a restore test found, as the next test of its backup source is compared with.

A ``Snapshot`` is read from a test's status (and, while the test is still deciding its result,
from the health-check status and RTO it has just measured):

- ``kinds``: per group/Kind, the items the backup held in the restored namespaces
  (``status.parity.expected``; ``restored`` when the backup's contents were not read); None when
  neither is known;
- ``queries``: per database query (``database/<query>`` or ``databases/<check>/<query>``), the
  figures it returned (``QueryFigures``: ``value``, ``rows``, ``columns``, ``names``);
- ``rto``: the measured RTO in seconds.

It is stored as JSON (``to_json``/``from_json``), so the format is the contract of the baseline
ConfigMaps: fields are only ever added.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

Figures = dict[str, Any]


@dataclass(frozen=True)
class Snapshot:
    """The figures of one test (see the module docstring)."""

    test: str
    """``namespace/name`` of the test."""
    test_uid: str
    backup: str
    completion_time: str
    """RFC 3339; empty while the test is deciding its result."""
    kinds: dict[str, int] | None = None
    queries: dict[str, Figures] = field(default_factory=dict)
    rto: float | None = None

    def amounts_only(self) -> Snapshot:
        """This snapshot with only what drops are measured on (item counts, query values and row
        counts, RTO): what a baseline's history keeps of its older tests, so it stays small
        (catalog queries may list hundreds of names)."""
        queries = {k: {f: v for f, v in q.items() if f in _AMOUNTS} for k, q in self.queries.items()}
        return replace(self, queries=queries)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Snapshot:
        """Parse ``to_json``'s output; ``ValueError`` if it is not one."""
        try:
            return cls.from_data(json.loads(text))
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a baseline snapshot: {exc}") from None

    @classmethod
    def from_data(cls, data: Any) -> Snapshot:
        """A snapshot from ``to_json``'s data, parsed; ``ValueError`` if it is not one."""
        try:
            return cls(
                test=str(data["test"]),
                test_uid=str(data["test_uid"]),
                backup=str(data["backup"]),
                completion_time=str(data["completion_time"]),
                kinds={str(k): int(v) for k, v in data["kinds"].items()} if data.get("kinds") is not None else None,
                queries={str(k): dict(v) for k, v in (data.get("queries") or {}).items()},
                rto=float(data["rto"]) if data.get("rto") is not None else None,
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"not a baseline snapshot: {exc}") from None


_FIGURES = ("rows", "value", "columns", "names")
# The figures a drop is measured on: all a snapshot in a baseline's history keeps.
_AMOUNTS = ("rows", "value")


def query_figures(health_checks: dict[str, Any]) -> dict[str, Figures]:
    """Per query that returned a result, its figures, from ``status.healthChecks``."""
    groups: list[tuple[str, dict[str, Any]]] = []
    if health_checks.get("database"):
        groups.append(("database", health_checks["database"]))
    groups += [(f"databases/{g.get('name', '')}", g) for g in health_checks.get("databases") or [] if g]
    found: dict[str, Figures] = {}
    for label, group in groups:
        for check in group.get("checks") or []:
            if "rows" in check:  # the query ran and returned a result
                found[f"{label}/{check.get('name', '')}"] = {k: check[k] for k in _FIGURES if k in check}
    return found


def snapshot_of(
    test: dict[str, Any], *, health_checks: dict[str, Any] | None = None, rto: float | None = None
) -> Snapshot:
    """The snapshot of ``test``; ``health_checks``/``rto`` stand in for status not written yet."""
    metadata, status = test["metadata"], test.get("status") or {}
    parity = status.get("parity") or {}
    kinds = parity.get("expected") if parity.get("expected") is not None else parity.get("restored")
    measured_rto = rto if rto is not None else (status.get("result") or {}).get("rto")
    return Snapshot(
        test=f"{metadata.get('namespace', '')}/{metadata.get('name', '')}",
        test_uid=str(metadata.get("uid", "")),
        backup=str((test.get("spec") or {}).get("backupName", "")),
        completion_time=str(status.get("completionTime") or ""),
        kinds={str(k): int(v) for k, v in kinds.items()} if kinds is not None else None,
        queries=query_figures(health_checks if health_checks is not None else status.get("healthChecks") or {}),
        rto=float(measured_rto) if measured_rto is not None else None,
    )
