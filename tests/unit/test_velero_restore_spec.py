"""Unit tests of lazarus.velero.restore_spec: the Velero Restore of a test, failing closed."""

from __future__ import annotations

from typing import Any

import pytest

from lazarus.velero.restore_spec import (
    FORCED_EXCLUDED_RESOURCES,
    RestoreSafety,
    UnsafeRestoreError,
    restore_body,
    restore_safety,
)

MAPPING = {"shop": "lazarus-sbx-shop-1a2b3c", "db": "lazarus-sbx-db-4d5e6f"}
LABELS = {"lazarus.io/test-uid": "u1", "lazarus.io/test-name": "t", "lazarus.io/test-namespace": "apps"}


def build(restore_spec: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "name": "lazarus-u1",
        "namespace": "velero",
        "backup_name": "nightly",
        "namespace_mapping": MAPPING,
        "resource_modifier_configmap": "lazarus-u1",
        "restore_spec": restore_spec,
        "labels": LABELS,
        **kw,
    }
    return restore_body(**args)


def test_default_restore() -> None:
    body = build()
    assert body["apiVersion"] == "velero.io/v1" and body["kind"] == "Restore"
    assert body["metadata"] == {"name": "lazarus-u1", "namespace": "velero", "labels": LABELS}
    assert body["spec"] == {
        "backupName": "nightly",
        "includedNamespaces": ["db", "shop"],
        "namespaceMapping": MAPPING,
        "includeClusterResources": False,
        "excludedResources": list(FORCED_EXCLUDED_RESOURCES),
        "restorePVs": True,
        "preserveNodePorts": False,
        "existingResourcePolicy": "none",
        "resourceModifier": {"kind": "ConfigMap", "name": "lazarus-u1"},
    }


def test_ingress_and_gateway_routes_are_always_excluded() -> None:
    excluded = build({"excludedResources": ["secrets", "ingresses.networking.k8s.io"]})["spec"]["excludedResources"]
    for resource in (
        "ingresses.networking.k8s.io",
        "ingresses.extensions",
        "httproutes.gateway.networking.k8s.io",
        "grpcroutes.gateway.networking.k8s.io",
        "tlsroutes.gateway.networking.k8s.io",
        "tcproutes.gateway.networking.k8s.io",
        "udproutes.gateway.networking.k8s.io",
        "gateways.gateway.networking.k8s.io",
    ):
        assert resource in excluded
    assert excluded[-1] == "secrets" and len(excluded) == len(set(excluded))


def test_user_filters_are_passed_through() -> None:
    selector = {"matchLabels": {"app": "shop"}}
    spec = build({"includedResources": ["deployments", "configmaps"], "labelSelector": selector,
                  "restorePVs": False})["spec"]
    assert spec["includedResources"] == ["deployments", "configmaps"]
    assert spec["labelSelector"] == selector and spec["restorePVs"] is False
    assert "orLabelSelectors" not in spec
    or_spec = build({"orLabelSelectors": [selector, {"matchLabels": {"tier": "db"}}]})["spec"]
    assert len(or_spec["orLabelSelectors"]) == 2 and "labelSelector" not in or_spec


def test_namespace_fields_of_the_test_spec_are_not_used() -> None:
    # The caller turned them (with the backup's contents) into the mapping; "*" never reaches Velero.
    spec = build({"includedNamespaces": ["*"], "excludedNamespaces": ["x"]})["spec"]
    assert spec["includedNamespaces"] == ["db", "shop"] and "excludedNamespaces" not in spec


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"namespace_mapping": {}}, "no namespace to restore"),
        ({"source_namespaces": ["shop", "db", "billing"]}, "billing have no sandbox mapping"),
        ({"source_namespaces": ["shop"]}, "not restored: db"),
        ({"namespace_mapping": {"shop": ""}}, "shop have no sandbox mapping"),
        ({"namespace_mapping": {"*": "sbx"}}, "wildcards are never restored"),
        ({"namespace_mapping": {"a": "b", "b": "c"}}, "sandboxes b are also source namespaces"),
        ({"namespace_mapping": {"a": "sbx", "b": "sbx"}}, "same sandbox"),
        ({"namespace_mapping": {"a": "kube-system"}}, "kube-system can never be a sandbox"),
        ({"namespace_mapping": {"a": "velero"}}, "velero can never be a sandbox"),
        ({"namespace_mapping": {"a": "Not_A_Name"}}, "is not a namespace name"),
    ],
)
def test_unsafe_namespace_mappings_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(UnsafeRestoreError, match=message):
        build(**kwargs)


