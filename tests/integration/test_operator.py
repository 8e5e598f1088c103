"""``lazarus run`` as real processes against the test bed: probes, leader election, shutdown."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.integration.kube import wait_until
from tests.integration.operator_process import OperatorProcess
from tests.integration.operator_process import start_operator as start_operator_process

pytestmark = pytest.mark.integration

# Short lease timings keep the test quick; the takeover bound below is the spec's own:
# a follower takes over within lease duration + retry period after the leader dies.
LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD = 6.0, 4.0, 1.0
LEASE_NAME = "lazarus-leader"


@pytest.fixture
def start_operator(namespace: str, tmp_path: Path) -> Iterator[Any]:
    """Start ``lazarus run`` processes whose lease lives in the test's namespace; kill them after."""
    started: list[OperatorProcess] = []

    def start(identity: str) -> OperatorProcess:
        operator = start_operator_process(
            identity, tmp_path, "--namespace", namespace, "--lease-duration", str(LEASE_DURATION),
            "--renew-deadline", str(RENEW_DEADLINE), "--retry-period", str(RETRY_PERIOD),
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
