"""The CRDs install on a real kube-apiserver, valid objects are accepted and malformed ones are
rejected by the API server with the offending field named."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.integration.kube import unique_name, wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
GROUP, VERSION = "lazarus.io", "v1alpha1"


def _load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc


@pytest.fixture(scope="module", autouse=True)
def installed_crds(api_client: client.ApiClient) -> list[str]:
    """Server-side apply every CRD in crds/ and wait until each is Established."""
    ext = client.ApiextensionsV1Api(api_client)
    names = []
    for path in sorted((ROOT / "crds").glob("lazarus.io_*.yaml")):
        crd = _load(path)
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


def _sample(name: str, namespace: str) -> dict[str, Any]:
    obj = _load(ROOT / "manifests" / "samples" / name)
    obj["metadata"]["namespace"] = namespace
    return obj


def _create(custom: client.CustomObjectsApi, obj: dict[str, Any]) -> dict[str, Any]:
    plural = {"LazarusRestoreTest": "lazarusrestoretests", "BackupTestPolicy": "backuptestpolicies"}[obj["kind"]]
    namespace = obj["metadata"]["namespace"]
    created: dict[str, Any] = custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, obj)
    return created


def test_both_crds_are_established(installed_crds: list[str]) -> None:
    assert installed_crds == ["backuptestpolicies.lazarus.io", "lazarusrestoretests.lazarus.io"]


@pytest.mark.parametrize("sample", ["restoretest-minimal.yaml", "restoretest-postgres.yaml", "backuptestpolicy.yaml"])
def test_samples_are_accepted(custom: client.CustomObjectsApi, namespace: str, sample: str) -> None:
    created = _create(custom, _sample(sample, namespace))
    assert created["metadata"]["uid"]


def test_defaults_are_applied_by_the_api_server(custom: client.CustomObjectsApi, namespace: str) -> None:
    spec = _create(custom, _sample("restoretest-minimal.yaml", namespace))["spec"]
    assert spec["backupNamespace"] == "velero"
    assert spec["restore"]["includeClusterResources"] is False
    assert spec["cleanup"]["enabled"] is True
    assert spec["healthChecks"]["timeout"] == 600


def _rejection(custom: client.CustomObjectsApi, obj: dict[str, Any]) -> str:
    with pytest.raises(client.ApiException) as excinfo:
        _create(custom, obj)
    assert excinfo.value.status == 422, excinfo.value.body
    return str(excinfo.value.body)


def test_unknown_database_type_is_rejected_naming_the_field(custom: client.CustomObjectsApi, namespace: str) -> None:
    obj = _sample("restoretest-postgres.yaml", namespace)
    obj["spec"]["healthChecks"]["database"]["type"] = "oracle"
    body = _rejection(custom, obj)
    assert "spec.healthChecks.database.type" in body
    assert 'Unsupported value: \\"oracle\\"' in body or 'Unsupported value: "oracle"' in body


def test_missing_backup_name_is_rejected(custom: client.CustomObjectsApi, namespace: str) -> None:
    obj = _sample("restoretest-minimal.yaml", namespace)
    del obj["spec"]["backupName"]
    assert "spec.backupName" in _rejection(custom, obj)


def test_cel_rules_are_enforced(custom: client.CustomObjectsApi, namespace: str) -> None:
    obj = _sample("restoretest-postgres.yaml", namespace)
    database = obj["spec"]["healthChecks"]["database"]
    database["serviceRef"] = {"name": "db"}  # now both serviceRef and connectionString
    query = copy.deepcopy(database["queries"][0])
    query.update({"name": "bad-range", "expectedRange": {"min": 10, "max": 1}})
    database["queries"].append(query)
    body = _rejection(custom, obj)
    assert "exactly one of serviceRef or connectionString" in body
    assert "expectedRange.min must not be greater than expectedRange.max" in body


def test_malformed_policy_is_rejected(custom: client.CustomObjectsApi, namespace: str) -> None:
    obj = _sample("backuptestpolicy.yaml", namespace)
    obj["metadata"]["name"] = unique_name("policy")
    obj["spec"]["concurrencyPolicy"] = "Sometimes"
    assert "spec.concurrencyPolicy" in _rejection(custom, obj)