def test_explicit_sources_equal_to_the_mapping_are_fine() -> None:
    assert build(source_namespaces=["shop", "db"])["spec"]["includedNamespaces"] == ["db", "shop"]


@pytest.mark.parametrize(
    "included",
    [["ingresses"], ["ingress"], ["ingresses.networking.k8s.io"], ["deployments", "httproutes"],
     ["gateways.gateway.networking.k8s.io"], ["gateway"], ["virtualservices.networking.istio.io"]],
)
def test_including_a_forced_exclusion_is_refused(included: list[str]) -> None:
    with pytest.raises(UnsafeRestoreError, match="can never be restored into a sandbox"):
        build({"includedResources": included})


def test_unrelated_resources_with_similar_names_are_allowed() -> None:
    spec = build({"includedResources": ["gateways.example.com", "ingressclasses.networking.k8s.io"]})["spec"]
    assert spec["includedResources"] == ["gateways.example.com", "ingressclasses.networking.k8s.io"]


@pytest.mark.parametrize(
    ("restore_spec", "message"),
    [
        ({"includedResources": ["*", "pods"]}, r"\['\*'\] alone"),
        ({"excludedResources": ["*"]}, "cannot contain"),
        ({"includedResources": "pods"}, "must be a list"),
        ({"labelSelector": {"matchLabels": {"a": "b"}}, "orLabelSelectors": [{"matchLabels": {"c": "d"}}]}, "both"),
        ({"restoreStatus": "yes"}, "restoreStatus must be"),
    ],
)
def test_requests_velero_would_reject_are_refused_early(restore_spec: dict[str, Any], message: str) -> None:
    with pytest.raises(UnsafeRestoreError, match=message):
        build(restore_spec)


def test_restore_status() -> None:
    assert "restoreStatus" not in build({"restoreStatus": False})["spec"]
    assert build({"restoreStatus": True})["spec"]["restoreStatus"] == {
        "includedResources": ["*"],
        "excludedResources": ["services"],
    }
    assert build({"restoreStatus": {"includedResources": ["deployments", "services"]}})["spec"]["restoreStatus"] == {
        "includedResources": ["deployments"],
        "excludedResources": ["services"],
    }
    assert "restoreStatus" not in build({"restoreStatus": {"includedResources": ["services"]}})["spec"]


def test_cluster_resources_only_when_explicitly_allowed() -> None:
    assert build({"includeClusterResources": None})["spec"]["includeClusterResources"] is False
    assert build({"includeClusterResources": "true"})["spec"]["includeClusterResources"] is False
    spec = build({"includeClusterResources": True})["spec"]
    assert spec["includeClusterResources"] is True
    # Volumes without verified backup data would point at production storage: excluded.
    assert "persistentvolumes" in spec["excludedResources"]


def test_including_unsafe_persistent_volumes_is_refused() -> None:
    with pytest.raises(UnsafeRestoreError, match="persistentvolumes are included but cannot be restored safely"):
        build({"includeClusterResources": True, "includedResources": ["persistentvolumes", "pods"]})


def test_restore_safety_decisions() -> None:
    default = restore_safety()
    assert default == RestoreSafety(False, True, "none", False, default.reasons)
    assert any("cluster-scoped resources are not restored" in r for r in default.reasons)
    assert any("existingResourcePolicy: none" in r for r in default.reasons)

    no_pvs = restore_safety({"includeClusterResources": True, "restorePVs": False})
    assert (no_pvs.include_cluster_resources, no_pvs.restore_pvs) == (True, False)
    assert "restorePVs is off" in no_pvs.reasons[-1]

    cluster = restore_safety({"includeClusterResources": True})
    assert "not verified" in cluster.reasons[-1]
    assert cluster.existing_resource_policy == "none" and cluster.preserve_node_ports is False
