"""Pure pieces of the restore-test lifecycle: durations, workload readiness, sandboxes, conditions."""

from __future__ import annotations

import pytest

from lazarus.kube.conditions import get_condition, set_condition
from lazarus.lifecycle.cluster_objects import ClusterObject, created_cluster_objects
from lazarus.lifecycle.durations import parse_duration
from lazarus.lifecycle.workloads import is_ready
from lazarus.sandbox import (
    NETWORK_POLICY_NAME,
    TEST_UID_LABEL,
    namespace_body,
    namespace_mapping,
    network_policy_body,
    proven_sandbox,
    sandbox_name,
    sandbox_proof,
)

TEST = {
    "metadata": {"name": "nightly", "namespace": "lazarus-system", "uid": "0f8c6b7e-1111-2222-3333-444455556666"},
    "spec": {"backupName": "shop-20261129"},
}


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("1h30m", 5400), ("250ms", 0.25), ("1.5h", 5400)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "m", "1x", "1h 30m", "-5s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def _deployment(replicas: int, available: int, generation: int = 2, observed: int = 2) -> dict:
    return {
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "n", "generation": generation},
        "spec": {"replicas": replicas},
        "status": {"observedGeneration": observed, "availableReplicas": available, "updatedReplicas": available},
    }


def test_workload_readiness() -> None:
    assert is_ready(_deployment(2, 2))
    assert not is_ready(_deployment(2, 1))
    assert not is_ready(_deployment(2, 2, generation=3, observed=2))  # controller has not seen the spec yet
    assert is_ready(_deployment(0, 0))
    statefulset = {
        "kind": "StatefulSet",
        "metadata": {"name": "s"},
        "spec": {"replicas": 3},
        "status": {"readyReplicas": 3},
    }
    assert is_ready(statefulset)
    daemonset = {
        "kind": "DaemonSet",
        "metadata": {"name": "ds"},
        "status": {"desiredNumberScheduled": 2, "numberReady": 1},
    }
    assert not is_ready(daemonset)


def test_sandbox_names_are_deterministic_unique_and_valid() -> None:
    a = sandbox_name("lazarus-sbx-", TEST["metadata"]["uid"], "shop")
    assert a == sandbox_name("lazarus-sbx-", TEST["metadata"]["uid"], "shop")
    assert a.startswith("lazarus-sbx-shop-")
    assert a != sandbox_name("lazarus-sbx-", "another-uid", "shop")
    long = sandbox_name("lazarus-sbx-", TEST["metadata"]["uid"], "x" * 80)
    assert len(long) <= 63 and long[-1].isalnum()


def test_namespace_mapping_covers_every_source_and_rejects_ambiguous_explicit_name() -> None:
    mapping = namespace_mapping("sbx-", "uid", ["b", "a"])
    assert list(mapping) == ["a", "b"]
    assert namespace_mapping("sbx-", "uid", ["a"], explicit="mine") == {"a": "mine"}
    with pytest.raises(ValueError, match="holds 2 namespaces"):
        namespace_mapping("sbx-", "uid", ["a", "b"], explicit="mine")


def test_sandbox_namespace_is_labelled_as_owned() -> None:
    body = namespace_body(TEST, "lazarus-sbx-shop-abc123", "shop", {"team": "sre"}, "proof")
    assert body["metadata"]["labels"][TEST_UID_LABEL] == TEST["metadata"]["uid"]
    assert body["metadata"]["annotations"]["lazarus.io/sandbox-proof"] == "proof"
    assert body["metadata"]["labels"]["lazarus.io/sandbox"] == "true"
    assert body["metadata"]["labels"]["team"] == "sre"
    assert body["metadata"]["annotations"]["lazarus.io/source-namespace"] == "shop"


def test_a_sandbox_is_proven_only_by_the_proof_of_its_own_test_name_and_key() -> None:
    key, name = b"k" * 32, "lazarus-sbx-shop-abc123"

    def namespace(proof: str, test: dict[str, object] = TEST, called: str = name) -> dict[str, object]:
        return namespace_body(test, called, "shop", {}, proof)

    uid = TEST["metadata"]["uid"]
    assert proven_sandbox(namespace(sandbox_proof(key, uid, name)), uid, key)
    assert not proven_sandbox(namespace(""), uid, key)  # the label alone
    assert not proven_sandbox(namespace(sandbox_proof(b"x" * 32, uid, name)), uid, key)
    # A proof copied from another sandbox of the same test, or made for another test's UID:
    assert not proven_sandbox(namespace(sandbox_proof(key, uid, "lazarus-sbx-db-abc123")), uid, key)
    other = {"metadata": {**TEST["metadata"], "uid": "another-uid"}, "spec": TEST["spec"]}
    assert not proven_sandbox(namespace(sandbox_proof(key, "another-uid", name), other), uid, key)
    assert proven_sandbox(namespace(sandbox_proof(key, "another-uid", name), other), "another-uid", key)


