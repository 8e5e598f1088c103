"""The human-readable summary of a finished test, shared by the Slack, e-mail and webhook texts.

Only facts from the test's status and spec appear here (backup, source, result, RTO/RPO against
objectives, resources, the checks that did not pass); status never holds a Secret value.
"""

from __future__ import annotations

from lazarus.outcome import Outcome

# Failed checks listed in one message; the rest are counted ("… and 3 more").
MAX_CHECKS = 10


def headline(outcome: Outcome, cluster: str = "") -> str:
    """One line: what happened to which backup (and where)."""
    verdict = "passed" if outcome.success else "FAILED"
    where = f" on {cluster}" if cluster else ""
    return f"Restore test {verdict}: backup {outcome.backup} ({outcome.source}){where}"


def seconds_text(value: float | None, objective: float | None) -> str:
    """``12.3 s (objective 600 s, missed)``, or ``n/a`` when nothing was measured."""
    if value is None:
        return "n/a"
    text = f"{value:.1f} s"
    if objective is not None:
        text += f" (objective {objective:.0f} s{', missed' if value > objective else ''})"
    return text


def detail_lines(outcome: Outcome) -> list[str]:
    """Result, RTO, RPO, resources and the test's name, one fact per line."""
    lines = [
        f"Result: {outcome.phase} ({outcome.reason}): {outcome.message}",
        f"RTO: {seconds_text(outcome.rto, outcome.rto_objective)}",
        f"RPO: {seconds_text(outcome.rpo, outcome.rpo_objective)}",
    ]
    if outcome.resources_recovered is not None:
        lines.append(f"Resources: {outcome.resources_recovered} restored, {outcome.resources_failed or 0} failed")
    lines.append(f"Test: {outcome.namespace}/{outcome.name}")
    return lines


def failed_check_lines(outcome: Outcome) -> list[str]:
    """One line per check that did not pass, at most ``MAX_CHECKS``."""
    failed = outcome.failed_checks
    lines = [f"{c.check_type} {c.group}/{c.name}: {c.status}: {c.result}" for c in failed[:MAX_CHECKS]]
    if len(failed) > MAX_CHECKS:
        lines.append(f"… and {len(failed) - MAX_CHECKS} more")
    return lines


def plain_text(outcome: Outcome, cluster: str = "") -> str:
    """The whole summary as plain text (e-mail body)."""
    lines = [headline(outcome, cluster), "", *detail_lines(outcome)]
    checks = failed_check_lines(outcome)
    if checks:
        lines += ["", "Checks that did not pass:", *(f"- {line}" for line in checks)]
    return "\n".join(lines) + "\n"
