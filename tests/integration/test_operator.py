"""``lazarus run`` as real processes against the test bed: probes, leader election, shutdown."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch
from urllib3.exceptions import ProtocolError

from tests.integration.kube import wait_backup_completed, wait_until
from tests.integration.operator_process import OperatorProcess
from tests.integration.operator_process import start_operator as start_operator_process
from tests.integration.restores_created import RestoresCreated
from tests.integration.test_restoretest import (
    GROUP,
    PLURAL,
    VERSION,
    _backup,
    _create_test,
    _get_test,
    _snapshot,
    _wait_phase,
    production,  # noqa: F401 - fixture
)
from tests.integration.testbed_control import checked_testbed_env, run_testbed
from tests.integration.workloads import BASE_IMAGE

pytestmark = pytest.mark.integration

# Short lease timings keep the test quick; the takeover bound below is the spec's own:
# a follower takes over within lease duration + retry period after the leader dies.
LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD = 6.0, 4.0, 1.0
SHORT = (LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD)
DEFAULTS = (15.0, 10.0, 2.0)  # the Deployment's (lazarus run's defaults)
LEASE_NAME = "lazarus-leader"


@pytest.fixture
def start_operator(namespace: str, tmp_path: Path) -> Iterator[Any]:
    """Start ``lazarus run`` processes whose lease lives in the test's namespace; kill them after."""
    started: list[OperatorProcess] = []

    def start(identity: str, timings: tuple[float, float, float] = SHORT) -> OperatorProcess:
        lease_duration, renew_deadline, retry_period = timings
        operator = start_operator_process(
            identity, tmp_path, "--namespace", namespace, "--lease-duration", str(lease_duration),
            "--renew-deadline", str(renew_deadline), "--retry-period", str(retry_period),
        )  # fmt: skip
        started.append(operator)
        return operator

    yield start
    for operator in started:
        operator.stop()


def _lease(api_client: client.ApiClient, namespace: str) -> dict[str, Any]:
    lease = client.CoordinationV1Api(api_client).read_namespaced_lease(LEASE_NAME, namespace)
    return {"holder": lease.spec.holder_identity or "", "transitions": lease.spec.lease_transitions or 0,
            "renewed": lease.spec.renew_time}  # fmt: skip


def test_probes_answer(start_operator: Any) -> None:
    operator = start_operator("solo")
    wait_until("readiness", lambda: operator.get("/readyz").status_code == 200, timeout=30)
    assert operator.get("/healthz").text.strip() == "ok"
    assert "lazarus_leader_is_leader" in operator.get("/metrics").text


def test_exactly_one_leader_and_takeover_after_sigkill(
    start_operator: Any, api_client: client.ApiClient, namespace: str
) -> None:
    a, b = start_operator("replica-a"), start_operator("replica-b")
    leader = wait_until("a leader", lambda: next((o for o in (a, b) if o.is_leader()), None), timeout=20)
    follower = b if leader is a else a
    for _ in range(3):  # stays that way across several renewals
        assert leader.is_leader() and not follower.is_leader()
        lease = _lease(api_client, namespace)
        assert lease["holder"] == leader.identity
        renewed = lease["renewed"]
        wait_until("a renewal", lambda renewed=renewed: _lease(api_client, namespace)["renewed"] != renewed,
                   timeout=3 * RETRY_PERIOD)  # fmt: skip
    transitions = _lease(api_client, namespace)["transitions"]

    leader.process.send_signal(signal.SIGKILL)
    leader.process.wait(10)
    wait_until("the follower to take over", follower.is_leader, timeout=LEASE_DURATION + RETRY_PERIOD + 3)
    lease = _lease(api_client, namespace)
    assert lease["holder"] == follower.identity
    assert lease["transitions"] == transitions + 1


def test_sigterm_releases_the_lease_and_exits_zero(
    start_operator: Any, api_client: client.ApiClient, namespace: str
) -> None:
    a = start_operator("replica-a")
    wait_until("a to lead", a.is_leader, timeout=20)
    b = start_operator("replica-b")
    a.process.send_signal(signal.SIGTERM)
    assert a.process.wait(20) == 0, a.log.read_text()
    # A released lease is taken at the follower's next attempt, not after a whole lease duration.
    wait_until("b to take over the released lease", b.is_leader, timeout=RETRY_PERIOD + 3)
    assert _lease(api_client, namespace)["holder"] == "replica-b"
    assert '"released lease"' in a.log.read_text() or "released lease" in a.log.read_text()


def _log_lines(operator: OperatorProcess) -> list[dict[str, Any]]:
    lines = []
    for line in operator.log.read_text().splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # not structlog's (a library writing to stderr)
    return lines


def _logged_at(operator: OperatorProcess, event: str) -> list[datetime]:
    return [datetime.fromisoformat(line["timestamp"]) for line in _log_lines(operator) if line.get("event") == event]