def test_network_policy_isolates_the_sandbox() -> None:
    policy = network_policy_body(TEST, "sbx", "lazarus-system")
    spec = policy["spec"]
    assert policy["metadata"]["name"] == NETWORK_POLICY_NAME
    assert spec["podSelector"] == {} and spec["policyTypes"] == ["Ingress", "Egress"]
    sources = spec["ingress"][0]["from"]
    assert {"namespaceSelector": {"matchLabels": {TEST_UID_LABEL: TEST["metadata"]["uid"]}}} in sources
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "lazarus-system"}}} in sources
    egress = spec["egress"]
    assert egress[0] == {"to": [{"namespaceSelector": {"matchLabels": {TEST_UID_LABEL: TEST["metadata"]["uid"]}}}]}
    assert {p["port"] for p in egress[1]["ports"]} == {53}  # only DNS leaves the sandbox


def test_condition_transition_time_changes_only_with_status() -> None:
    first = set_condition(None, "Ready", "False", "Waiting", "m", now="t1")
    same = set_condition(first, "Ready", "False", "StillWaiting", "m2", now="t2")
    flipped = set_condition(same, "Ready", "True", "Done", "m3", now="t3")
    assert get_condition(same, "Ready")["lastTransitionTime"] == "t1"
    assert get_condition(same, "Ready")["reason"] == "StillWaiting"
    assert get_condition(flipped, "Ready")["lastTransitionTime"] == "t3"
    assert len(flipped) == 1


@pytest.mark.parametrize(
    ("path", "resource"),
    [
        ("/api/v1/namespaces", "namespaces"),
        ("/api/v1/namespaces/shop", "namespaces"),
        ("/api/v1/namespaces/shop/configmaps/cfg", "configmaps"),
        ("/apis/lazarus.io/v1alpha1/namespaces/ns/lazarusrestoretests/t/status", "lazarusrestoretests/status"),
        ("/apis/velero.io/v1/namespaces/velero/restores", "restores"),
        ("/apis/lazarus.io/v1alpha1/lazarusrestoretests?watch=true", "lazarusrestoretests"),
    ],
)
def test_metrics_name_the_resource_never_the_object(path: str, resource: str) -> None:
    from lazarus.kube.client import resource_of

    assert resource_of(path) == resource


def test_parity_counts_what_should_come_back_and_what_did() -> None:
    from lazarus.lifecycle import parity
    from lazarus.velero.backup_contents import backup_contents_from_map

    contents = backup_contents_from_map(
        {
            "v1/Namespace": ["shop", "other"],
            "v1/ConfigMap": ["shop/cfg", "shop/kube-root-ca.crt", "other/x"],
            "apps/v1/Deployment": ["shop/web"],
            "networking.k8s.io/v1/Ingress": ["shop/www"],
            "v1/Event": ["shop/e1"],
            "fixtures.lazarus.io/v1/Widget": ["shop/w1"],
            "v1/PersistentVolume": ["pv-1"],
        }
    )
    expected = parity.expected_counts(contents, ["shop"])
    # Ingress is excluded for safety, Events Velero never restores, kube-root-ca.crt exists in every
    # sandbox already, "other" is not restored, PVs are cluster-scoped.
    assert expected == {"ConfigMap": 1, "apps/Deployment": 1, "fixtures.lazarus.io/Widget": 1}
    restored = parity.restored_counts(
        {
            "v1/ConfigMap": ["sbx/cfg(created)", "elsewhere/y(created)"],
            "apps/v1/Deployment": ["sbx/web(created)"],
            "v1/Secret": ["sbx/s(failed)"],
        },
        ["sbx"],
    )
    assert restored == {"ConfigMap": 1, "apps/Deployment": 1}
    assert parity.missing(expected, restored) == {"fixtures.lazarus.io/Widget": 1}


def test_created_cluster_objects_are_the_restored_list_s_created_entries_without_namespace() -> None:
    restored = {
        "rbac.authorization.k8s.io/v1/ClusterRole": ["lost(created)", "kept(skipped)", "broken(failed)"],
        "v1/Namespace": ["lazarus-sbx-1(created)"],
        "v1/PersistentVolume": ["pv-1(created)"],
        "apps/v1/Deployment": ["lazarus-sbx-1/shop(created)"],
    }
    assert created_cluster_objects(restored) == [
        ClusterObject("rbac.authorization.k8s.io/v1", "ClusterRole", "lost"),
        ClusterObject("v1", "PersistentVolume", "pv-1"),
    ]

