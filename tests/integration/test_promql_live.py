"""Every PromQL expression of the alerting rules and the Grafana dashboard, answered by a real
Prometheus server that scrapes a real ``lazarus run`` on the test bed.

The server is the ``prometheus`` binary of Debian's ``prometheus`` package (the one that also
ships promtool; ``e2e/testbed/system-deps.sh`` installs it). It listens on loopback only, scrapes
the operator every second and evaluates the rule groups of ``manifests/monitoring/prometheusrule.yaml``
itself. One restore test of a missing backup fails within seconds, so the event metrics and the
per-source state exist whatever the test bed runs.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from kubernetes import client

from tests.integration.conftest import delete_namespace_and_wait
from tests.integration.kube import unique_name, wait_until
from tests.integration.operator_process import OperatorProcess, free_port, start_operator
from tests.unit.test_monitoring import GRAFANA_VARIABLES, METRIC_NAME, MONITORING, rule_groups

pytestmark = pytest.mark.integration

GROUP, VERSION, PLURAL = "lazarus.io", "v1alpha1", "lazarusrestoretests"
SCHEDULE = "promql-live"
SOURCE = f"schedule/{SCHEDULE}"
# Grafana's variables as the unit tests substitute them; $source as if this source were picked.
VARIABLES = {**GRAFANA_VARIABLES, "$source": SOURCE}
# $name, ${name} and ${name:format}.
GRAFANA_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::[^}]*)?\}|(\w+))")
SAMPLE_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
# Series names a `# TYPE name kind` line stands for, besides `name` itself for other kinds.
SERIES_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("", "_sum", "_count")}

# Panels that show data once one test of SOURCE has failed (the others need a success, RTO/RPO,
# a restore, checks or notifications).
PANELS_WITH_DATA = {
    "Latest result per source", "Failures by reason (per hour)", "Tests in progress", "Sandbox namespaces",
    "Replicas / leaders", "Workqueue depth", "Sync duration p99", "API requests by code", "Build",
}  # fmt: skip
FIRING = "LazarusRestoreTestFailed"
# The operator is up and leads: these stay silent.
SILENT = ("LazarusOperatorDown", "LazarusNoLeader")


@dataclass
class PrometheusServer:
    """A ``prometheus`` server process listening on ``127.0.0.1:port``."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def api(self, path: str, **form: str) -> dict[str, Any]:
        """The answer of ``/api/v1/<path>`` (POST when ``form`` is given), whatever its status."""
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        response = requests.post(url, data=form, timeout=10) if form else requests.get(url, timeout=10)
        answer: dict[str, Any] = response.json()
        return answer

    def data(self, path: str) -> Any:
        """``data`` of a successful ``/api/v1/<path>``."""
        answer = self.api(path)
        assert answer["status"] == "success", answer
        return answer["data"]

    def query(self, expression: str) -> dict[str, Any]:
        """The whole answer of an instant query of ``expression`` at the server's current time."""
        return self.api("query", query=expression)

    def result(self, expression: str) -> list[Any]:
        """The result of a successful instant query of ``expression``."""
        answer = self.query(expression)
        assert answer["status"] == "success", f"{expression}: {answer}"
        result: list[Any] = answer["data"]["result"]
        return result

    def ready(self) -> bool:
        assert self.process.poll() is None, f"prometheus exited: {self.log.read_text()[-3000:]}"
        try:
            return requests.get(f"http://127.0.0.1:{self.port}/-/ready", timeout=5).status_code == 200
        except requests.ConnectionError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.wait(10)


