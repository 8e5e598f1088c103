"""The CRDs install on a real kube-apiserver, valid objects are accepted and malformed ones are
rejected by the API server with the offending field named."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from kubernetes import client

from tests.integration.conftest import ROOT, load_yaml
from tests.integration.kube import unique_name

pytestmark = pytest.mark.integration

GROUP, VERSION = "lazarus.io", "v1alpha1"


@pytest.fixture(scope="module", autouse=True)
def installed_crds(lazarus_crds: list[str]) -> list[str]:
    return lazarus_crds


def _sample(name: str, namespace: str) -> dict[str, Any]:
    obj = load_yaml(ROOT / "manifests" / "samples" / name)
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
