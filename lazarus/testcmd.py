"""``lazarus test BACKUP``: create a restore test for one backup and follow it to its result.

The test is an ordinary ``LazarusRestoreTest``: the running operator does the work; this command
only creates the object, shows each change of phase as the operator reports it (through a watch
on that one object: an informer with a field selector), and prints the result — with its cost and
baseline comparison, which the operator writes just after the result (``REPORT_GRACE``). Exit
status: 0 when the test succeeded, 1 when it failed, 2 on a usage or API error, 3 when
``--timeout`` ran out (the test keeps running in the cluster).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import yaml

from lazarus.api.v1alpha1 import TERMINAL_PHASES, Phase
from lazarus.automation.template import CREATED_BY_CLI, CREATED_BY_LABEL
from lazarus.informers import LAZARUS_RESTORE_TESTS, SharedInformerFactory
from lazarus.kube.client import ApiError, Rest, new_api_client

EXIT_SUCCEEDED, EXIT_FAILED, EXIT_ERROR, EXIT_TIMEOUT = 0, 1, 2, 3
TERMINAL = TERMINAL_PHASES
# Seconds to wait after the result for the operator's report of it (status.notifications marks
# it; status.cost and the baseline are written with it): one sync, normally well under a second.
REPORT_GRACE = 15.0


def load_spec(path: str | None) -> tuple[dict[str, Any], dict[str, str]]:
    """The test spec and labels from a YAML file: a whole LazarusRestoreTest (its ``spec`` and
    ``metadata.labels``), or just a spec (no labels)."""
    if path is None:
        return {}, {}
    document = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(document, dict):
        raise ValueError(f"{path}: expected a mapping, got {type(document).__name__}")
    if document.get("kind") != "LazarusRestoreTest":
        return dict(document), {}
    labels = (document.get("metadata") or {}).get("labels") or {}
    return dict(document.get("spec") or {}), {str(k): str(v) for k, v in labels.items()}


def test_body(
    backup: str, namespace: str, spec: dict[str, Any], labels: dict[str, str] | None = None
) -> dict[str, Any]:
    """The LazarusRestoreTest to create (``generateName``: every run is a new test)."""
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    prefix = f"{backup[:40].rstrip('-.')}-{stamp}-"
    return {
        "apiVersion": LAZARUS_RESTORE_TESTS.api_version,
        "kind": LAZARUS_RESTORE_TESTS.kind,
        "metadata": {
            "generateName": prefix,
            "namespace": namespace,
            "labels": {**(labels or {}), CREATED_BY_LABEL: CREATED_BY_CLI},
        },
        "spec": {**spec, "backupName": backup},
    }


def describe_result(test: dict[str, Any]) -> list[str]:
    """Human-readable lines about a finished test."""
    status = test.get("status") or {}
    result = status.get("result") or {}
    lines = [f"result: {status.get('phase')} ({status.get('reason')}): {status.get('message')}"]
    if status.get("namespaceMapping"):
        lines.append("sandbox: " + ", ".join(f"{s} → {t}" for s, t in status["namespaceMapping"].items()))
    if "rto" in result:
        rpo = f"{result['rpo']:.1f}s" if result.get("rpo") is not None else "n/a"
        lines.append(f"RTO: {result['rto']:.1f}s   RPO: {rpo}")
    if "resourcesRecovered" in result:
        lines.append(f"resources: {result['resourcesRecovered']} restored, {result.get('resourcesFailed', 0)} failed")
    checks = status.get("healthChecks") or {}
    groups = [checks.get("database"), *(checks.get("databases") or []), checks.get("http")]
    for group in groups:
        for check in (group or {}).get("checks", []):
            lines.append(f"check {check.get('name')}: {check.get('status')} — {check.get('result', '')}")
    if checks.get("custom"):
        custom = checks["custom"]
        lines.append(f"check custom job {custom.get('jobName')}: {custom.get('status')} — {custom.get('result', '')}")
    baseline = status.get("baseline") or {}
    if baseline.get("message"):
        recorded = " (now the baseline)" if baseline.get("recorded") else ""
        lines.append(f"baseline: {baseline.get('result')}: {baseline['message']}{recorded}")
    cost = status.get("cost")
    if cost:
        lines.append(
            f"cost: {cost['estimate']:.6f} {cost['currency']} ({cost['cpuCoreSeconds']:g} CPU core-seconds, "
            f"{cost['memoryGiBSeconds']:g} memory GiB-seconds, {cost['storageGiBSeconds']:g} storage GiB-seconds)"
        )
    return lines


def run_test(
    backup: str,
    *,
    namespace: str,
    spec: dict[str, Any],
    kubeconfig: str | None,
    timeout: float,
    out: TextIO,
    labels: dict[str, str] | None = None,
) -> int:
    """Create the test, follow it, print progress and result; return the exit status."""
    api = new_api_client(kubeconfig, pool_size=4)
    rest = Rest(api)
    try:
        created = rest.request(
            "POST", LAZARUS_RESTORE_TESTS.collection_path(namespace), body=test_body(backup, namespace, spec, labels)
        )
    except ApiError as exc:
        print(f"lazarus test: could not create the test: {exc}", file=out)
        return EXIT_ERROR
    name = created["metadata"]["name"]
    print(f"created LazarusRestoreTest {namespace}/{name} for backup {backup}", file=out)

    factory = SharedInformerFactory.for_api_client(api, resync_period=0)
    informer = factory.informer_for(LAZARUS_RESTORE_TESTS, namespace=namespace, field_selector=f"metadata.name={name}")
    finished, reported = threading.Event(), threading.Event()
    last: dict[str, Any] = {}
    started = time.monotonic()

    def show(test: dict[str, Any]) -> None:
        status = test.get("status") or {}
        seen = (status.get("phase"), status.get("reason"))
        if seen != (last.get("phase"), last.get("reason")) and status.get("phase"):
            print(f"[{time.monotonic() - started:6.1f}s] {status['phase']:<10} {status.get('message', '')}", file=out)
            last.update(phase=seen[0], reason=seen[1], test=test)
        if status.get("phase") in TERMINAL:
            last["test"] = test
            finished.set()
            if "notifications" in status:
                reported.set()

    informer.add_event_handler(show, lambda _old, new: show(new))
    factory.start()
    try:
        if not finished.wait(timeout):
            print(f"lazarus test: no result after {timeout:.0f}s; the test keeps running: "
                  f"kubectl -n {namespace} get lrt {name}", file=out)  # fmt: skip
            return EXIT_TIMEOUT
        reported.wait(REPORT_GRACE)  # without the report, the result is printed without cost
    finally:
        factory.stop()
        api.close()
    for line in describe_result(last["test"]):
        print(line, file=out)
    return EXIT_SUCCEEDED if last["test"]["status"]["phase"] == Phase.SUCCEEDED else EXIT_FAILED