def start_prometheus(directory: Path, target: OperatorProcess) -> PrometheusServer:
    """Start Prometheus scraping ``target`` and evaluating the Lazarus rule groups, every second;
    return once it is ready. Fails (never skips) when the binary is missing."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("the prometheus server is missing: install Debian's package prometheus "
                    "(e2e/testbed/system-deps.sh does, for make test)")  # fmt: skip
    (directory / "rules.yaml").write_text(yaml.safe_dump({"groups": rule_groups()}))
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": ["rules.yaml"],
        "scrape_configs": [{"job_name": "lazarus", "static_configs": [{"targets": [f"127.0.0.1:{target.port}"]}]}],
    }
    (directory / "prometheus.yaml").write_text(yaml.safe_dump(config))
    port = free_port()
    command = [
        binary, f"--config.file={directory / 'prometheus.yaml'}", f"--storage.tsdb.path={directory / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]  # fmt: skip
    log = directory / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    server = PrometheusServer(port, process, log)
    try:
        wait_until("prometheus to be ready", server.ready, timeout=60)
    except BaseException:
        server.stop()
        raise
    return server


@dataclass
class Stack:
    operator: OperatorProcess
    prometheus: PrometheusServer


def create_failing_test(custom: client.CustomObjectsApi, namespace: str) -> None:
    """Create a test of SOURCE naming a backup that does not exist; wait until it failed for that."""
    name = unique_name("lrt")
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "LazarusRestoreTest",
        "metadata": {"name": name, "namespace": namespace, "labels": {"lazarus.io/schedule-name": SCHEDULE}},
        "spec": {"backupName": "no-such-backup"},
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

    def status() -> dict[str, Any] | None:
        test: dict[str, Any] = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        found: dict[str, Any] = test.get("status") or {}
        return found if found.get("phase") in ("Succeeded", "Failed") else None

    assert wait_until(f"test {name} to finish", status, timeout=60).get("reason") == "BackupNotFound"


@pytest.fixture(scope="module")
def stack(
    lazarus_crds: list[str],
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """A leading ``lazarus run`` (lease in a namespace of its own), Prometheus scraping it, and one
    failed test of SOURCE that Prometheus has scraped. Everything is stopped and deleted after."""
    directory = tmp_path_factory.mktemp("promql")
    namespace = unique_name("it-promql")
    with ExitStack() as cleanup:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
        cleanup.callback(delete_namespace_and_wait, core, namespace)
        operator = start_operator("promql", directory, "--namespace", namespace)
        cleanup.callback(operator.stop)
        # The namespace goes while the operator still runs, to remove its finalizer from the test;
        # the deletion registered first only matters when the operator did not start.
        cleanup.callback(delete_namespace_and_wait, core, namespace)
        wait_until("the operator to lead", operator.is_leader, timeout=60)
        prometheus = start_prometheus(directory, operator)
        cleanup.callback(prometheus.stop)
        create_failing_test(custom, namespace)
        wait_until(
            "prometheus to have scraped the failure",
            partial(prometheus.result, f'lazarus_test_failure_total{{source="{SOURCE}"}}'),
            timeout=60,
        )
        yield Stack(operator, prometheus)


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title or variable, PromQL) of every target of every panel, rows included, and of
    every query variable (``label_values(metric, label)`` becomes ``metric``), with the Grafana
    variables substituted (see VARIABLES); an unknown variable fails."""

    def substitute(match: re.Match[str]) -> str:
        variable = f"${match.group(1) or match.group(2)}"
        assert variable in VARIABLES, f"unknown Grafana variable {match.group(0)}"
        return VARIABLES[variable]

    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    queries = [(str(panel["title"]), target["expr"]) for panel in panels(dashboard["panels"])
               for target in panel.get("targets", [])]  # fmt: skip
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((\w+), \w+\)", variable["definition"])
            assert match, variable["definition"]
            queries.append((f"variable {variable['name']}", match.group(1)))
    return [(where, GRAFANA_VARIABLE.sub(substitute, expression)) for where, expression in queries]


def rules() -> list[tuple[str, str, str]]:
    """(group, alert or recording rule name, PromQL) of every rule."""
    return [
        (group["name"], rule.get("alert") or rule["record"], rule["expr"])
        for group in rule_groups()
        for rule in group["rules"]
    ]


