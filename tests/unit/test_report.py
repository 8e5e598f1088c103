"""The evidence report: what it counts, and its Markdown, JSON and HTML forms."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lazarus.cli import main
from lazarus.report import build_report, parse_since
from lazarus.report.html import chart, html
from lazarus.report.render import as_json, markdown
from tests.finished_tests import backup, finished_test

NOW = datetime(2026, 1, 31, tzinfo=UTC)
OBJECTIVES = {"objectives": {"rtoSeconds": 650, "rpoSeconds": 7200}}


def history() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    tests = [
        finished_test("shop-1", backup="shop-1", completed="2026-01-10T04:10:00Z", rto=600.0, spec=OBJECTIVES),
        finished_test("shop-2", backup="shop-2", completed="2026-01-11T04:10:00Z", rto=700.0, success=False,
                      reason="ObjectiveMissed", spec=OBJECTIVES),
        finished_test("shop-3", backup="shop-3", completed="2026-01-12T04:10:00Z", rto=500.0, spec=OBJECTIVES),
        finished_test("old", backup="shop-0", completed="2025-10-01T00:00:00Z"),  # before the period
        finished_test("adhoc", backup="one-off", namespace="team-b", completed="2026-01-20T00:00:00Z",
                      success=False, rto=None, rpo=None, reason="BackupNotFound", health={}),
    ]  # fmt: skip
    running = finished_test("running", backup="shop-4")
    running["status"] = {"phase": "Checking"}
    tests.append(running)
    backups = [backup(f"shop-{n}", "shop-daily") for n in range(5)]
    return tests, backups


def report() -> Any:
    tests, backups = history()
    return build_report(tests, backups, since=NOW - timedelta(days=30), now=NOW, cluster="prod-eu")


def test_parse_since() -> None:
    assert parse_since("90d") == timedelta(days=90)
    assert parse_since("12h") == timedelta(hours=12)
    with pytest.raises(ValueError, match="e.g. 90d"):
        parse_since("3 weeks")


def test_report_groups_finished_tests_of_the_period_by_source() -> None:
    built = report()
    assert built.in_progress == 1
    assert [s.source for s in built.sources] == ["manual", "schedule/shop-daily"]
    manual, shop = built.sources
    assert [o.name for o in shop.outcomes] == ["shop-1", "shop-2", "shop-3"]
    assert (shop.passed, [o.name for o in shop.failed], round(shop.pass_rate, 3)) == (2, ["shop-2"], 0.667)
    assert shop.rto is not None and (shop.rto.minimum, shop.rto.median, shop.rto.maximum) == (500.0, 600.0, 700.0)
    assert (shop.rto.objective, shop.rto.missed) == (650.0, 1)
    assert manual.rto is None and manual.last_success is None


def test_markdown_lists_every_source_failure_and_test() -> None:
    text = markdown(report())
    assert text.startswith("# Backup restore test evidence — cluster prod-eu\n")
    assert "Period: 2026-01-01T00:00:00Z to 2026-01-31T00:00:00Z." in text
    shop_row = "| schedule/shop-daily | 3 | 2 | 1 | 66.7% | Succeeded (2026-01-12T04:10:00Z) | 2026-01-12T04:10:00Z |"
    assert shop_row in text
    assert "| manual | 1 | 0 | 1 | 0.0% | Failed (2026-01-20T00:00:00Z) | never in period |" in text
    assert "- RTO: min 500.0 s / median 600.0 s / max 700.0 s; objective 650 s, exceeded by 1 test(s)" in text
    assert "| 2026-01-11T04:10:00Z | team-a/shop-2 | shop-2 | ObjectiveMissed |" in text
    assert "| team-b/adhoc | one-off | Failed (BackupNotFound) | — | — | none |" in text
    assert "old" not in text.split("## Summary")[1]


def test_json_is_complete_and_parseable() -> None:
    document = json.loads(as_json(report()))
    shop = document["sources"][1]
    assert document["testsInProgress"] == 1
    assert (shop["source"], shop["tests"], shop["failed"]) == ("schedule/shop-daily", 3, 1)
    assert shop["rto"] == {"min": 500.0, "median": 600.0, "max": 700.0, "objective": 650.0,
                           "testsExceedingObjective": 1}  # fmt: skip
    assert [h["test"]["name"] for h in shop["history"]] == ["shop-1", "shop-2", "shop-3"]
    assert shop["history"][0]["checks"][0] == {
        "type": "postgres", "group": "orders-db", "name": "row-count",
        "status": "Passed", "result": "Count: 250 (within range 100-1000)",
    }  # fmt: skip


def test_html_is_well_formed_escaped_and_charts_rto_against_the_objective() -> None:
    tests, backups = history()
    tests[1]["status"]["message"] = "<script>alert(1)</script> & more"
    page = html(build_report(tests, backups, since=NOW - timedelta(days=30), now=NOW))
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page
    ElementTree.fromstring(page.removeprefix("<!DOCTYPE html>"))  # well-formed (XHTML-compatible) markup
    shop_section = page.split("<h2>schedule/shop-daily</h2>")[1]
    svg = ElementTree.fromstring(shop_section.split("<figure>")[1].split("<figcaption>")[0])
    circles = svg.findall("{http://www.w3.org/2000/svg}circle")
    assert [c.get("fill") for c in circles] == ["#1a7f37", "#cf222e", "#1a7f37"]
    # The failed 700 s point lies above the dashed 650 s objective line (SVG y grows downwards).
    objective = next(line for line in svg.findall("{http://www.w3.org/2000/svg}line") if line.get("stroke-dasharray"))
    assert float(circles[1].get("cy", "0")) < float(objective.get("y1", "0")) < float(circles[0].get("cy", "0"))


def test_chart_without_measurements_says_so() -> None:
    assert "not measured" in chart("RTO", report().sources[0].outcomes, "rto")


def test_cli_rejects_a_bad_period(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--since", "soon"]) == 2
    assert "expected a number of days" in capsys.readouterr().err


def test_the_cost_of_each_test_and_per_source_is_reported() -> None:
    tests, backups = history()
    for test, estimate in zip(tests[:2], (0.0125, 0.5), strict=True):
        test["status"]["cost"] = {"estimate": estimate, "currency": "USD", "cpuCoreSeconds": 1.0}
    built = build_report(tests, backups, since=NOW - timedelta(days=30), now=NOW)
    assert built.sources[1].costs == {"USD": 0.5125}
    text = markdown(built)
    assert "- Cost: 0.5125 USD (2 of 3 tests measured)" in text
    assert "| 2/2 passed | 0.0125 USD |" in text and "- Cost: not measured" in text  # manual: none
    shop = json.loads(as_json(built))["sources"][1]
    assert shop["cost"] == {"USD": 0.5125} and shop["history"][2]["cost"] is None
    assert shop["history"][0]["cost"] == {"estimate": 0.0125, "currency": "USD"}
    assert "<li>Cost: 0.5125 USD (2 of 3 tests measured)</li>" in html(built)


def test_drift_from_the_baseline_is_reported_per_source_and_test() -> None:
    tests, backups = history()
    warned = {"result": "Drifted", "findings": [{"type": "ValueDropped", "subject": "database/count"}]}
    tests[0]["status"]["baseline"] = warned
    tests[1]["status"]["baseline"] = {"result": "Matched", "findings": []}
    built = build_report(tests, backups, since=NOW - timedelta(days=30), now=NOW)
    text = markdown(built)
    assert "- Baseline drift: 1 test (ValueDropped)" in text and "- Baseline drift: none" in text
    shop = json.loads(as_json(built))["sources"][1]
    assert [o["baselineDrift"] for o in shop["history"]] == [["ValueDropped"], [], []]
    assert "<li>Baseline drift: 1 test (ValueDropped)</li>" in html(built)
