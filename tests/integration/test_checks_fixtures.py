"""Fixtures for the health-check integration tests (imported by the ``test_checks_*`` modules).

``sandbox``: a "sandbox" namespace and a "test" namespace on the test bed, with helpers to add
Secrets and ``ExternalName`` Services (e.g. pointing at ``localhost``, where the HTTP test servers
listen), and to build a test object whose checks run against them. The database tests restore
real data into it (``test_checks_databases``).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes import client

from lazarus.checks import HealthCheckReport, run_health_checks
from lazarus.kube.client import Rest
from tests.integration.conftest import delete_namespace_and_wait

SOURCE = "shop"  # the namespace "in the backup" that the sandbox stands for


@dataclass
class Sandbox:
    """A sandbox namespace (standing for ``SOURCE``) and the test's own namespace."""

    core: client.CoreV1Api
    rest: Rest
    namespace: str
    test_namespace: str
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))
    source: str = SOURCE
    """The namespace in the backup that ``namespace`` was restored from."""

    @property
    def mapping(self) -> dict[str, str]:
        return {self.source: self.namespace}

    def secret(self, name: str, data: dict[str, str], *, in_test_namespace: bool = False) -> None:
        namespace = self.test_namespace if in_test_namespace else self.namespace
        body = client.V1Secret(
            metadata=client.V1ObjectMeta(name=name),
            data={k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        )
        try:
            self.core.create_namespaced_secret(namespace, body)
        except client.ApiException as exc:
            if exc.status != 409:
                raise
            self.core.replace_namespaced_secret(name, namespace, body)

    def external_service(self, name: str, external_name: str = "localhost") -> None:
        body = client.V1Service(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1ServiceSpec(type="ExternalName", external_name=external_name),
        )
        try:
            self.core.create_namespaced_service(self.namespace, body)
        except client.ApiException as exc:
            if exc.status != 409:
                raise

    def test(self, health_checks: dict[str, Any], name: str = "it", uid: str | None = None) -> dict[str, Any]:
        """A test object (by default with this sandbox's UID) that runs ``health_checks``."""
        return {
            "apiVersion": "lazarus.io/v1alpha1",
            "kind": "LazarusRestoreTest",
            "metadata": {"name": name, "namespace": self.test_namespace, "uid": uid or self.uid},
            "spec": {"backupName": "it-backup", "healthChecks": health_checks},
        }

    def run(self, health_checks: dict[str, Any], *, uid: str | None = None, **options: Any) -> HealthCheckReport:
        """Run ``health_checks`` against this sandbox (``options`` as for ``run_health_checks``)."""
        return run_health_checks(self.rest, self.test(health_checks, uid=uid), self.mapping, **options)


@pytest.fixture(scope="module")
def sandbox(api_client: client.ApiClient, core: client.CoreV1Api) -> Iterator[Sandbox]:
    suffix = uuid.uuid4().hex[:8]
    names = (f"lzc-sbx-{suffix}", f"lzc-test-{suffix}")
    for name in names:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield Sandbox(core, Rest(api_client), *names)
    finally:
        for name in names:
            delete_namespace_and_wait(core, name)