def rule_queries() -> list[tuple[str, str]]:
    """(alert or recording rule name, PromQL) of every rule."""
    return [(name, expression) for _, name, expression in rules()]


def scraped_names(exposition: str) -> set[str]:
    """Series names a scrape in the text format can hold: every sample's, and those each ``# TYPE``
    line announces (a histogram without observations still has its ``_bucket`` name)."""
    names: set[str] = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names.update(name + suffix for suffix in SERIES_SUFFIXES.get(kind, ("",)))
        elif line and not line.startswith("#"):
            match = SAMPLE_NAME.match(line)
            assert match, line
            names.add(match.group())
    return names


def test_prometheus_scrapes_the_operator(stack: Stack) -> None:
    (target,) = stack.prometheus.data("targets")["activeTargets"]
    assert (target["scrapeUrl"], target["health"]) == (f"http://127.0.0.1:{stack.operator.port}/metrics", "up")


def test_prometheus_loads_and_evaluates_every_rule(stack: Stack) -> None:
    def evaluated() -> list[dict[str, Any]] | None:
        found = [{**rule, "group": group["name"]} for group in stack.prometheus.data("rules")["groups"]
                 for rule in group["rules"]]  # fmt: skip
        return found if all(rule["health"] != "unknown" for rule in found) else None

    loaded = wait_until("every rule to be evaluated", evaluated, timeout=30)
    assert {(rule["group"], rule["name"]) for rule in loaded} == {(group, name) for group, name, _ in rules()}
    unhealthy = {rule["name"]: rule.get("lastError") for rule in loaded if rule["health"] != "ok"}
    assert not unhealthy, unhealthy


def test_every_rule_and_dashboard_expression_is_answered(stack: Stack) -> None:
    failed = {}
    for where, expression in rule_queries() + dashboard_queries():
        answer = stack.prometheus.query(expression)
        if answer["status"] != "success":
            failed[f"{where}: {expression}"] = answer.get("error")
    assert not failed, json.dumps(failed, indent=1)


def test_every_metric_named_is_exported_by_the_operator(stack: Stack) -> None:
    exported = scraped_names(stack.operator.get("/metrics").text)
    used = {name for _, expression in rule_queries() + dashboard_queries() for name in METRIC_NAME.findall(expression)}
    assert used, "no lazarus_* metric found in the rules and the dashboard"
    assert not used - exported, f"named but not exported by lazarus run: {sorted(used - exported)}"


def test_the_failed_test_shows_in_the_dashboard(stack: Stack) -> None:
    queries = dashboard_queries()
    assert PANELS_WITH_DATA <= {where for where, _ in queries}, "a panel expected to show data was renamed"
    for where, expression in queries:
        if where in PANELS_WITH_DATA:
            wait_until(
                f"{where!r} to show data: {expression}", partial(stack.prometheus.result, expression), timeout=30
            )
    (variable,) = [expression for where, expression in queries if where.startswith("variable ")]
    sources = {series["metric"]["source"] for series in stack.prometheus.result(variable)}
    assert SOURCE in sources


def test_the_failed_test_fires_its_alert_while_the_operator_alerts_stay_silent(stack: Stack) -> None:
    expressions = dict(rule_queries())
    wait_until(f"{FIRING} to have a result", partial(stack.prometheus.result, expressions[FIRING]), timeout=30)

    def fired() -> bool:
        alerts = stack.prometheus.data("alerts")["alerts"]
        return any(a["labels"] == {"alertname": FIRING, "severity": "critical", "source": SOURCE}
                   and a["state"] == "firing" for a in alerts)  # fmt: skip

    wait_until(f"{FIRING} to fire for {SOURCE}", fired, timeout=30)
    for alert in SILENT:
        assert stack.prometheus.result(expressions[alert]) == [], alert
