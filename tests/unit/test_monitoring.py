"""The monitoring assets: alerting rules tested with promtool, dashboard PromQL checked by promtool,
every metric they name exported by Lazarus, every alert documented in the runbook.

promtool comes from Debian's ``prometheus`` package (``e2e/testbed/system-deps.sh`` installs it).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY, CollectorRegistry

# Imported for the metrics they register in the default registry.
import lazarus.kube.client  # noqa: F401
import lazarus.leaderelection  # noqa: F401
import lazarus.notify.notifier  # noqa: F401
from lazarus.controllers.workqueue import default_metrics as workqueue_metrics
from lazarus.metrics import default_metrics, register_cache_metrics

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "manifests" / "monitoring"
RULES_TEST = Path(__file__).parent / "monitoring" / "rules_test.yaml"
METRIC_NAME = re.compile(r"\blazarus_[a-z_]+\b")
# Grafana's variables, replaced by values PromQL accepts.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__range": "1d", "$source": ".*"}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is missing: run e2e/testbed/system-deps.sh (Debian package prometheus)")
    return path


def rule_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())["spec"]["groups"]
    return groups


def alerts() -> list[dict[str, Any]]:
    return [rule for group in rule_groups() for rule in group["rules"] if "alert" in rule]


def dashboard_expressions() -> list[str]:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((\w+), \w+\)", variable["definition"])
            assert match, variable["definition"]
            expressions.append(match.group(1))
    return expressions


def run_promtool(*args: str, cwd: Path) -> None:
    done = subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_rules_file_is_valid(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule_groups()}))
    run_promtool("check", "rules", "rules.yaml", cwd=tmp_path)


def test_alerts_fire_when_they_should_and_stay_silent_otherwise(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule_groups()}))
    shutil.copy(RULES_TEST, tmp_path / "rules_test.yaml")
    run_promtool("test", "rules", "rules_test.yaml", cwd=tmp_path)


def test_every_alert_is_tested_firing_and_silent() -> None:
    cases = [case for test in yaml.safe_load(RULES_TEST.read_text())["tests"] for case in test["alert_rule_test"]]
    for alert in alerts():
        mine = [case for case in cases if case["alertname"] == alert["alert"]]
        assert any(case["exp_alerts"] for case in mine), f"{alert['alert']} is never expected to fire"
        assert any(not case["exp_alerts"] for case in mine), f"{alert['alert']} is never expected to stay silent"


def test_every_alert_has_severity_summary_description_and_a_runbook_section() -> None:
    runbook = (ROOT / "manifests" / "monitoring" / "runbook.md").read_text()
    anchors = {line[3:].strip().lower() for line in runbook.splitlines() if line.startswith("## ")}
    for alert in alerts():
        assert alert["labels"]["severity"] in ("critical", "warning"), alert["alert"]
        assert alert["annotations"]["summary"] and alert["annotations"]["description"], alert["alert"]
        path, _, anchor = alert["annotations"]["runbook_url"].partition("#")
        assert path == "manifests/monitoring/runbook.md", alert["alert"]
        assert anchor in anchors, f"{alert['alert']}: no runbook section {anchor!r}"


def test_dashboard_expressions_are_valid_promql(tmp_path: Path) -> None:
    rules = []
    for index, expression in enumerate(dashboard_expressions()):
        for variable, value in sorted(GRAFANA_VARIABLES.items(), key=lambda item: -len(item[0])):
            expression = expression.replace(variable, value)
        assert "$" not in expression, f"unknown Grafana variable in {expression}"
        rules.append({"record": f"dashboard:expression_{index}", "expr": expression})
    (tmp_path / "dashboard.yaml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    run_promtool("check", "rules", "dashboard.yaml", cwd=tmp_path)


def exported_names() -> set[str]:
    """Every series name a Lazarus process can export (the cache collector on empty caches)."""
    default_metrics()
    workqueue_metrics()
    registry = CollectorRegistry()
    register_cache_metrics(list, list, lambda _name: None, registry=registry)
    names = set()
    for metric in [*REGISTRY.collect(), *registry.collect()]:
        suffixes = {
            "counter": ["_total"],
            "histogram": ["_bucket", "_count", "_sum"],
            "info": ["_info"],
        }.get(metric.type, [""])
        names.update(metric.name + suffix for suffix in suffixes)
    return names


def test_rules_and_dashboard_name_only_metrics_lazarus_exports() -> None:
    used = set()
    for expression in [rule["expr"] for rule in alerts()] + dashboard_expressions():
        used.update(METRIC_NAME.findall(expression))
    unknown = used - exported_names()
    assert not unknown, f"not exported by Lazarus: {sorted(unknown)}"
