"""Fixtures for tests against the real test bed (``make cluster-up`` / ``make test``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from tests.integration.install import apply, kubectl, overlay_additions
from tests.integration.kube import unique_name, wait_until
from tests.integration.restores_created import RestoresCreated

ROOT = Path(__file__).resolve().parents[2]


def load_yaml(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc


@pytest.fixture(scope="session")
def api_client() -> Iterator[client.ApiClient]:
    """An ApiClient for the cluster named by ``KUBECONFIG``."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=os.environ["KUBECONFIG"], client_configuration=configuration)
    with client.ApiClient(configuration) as api:
        yield api


@pytest.fixture(scope="session")
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture(scope="session")
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


@pytest.fixture(scope="session")
def batch(api_client: client.ApiClient) -> client.BatchV1Api:
    return client.BatchV1Api(api_client)


@pytest.fixture(scope="session")
def custom(api_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


@pytest.fixture
def restores_created(custom: client.CustomObjectsApi) -> Iterator[RestoresCreated]:
    """Every Velero Restore created during the test (``RestoresCreated.of(test_uid)``)."""
    recorder = RestoresCreated(custom).start()
    yield recorder
    recorder.stop()


def delete_namespace_and_wait(core: client.CoreV1Api, name: str, timeout: float = 120.0) -> None:
    """Delete a namespace and wait until it is gone (the namespace controller must finish it)."""
    try:
        core.delete_namespace(name)
    except client.ApiException as exc:
        if exc.status != 404:
            raise

    def gone() -> bool:
        try:
            core.read_namespace(name)
        except client.ApiException as exc:
            return exc.status == 404
        return False

    wait_until(f"namespace {name} to be deleted", gone, timeout=timeout)


@pytest.fixture
def namespace(core: client.CoreV1Api) -> Iterator[str]:
    """A fresh namespace, deleted after the test."""
    name = unique_name("it")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    delete_namespace_and_wait(core, name)


@pytest.fixture(scope="session")
def lazarus_crds(api_client: client.ApiClient) -> list[str]:
    """Server-side apply every CRD in crds/ and wait until each is Established."""
    ext = client.ApiextensionsV1Api(api_client)
    names = []
    for path in sorted((ROOT / "crds").glob("lazarus.io_*.yaml")):
        crd = load_yaml(path)
        name = crd["metadata"]["name"]
        ext.patch_custom_resource_definition(
            name, crd, field_manager="lazarus-tests", force=True, _content_type="application/apply-patch+yaml"
        )

        def established(name: str = name) -> bool:
            conditions = ext.read_custom_resource_definition(name).status.conditions or []
            return any(c.type == "Established" and c.status == "True" for c in conditions)

        wait_until(f"CRD {name} to be Established", established, timeout=30)
        names.append(name)
    return names


@pytest.fixture
def cluster_resources_grant() -> Iterator[None]:
    """The opt-in RBAC of manifests/overlays/cluster-resources (deleting restored cluster-scoped
    objects), for the test's duration."""
    objects = overlay_additions(ROOT / "manifests" / "overlays" / "cluster-resources")
    apply(objects)
    yield
    for obj in objects:
        kubectl("delete", obj["kind"], obj["metadata"]["name"], "--ignore-not-found")