class LeaseHistory:
    """The Lease's holders in the order the API server recorded them, through a watch."""

    def __init__(self, api_client: client.ApiClient, namespace: str) -> None:
        self.holders: list[str] = []
        self._stopped = False
        self._watch = watch.Watch()
        api = client.CoordinationV1Api(api_client)
        self._thread = threading.Thread(target=self._run, args=(api, namespace), daemon=True)
        self._thread.start()

    def _run(self, api: client.CoordinationV1Api, namespace: str) -> None:
        selector = f"metadata.name={LEASE_NAME}"
        try:
            for event in self._watch.stream(api.list_namespaced_lease, namespace, field_selector=selector):
                holder = event["object"].spec.holder_identity or ""
                if not self.holders or self.holders[-1] != holder:
                    self.holders.append(holder)
        except ProtocolError:
            if not self._stopped:
                raise

    def stop(self) -> None:
        self._stopped = True
        self._watch.stop()


def test_an_api_server_pause_within_the_renew_deadline_does_not_change_the_leader(
    start_operator: Any, api_client: client.ApiClient, namespace: str
) -> None:
    """With the Deployment's timings (15 s lease, 10 s renew deadline), a 5 s freeze of the API
    server (every request hangs) leaves the leader leading and the follower following."""
    env = checked_testbed_env(api_client)
    a, b = start_operator("replica-a", DEFAULTS), start_operator("replica-b", DEFAULTS)
    leader = wait_until("a leader", lambda: next((o for o in (a, b) if o.is_leader()), None), timeout=40)
    follower = b if leader is a else a
    before = _lease(api_client, namespace)
    run_testbed(env, "pause", "kube-apiserver", "5")
    renewed = before["renewed"]
    wait_until("a renewal after the pause", lambda: _lease(api_client, namespace)["renewed"] != renewed,
               timeout=3 * DEFAULTS[2])  # fmt: skip
    after = _lease(api_client, namespace)
    assert (after["holder"], after["transitions"]) == (leader.identity, before["transitions"])
    assert leader.is_leader() and not follower.is_leader()
    assert leader.process.poll() is None and follower.process.poll() is None
    assert _logged_at(leader, "leader election: stopped leading") == []
    assert _logged_at(follower, "leader election: acquired lease") == []


def test_sigterm_with_a_check_in_flight_hands_over_without_two_leaders_acting(
    start_operator: Any,
    api_client: client.ApiClient,
    core: client.CoreV1Api,
    apps: client.AppsV1Api,
    batch: client.BatchV1Api,
    custom: client.CustomObjectsApi,
    lazarus_crds: list[str],
    production: dict[str, Any],  # noqa: F811
    namespace: str,
    restores_created: RestoresCreated,
) -> None:
    """The leader gets SIGTERM while a test's custom check Job runs. Its workers drain, it releases
    the lease and exits 0; the follower takes over, adopts the Job and finishes the test. The
    Lease's history and the two logs show that their times of acting do not overlap."""
    history = LeaseHistory(api_client, namespace)
    a = start_operator("replica-a")
    wait_until("a to lead", a.is_leader, timeout=20)
    b = start_operator("replica-b")
    backup = _backup(custom, production["namespace"])
    wait_backup_completed(custom, backup)
    production["before"] = _snapshot(core, apps, production["namespace"])
    checks = {"customChecks": {"pod": {"image": BASE_IMAGE, "command": ["sleep", "10"]}}}
    name = _create_test(custom, namespace, backup, healthChecks=checks, cleanup={"enabled": False})
    try:
        checking = _wait_phase(custom, namespace, name, {"Checking"})
        sandbox = checking["status"]["sandboxNamespaces"][0]
        job = wait_until("a's check Job", lambda: next(iter(batch.list_namespaced_job(sandbox).items), None))

        a.process.send_signal(signal.SIGTERM)
        assert a.process.wait(30) == 0, a.log.read_text()[-3000:]
        done = _wait_phase(custom, namespace, name, {"Succeeded", "Failed"}, timeout=120)
        assert done["status"]["phase"] == "Succeeded", done["status"]
        assert len(restores_created.of(done["metadata"]["uid"])) == 1
        assert [j.metadata.uid for j in batch.list_namespaced_job(sandbox).items] == [job.metadata.uid]
    finally:
        history.stop()
        # The finalizer needs a running operator (b, or nobody if a never handed over).
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        wait_until("the test to be gone", lambda: _get_test(custom, namespace, name) is None, timeout=120)

    assert history.holders[:3] == ["replica-a", "", "replica-b"], history.holders
    assert "replica-a" not in history.holders[2:]
    released = _logged_at(a, "leader election: released lease")
    acquired = _logged_at(b, "leader election: acquired lease")
    assert len(released) == 1 and len(acquired) == 1 and released[0] < acquired[0]
    stopped = _logged_at(a, "operator stopped")
    assert len(stopped) == 1 and stopped[0] < acquired[0] + timedelta(seconds=5)
    key = f"{namespace}/{name}"
    a_acted = [datetime.fromisoformat(line["timestamp"]) for line in _log_lines(a) if line.get("test") == key]
    b_acted = [datetime.fromisoformat(line["timestamp"]) for line in _log_lines(b) if line.get("test") == key]
    assert a_acted and b_acted, "each replica logged its steps of the test"
    assert max(a_acted) < released[0] and min(b_acted) > acquired[0]
