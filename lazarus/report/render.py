"""The evidence report as Markdown (for people and tickets) and JSON (for tools)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from lazarus.lifecycle.durations import format_time
from lazarus.outcome import Outcome
from lazarus.report.model import Report, SourceReport, Stats

INTRO = (
    "Lazarus restores each tested Velero backup into isolated sandbox namespaces, waits for the "
    "restored workloads, runs the health checks the test defines against the restored data and "
    "endpoints, measures the recovery time (RTO: restore start to passing checks) and the "
    "recovery point (RPO: age of the newest restored data), and removes the sandbox. Each test "
    "below is a LazarusRestoreTest kept in the cluster (kubectl get lrt -A)."
)


def when(moment: datetime | None) -> str:
    return format_time(moment) if moment is not None else "—"


def seconds(value: float | None) -> str:
    return f"{value:.1f} s" if value is not None else "—"


def percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def stats_text(stats: Stats | None) -> str:
    """``min 12.0 s / median 14.0 s / max 20.0 s; objective 600 s, missed by 0 tests``."""
    if stats is None:
        return "not measured"
    text = f"min {seconds(stats.minimum)} / median {seconds(stats.median)} / max {seconds(stats.maximum)}"
    if stats.objective is not None:
        text += f"; objective {stats.objective:.0f} s, exceeded by {stats.missed} test(s)"
    return text


def money(value: float | None, currency: str) -> str:
    return f"{value:.4f} {currency}".strip() if value is not None else "—"


def costs_text(section: SourceReport) -> str:
    """``0.0421 USD (3 of 4 tests measured)``."""
    measured = sum(o.cost is not None for o in section.outcomes)
    if not measured:
        return "not measured"
    totals = ", ".join(money(total, currency) for currency, total in sorted(section.costs.items()))
    return f"{totals} ({measured} of {len(section.outcomes)} tests measured)"


def drift_text(section: SourceReport) -> str:
    """``2 tests (KindRemoved, ValueDropped)``: tests that drifted from the source's baseline,
    whether the drift failed them or only warned."""
    drifted = [o for o in section.outcomes if o.drift]
    if not drifted:
        return "none"
    kinds = ", ".join(sorted({finding for o in drifted for finding in o.drift}))
    return f"{len(drifted)} test{'s' if len(drifted) > 1 else ''} ({kinds})"


def checks_text(outcome: Outcome) -> str:
    ran = [c for c in outcome.checks if c.status != "Skipped"]
    return f"{sum(c.status == 'Passed' for c in ran)}/{len(ran)} passed" if ran else "none"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _summary_row(section: SourceReport) -> list[str]:
    last_success = section.last_success
    return [
        section.source,
        str(len(section.outcomes)),
        str(section.passed),
        str(len(section.failed)),
        percent(section.pass_rate),
        f"{section.last.phase} ({when(section.last.completion_time)})",
        when(last_success.completion_time) if last_success else "never in period",
    ]


def markdown(report: Report) -> str:
    """The report as GitHub-flavoured Markdown."""
    cluster = f" — cluster {report.cluster}" if report.cluster else ""
    lines = [
        f"# Backup restore test evidence{cluster}",
        "",
        f"Period: {when(report.since)} to {when(report.generated)}. Generated {when(report.generated)} "
        f"by `lazarus report`. Tests still running: {report.in_progress}.",
        "",
        INTRO,
        "",
        "## Summary",
        "",
    ]
    if not report.sources:
        lines += ["No restore test finished in this period.", ""]
        return "\n".join(lines)
    lines += _table(
        ["Source", "Tests", "Passed", "Failed", "Pass rate", "Last test", "Last success"],
        [_summary_row(s) for s in report.sources],
    )
    for section in report.sources:
        lines += ["", f"## {section.source}", ""]
        lines += [
            f"- Tests: {len(section.outcomes)} ({section.passed} passed, {len(section.failed)} failed; "
            f"pass rate {percent(section.pass_rate)})",
            f"- RTO: {stats_text(section.rto)}",
            f"- RPO: {stats_text(section.rpo)}",
            f"- Cost: {costs_text(section)}",
            f"- Baseline drift: {drift_text(section)}",
            "",
            "### Failures",
            "",
        ]
        if section.failed:
            lines += _table(
                ["Completed", "Test", "Backup", "Reason", "Message"],
                [[when(o.completion_time), f"{o.namespace}/{o.name}", o.backup, o.reason, o.message]
                 for o in section.failed],
            )  # fmt: skip
        else:
            lines.append("None.")
        lines += ["", "### Tests", ""]
        lines += _table(
            ["Started", "Completed", "Test", "Backup", "Result", "RTO", "RPO", "Checks", "Cost"],
            [
                [when(o.start_time), when(o.completion_time), f"{o.namespace}/{o.name}", o.backup,
                 f"{o.phase} ({o.reason})", seconds(o.rto), seconds(o.rpo), checks_text(o), money(o.cost, o.currency)]
                for o in section.outcomes
            ],
        )  # fmt: skip
    return "\n".join(lines) + "\n"


def _stats_json(stats: Stats | None) -> dict[str, Any] | None:
    if stats is None:
        return None
    return {"min": stats.minimum, "median": stats.median, "max": stats.maximum,
            "objective": stats.objective, "testsExceedingObjective": stats.missed}  # fmt: skip


def _outcome_json(outcome: Outcome) -> dict[str, Any]:
    return {
        "test": {"namespace": outcome.namespace, "name": outcome.name},
        "backup": outcome.backup,
        "phase": outcome.phase,
        "reason": outcome.reason,
        "message": outcome.message,
        "startTime": when(outcome.start_time),
        "completionTime": when(outcome.completion_time),
        "rtoSeconds": outcome.rto,
        "rpoSeconds": outcome.rpo,
        "cost": {"estimate": outcome.cost, "currency": outcome.currency} if outcome.cost is not None else None,
        "baselineDrift": list(outcome.drift),
        "checks": [
            {"type": c.check_type, "group": c.group, "name": c.name, "status": c.status, "result": c.result}
            for c in outcome.checks
        ],
    }


def as_json(report: Report) -> str:
    """The report as one JSON document."""
    document = {
        "kind": "RestoreTestEvidence",
        "cluster": report.cluster,
        "periodStart": when(report.since),
        "generated": when(report.generated),
        "testsInProgress": report.in_progress,
        "sources": [
            {
                "source": s.source,
                "tests": len(s.outcomes),
                "passed": s.passed,
                "failed": len(s.failed),
                "passRate": s.pass_rate,
                "lastTest": _outcome_json(s.last),
                "lastSuccess": when(s.last_success.completion_time) if s.last_success else None,
                "rto": _stats_json(s.rto),
                "rpo": _stats_json(s.rpo),
                "cost": s.costs,
                "history": [_outcome_json(o) for o in s.outcomes],
            }
            for s in report.sources
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
