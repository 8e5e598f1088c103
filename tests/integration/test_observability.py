"""Notifications with credentials from real Secrets, their status entries accepted by the real CRD,
the cache metrics fed by a real informer, and ``lazarus report`` reading a real API server.

Needs only a kube-apiserver (no Velero server): the receivers are local (tests/receivers.py).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from prometheus_client import CollectorRegistry

from lazarus.cli import main
from lazarus.informers import LAZARUS_RESTORE_TESTS, NAMESPACES, SharedInformerFactory
from lazarus.kube.client import Rest
from lazarus.metrics import register_cache_metrics
from lazarus.notify import send_notifications
from lazarus.settings import Settings
from tests.finished_tests import finished_test
from tests.integration.conftest import delete_namespace_and_wait
from tests.integration.kube import unique_name
from tests.receivers import HttpReceiver

pytestmark = pytest.mark.integration

GROUP, VERSION, PLURAL = "lazarus.io", "v1alpha1", "lazarusrestoretests"


@pytest.fixture(scope="module", autouse=True)
def installed_crds(lazarus_crds: list[str]) -> list[str]:
    return lazarus_crds


@pytest.fixture
def operator_namespace(core: client.CoreV1Api) -> Iterator[str]:
    """A namespace standing in for the operator's own (its default notification Secret)."""
    name = unique_name("it-op")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    delete_namespace_and_wait(core, name)


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    server = HttpReceiver()
    yield server
    server.close()


def create_secret(core: client.CoreV1Api, namespace: str, name: str, data: dict[str, str]) -> None:
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
    core.create_namespaced_secret(namespace, client.V1Secret(metadata=client.V1ObjectMeta(name=name), data=encoded))


def create_finished(custom: client.CustomObjectsApi, test: dict[str, Any]) -> dict[str, Any]:
    """Create ``test`` and write its status through /status, as the controller does."""
    namespace = test["metadata"]["namespace"]
    body = {key: test[key] for key in ("apiVersion", "kind", "spec")}
    body["metadata"] = {k: v for k, v in test["metadata"].items() if k != "uid"}
    created = custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    created["status"] = test["status"]
    result: dict[str, Any] = custom.replace_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, created["metadata"]["name"], created
    )
    return result


def test_notifications_read_real_secrets_and_their_entries_fit_the_crd(
    api_client: client.ApiClient,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    operator_namespace: str,
    receiver: HttpReceiver,
) -> None:
    slack_url = receiver.url("/services/T1/B1/REALSECRETTOKEN")
    create_secret(core, namespace, "team-hooks", {"slack": slack_url, "empty": ""})
    create_secret(core, operator_namespace, "lazarus-notifications", {"pagerdutyRoutingKey": "R0UTE-KEY-FROM-SECRET"})
    notifications = {
        "onFailure": {
            "slack": {"webhookSecretRef": {"name": "team-hooks", "key": "slack"}, "mentionOnFailure": "@here"},
            "pagerduty": {},
            "webhook": {"urlSecretRef": {"name": "team-hooks", "key": "empty"}},
            "email": {"to": ["ops@example.com"], "enabled": False},
        }
    }
    test = create_finished(custom, finished_test("notified", namespace=namespace, success=False,
                                                 spec={"notifications": notifications}))  # fmt: skip
    settings = Settings(namespace=operator_namespace, pagerduty_events_url=receiver.url("/v2/enqueue"),
                        notification_attempts=1)  # fmt: skip

    entries = send_notifications(Rest(api_client), test, settings)

    assert [(e["type"], e["status"]) for e in entries] == [
        ("slack", "Sent"), ("webhook", "Failed"), ("pagerduty", "Sent"),
    ]  # fmt: skip
    assert entries[1]["message"] == f"Secret {namespace}/team-hooks key empty is missing or empty"
    by_path = {r.path: r.body for r in receiver.requests}
    assert by_path["/services/T1/B1/REALSECRETTOKEN"]["text"].startswith("<!here> ❌ Restore test FAILED")
    assert by_path["/v2/enqueue"]["routing_key"] == "R0UTE-KEY-FROM-SECRET"
    assert "REALSECRETTOKEN" not in json.dumps(entries) and "R0UTE-KEY" not in json.dumps(entries)

    # The entries are what the controller writes to status.notifications: the CRD keeps them as they are.
    test["status"]["notifications"] = entries
    written = custom.replace_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL, "notified", test)
    assert written["status"]["notifications"] == entries


def test_a_test_cannot_use_a_secret_of_another_namespace(
    api_client: client.ApiClient, core: client.CoreV1Api, namespace: str, operator_namespace: str
) -> None:
    create_secret(core, operator_namespace, "other-team", {"slack": "http://127.0.0.1:1/x"})
    spec = {"notifications": {"onSuccess": {"slack": {"webhookSecretRef": {"name": "other-team", "key": "slack"}}}}}
    test = finished_test("isolated", namespace=namespace, spec=spec)
    (entry,) = send_notifications(Rest(api_client), test, Settings(namespace=operator_namespace))
    assert (entry["status"], entry["message"]) == ("Failed", f"Secret {namespace}/other-team does not exist")


def test_cache_metrics_from_a_real_informer(api_client: client.ApiClient, custom: client.CustomObjectsApi,
                                            namespace: str) -> None:  # fmt: skip
    create_finished(custom, finished_test("older", namespace=namespace, completed="2026-01-01T00:00:00Z",
                                          labels={"lazarus.io/schedule-name": "it-shop"}))  # fmt: skip
    create_finished(custom, finished_test("newer", namespace=namespace, success=False, completed="2026-01-02T00:00:00Z",
                                          labels={"lazarus.io/schedule-name": "it-shop"}))  # fmt: skip
    factory = SharedInformerFactory.for_api_client(api_client, resync_period=0)
    tests = factory.informer_for(LAZARUS_RESTORE_TESTS, namespace=namespace)
    sandboxes = factory.informer_for(NAMESPACES, label_selector="lazarus.io/sandbox=true")
    factory.start()
    try:
        assert factory.wait_for_cache_sync(30)
        registry = CollectorRegistry()
        register_cache_metrics(tests.store.list, sandboxes.store.list, lambda _name: None, registry=registry)
        source = {"source": "schedule/it-shop"}
        assert registry.get_sample_value("lazarus_last_test_success", source) == 0
        assert registry.get_sample_value("lazarus_last_successful_test_timestamp_seconds", source) == 1767225600.0
    finally:
        factory.stop()


def test_report_reads_the_tests_from_the_api_server(
    custom: client.CustomObjectsApi, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for index in range(3):
        create_finished(custom, finished_test(f"run-{index}", namespace=namespace, success=index != 1,
                                              completed=f"2026-01-0{index + 1}T00:00:00Z"))  # fmt: skip
    args = ["report", "--namespace", namespace, "--since", "36500d", "--format", "json",
            "--kubeconfig", os.environ["KUBECONFIG"]]  # fmt: skip
    assert main(args) == 0
    document = json.loads(capsys.readouterr().out)
    (manual,) = document["sources"]
    assert (manual["source"], manual["tests"], manual["passed"], manual["failed"]) == ("manual", 3, 2, 1)
    assert [h["test"]["name"] for h in manual["history"]] == ["run-0", "run-1", "run-2"]
