"""The end-to-end suite's fixtures: the cluster clients of the integration suite, and Lazarus
installed as users install it (``kubectl apply --server-side -k``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.integration.conftest import api_client, apps, core, custom, restores_created  # noqa: F401  (fixtures)
from tests.integration.install import ROOT, kubectl
from tests.integration.workloads import why_not_ready

OVERLAY = ROOT / "manifests" / "overlays" / "testbed"
NAMESPACE = "lazarus-system"
SELECTOR = "app.kubernetes.io/name=lazarus,app.kubernetes.io/component=operator"


def operator_pods(core: client.CoreV1Api) -> list[client.V1Pod]:  # noqa: F811  (a parameter, not the fixture)
    """The operator's pods that are not being deleted."""
    pods = core.list_namespaced_pod(NAMESPACE, label_selector=SELECTOR).items
    return [pod for pod in pods if pod.metadata.deletion_timestamp is None]


def wait_rolled_out(core: client.CoreV1Api, timeout: str = "120s") -> None:  # noqa: F811
    """Wait until the Deployment's replicas are updated and ready; fail with each pod's reason."""
    try:
        kubectl("-n", NAMESPACE, "rollout", "status", "deployment/lazarus", "--timeout", timeout)
    except AssertionError as failed:
        pods = "\n".join(f"  {pod.metadata.name}: {why_not_ready(pod)}" for pod in operator_pods(core))
        raise AssertionError(f"Lazarus did not start: {failed}\n{pods}") from None


@pytest.fixture(scope="session")
def installed(core: client.CoreV1Api) -> Iterator[None]:  # noqa: F811
    """The install overlay applied (the base with only the image set); the Deployment removed after."""
    kubectl("apply", "--server-side", "--force-conflicts", "-k", str(OVERLAY))
    wait_rolled_out(core)
    yield
    kubectl("-n", NAMESPACE, "delete", "deployment", "lazarus", "--wait=true", "--timeout=120s")
