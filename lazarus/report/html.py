"""The evidence report as one self-contained HTML page, with RTO/RPO charts drawn as inline SVG.

No script and no external asset: the file can be archived, mailed and opened offline, and it
looks the same in a year. Every text from the cluster is HTML-escaped.
"""

from __future__ import annotations

from html import escape

from lazarus.outcome import Outcome
from lazarus.report.model import Report, SourceReport
from lazarus.report.render import (
    INTRO,
    checks_text,
    costs_text,
    drift_text,
    money,
    percent,
    seconds,
    stats_text,
    when,
)

WIDTH, HEIGHT, MARGIN = 520, 180, 44
PASS_COLOUR, FAIL_COLOUR, OBJECTIVE_COLOUR = "#1a7f37", "#cf222e", "#9a6700"

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #1f2328; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; }
th, td { border: 1px solid #d0d7de; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
.passed { color: #1a7f37; font-weight: 600; } .failed { color: #cf222e; font-weight: 600; }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; } figcaption { font-size: 0.85rem; color: #59636e; }
section { border-top: 1px solid #d0d7de; margin-top: 1.5rem; }
"""


def _result(outcome: Outcome) -> str:
    css = "passed" if outcome.success else "failed"
    return f'<span class="{css}">{escape(outcome.phase)}</span> ({escape(outcome.reason)})'


def _table(header: list[str], rows: list[list[str]]) -> str:
    """A table; cells are HTML already (callers escape)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def chart(title: str, outcomes: list[Outcome], metric: str) -> str:
    """An SVG chart of ``metric`` (``rto`` or ``rpo``) per test over time, with the objective.

    Points are green for passed tests and red for failed ones; the dashed line is the objective
    of the newest test, when it has one.
    """
    points = [(o, getattr(o, metric)) for o in outcomes if getattr(o, metric) is not None and o.completion_time]
    if not points:
        return f"<figure><figcaption>{escape(title)}: not measured</figcaption></figure>"
    objective = getattr(outcomes[-1], f"{metric}_objective")
    top = max([value for _, value in points] + ([objective] if objective is not None else [])) * 1.1 or 1.0
    times = [o.completion_time.timestamp() for o, _ in points if o.completion_time]
    start, span = min(times), (max(times) - min(times)) or 1.0
    plot_w, plot_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN

    def x(moment: float) -> float:
        return MARGIN + (moment - start) / span * plot_w if len(points) > 1 else MARGIN + plot_w / 2

    def y(value: float) -> float:
        return HEIGHT - MARGIN - value / top * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-label="{escape(title)}">',
        f'<line x1="{MARGIN}" y1="{HEIGHT - MARGIN}" x2="{WIDTH - MARGIN}" y2="{HEIGHT - MARGIN}" stroke="#8c959f"/>',
        f'<line x1="{MARGIN}" y1="{MARGIN}" x2="{MARGIN}" y2="{HEIGHT - MARGIN}" stroke="#8c959f"/>',
        f'<text x="4" y="{MARGIN + 4}" font-size="11">{top:.0f} s</text>',
        f'<text x="4" y="{HEIGHT - MARGIN}" font-size="11">0</text>',
        f'<text x="{MARGIN}" y="{HEIGHT - 8}" font-size="11">{escape(when(points[0][0].completion_time))}</text>',
        f'<text x="{WIDTH - MARGIN}" y="{HEIGHT - 8}" font-size="11" text-anchor="end">'
        f"{escape(when(points[-1][0].completion_time))}</text>",
    ]
    if objective is not None:
        parts.append(
            f'<line x1="{MARGIN}" y1="{y(objective):.1f}" x2="{WIDTH - MARGIN}" y2="{y(objective):.1f}" '
            f'stroke="{OBJECTIVE_COLOUR}" stroke-dasharray="6 4"/>'
            f'<text x="{MARGIN + 4}" y="{y(objective) - 4:.1f}" font-size="11" '
            f'fill="{OBJECTIVE_COLOUR}">objective {objective:.0f} s</text>'
        )
    path = " ".join(f"{x(o.completion_time.timestamp()):.1f},{y(v):.1f}" for o, v in points if o.completion_time)
    parts.append(f'<polyline points="{path}" fill="none" stroke="#8c959f"/>')
    for o, value in points:
        if o.completion_time is None:
            continue
        colour = PASS_COLOUR if o.success else FAIL_COLOUR
        parts.append(
            f'<circle cx="{x(o.completion_time.timestamp()):.1f}" cy="{y(value):.1f}" r="4" fill="{colour}">'
            f"<title>{escape(o.name)}: {value:.1f} s ({escape(o.phase)})</title></circle>"
        )
    parts.append("</svg>")
    return f"<figure>{''.join(parts)}<figcaption>{escape(title)}</figcaption></figure>"


def _section(section: SourceReport) -> str:
    failures = (
        _table(
            ["Completed", "Test", "Backup", "Reason", "Message"],
            [[escape(when(o.completion_time)), escape(f"{o.namespace}/{o.name}"), escape(o.backup),
              escape(o.reason), escape(o.message)] for o in section.failed],
        )  # fmt: skip
        if section.failed
        else "<p>None.</p>"
    )
    tests = _table(
        ["Started", "Completed", "Test", "Backup", "Result", "RTO", "RPO", "Checks", "Cost"],
        [
            [escape(when(o.start_time)), escape(when(o.completion_time)), escape(f"{o.namespace}/{o.name}"),
             escape(o.backup), _result(o), seconds(o.rto), seconds(o.rpo), escape(checks_text(o)),
             escape(money(o.cost, o.currency))]
            for o in section.outcomes
        ],
    )  # fmt: skip
    return (
        f"<section><h2>{escape(section.source)}</h2><ul>"
        f"<li>Tests: {len(section.outcomes)} ({section.passed} passed, {len(section.failed)} failed; "
        f"pass rate {percent(section.pass_rate)})</li>"
        f"<li>RTO: {escape(stats_text(section.rto))}</li><li>RPO: {escape(stats_text(section.rpo))}</li>"
        f"<li>Cost: {escape(costs_text(section))}</li><li>Baseline drift: {escape(drift_text(section))}</li></ul>"
        f'<div class="charts">{chart("RTO per test (seconds)", section.outcomes, "rto")}'
        f'{chart("RPO per test (seconds)", section.outcomes, "rpo")}</div>'
        f"<h3>Failures</h3>{failures}<h3>Tests</h3>{tests}</section>"
    )


def html(report: Report) -> str:
    """The report as a self-contained HTML page."""
    cluster = f" — cluster {report.cluster}" if report.cluster else ""
    title = f"Backup restore test evidence{cluster}"
    summary = (
        _table(
            ["Source", "Tests", "Passed", "Failed", "Pass rate", "Last test", "Last success"],
            [
                [escape(s.source), str(len(s.outcomes)), str(s.passed), str(len(s.failed)), percent(s.pass_rate),
                 f"{_result(s.last)} {escape(when(s.last.completion_time))}",
                 escape(when(s.last_success.completion_time)) if s.last_success else "never in period"]
                for s in report.sources
            ],
        )  # fmt: skip
        if report.sources
        else "<p>No restore test finished in this period.</p>"
    )
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"/><title>{escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>"
        f"<p>Period: {escape(when(report.since))} to {escape(when(report.generated))}. Generated "
        f"{escape(when(report.generated))} by <code>lazarus report</code>. Tests still running: "
        f"{report.in_progress}.</p><p>{escape(INTRO)}</p><h2>Summary</h2>{summary}"
        + "".join(_section(s) for s in report.sources)
        + "</body></html>\n"
    )
