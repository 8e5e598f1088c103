"""Sandbox namespaces: their deterministic names, labels and network isolation.

Every namespace a restore can touch is mapped to a sandbox namespace that Lazarus creates and
labels before the Velero Restore exists, and that carries a NetworkPolicy from the start, so no
restored Pod ever runs un-isolated:

- ingress only from the test's own sandbox namespaces and from the operator's namespace (the
  operator runs the health checks);
- egress only to the test's own sandbox namespaces and to DNS in ``kube-system``.

Names are derived from the test's UID, so a crash or a new leader recomputes the same names and
never creates a second sandbox. Each sandbox carries a proof that Lazarus made it for its test
(``sandbox_proof``: an HMAC, under a key only the operator reads, of the test's UID and the
namespace's name): labels can be set by anyone who may patch namespaces, the proof cannot.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

SANDBOX_LABEL = "lazarus.io/sandbox"
TEST_UID_LABEL = "lazarus.io/test-uid"
TEST_NAME_LABEL = "lazarus.io/test-name"
TEST_NAMESPACE_LABEL = "lazarus.io/test-namespace"
SOURCE_NAMESPACE_ANNOTATION = "lazarus.io/source-namespace"
BACKUP_ANNOTATION = "lazarus.io/backup"
PROOF_ANNOTATION = "lazarus.io/sandbox-proof"
NETWORK_POLICY_NAME = "lazarus-sandbox-isolation"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"

_MAX_NAME = 63
_HASH_LEN = 6


def _short_hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:_HASH_LEN]


def _label_safe(value: str, limit: int) -> str:
    """Trim to ``limit`` characters that may end a DNS label."""
    return re.sub(r"[^a-z0-9-]", "-", value.lower())[:limit].strip("-")


def sandbox_name(prefix: str, test_uid: str, source_namespace: str) -> str:
    """``<prefix><source>-<hash>``: readable, unique per (test, source), at most 63 characters."""
    room = _MAX_NAME - len(prefix) - _HASH_LEN - 1
    return f"{prefix}{_label_safe(source_namespace, room)}-{_short_hash(test_uid, source_namespace)}"


def namespace_mapping(
    prefix: str, test_uid: str, source_namespaces: list[str], explicit: str | None = None
) -> dict[str, str]:
    """Source namespace → sandbox namespace, for every source namespace.

    ``explicit`` (the spec's ``restoreNamespace``) names the sandbox of a single-namespace backup;
    with several namespaces it is ambiguous, and the caller must reject the test.
    """
    if explicit:
        if len(source_namespaces) != 1:
            raise ValueError(
                f"restoreNamespace {explicit!r} names one sandbox, but the backup holds "
                f"{len(source_namespaces)} namespaces: {', '.join(sorted(source_namespaces))}"
            )
        return {source_namespaces[0]: explicit}
    return {ns: sandbox_name(prefix, test_uid, ns) for ns in sorted(source_namespaces)}


def owner_labels(test: dict[str, Any]) -> dict[str, str]:
    """Labels that tie an object to its test (label values: names are at most 63 characters)."""
    metadata = test["metadata"]
    return {
        TEST_UID_LABEL: metadata["uid"],
        TEST_NAME_LABEL: _label_safe(metadata["name"], 63),
        TEST_NAMESPACE_LABEL: metadata["namespace"],
    }


def sandbox_proof(key: bytes, test_uid: str, name: str) -> str:
    """The proof that the namespace ``name`` is the sandbox Lazarus made for the test ``test_uid``."""
    return hmac.new(key, f"{test_uid}\0{name}".encode(), hashlib.sha256).hexdigest()


def proven_sandbox(namespace: Mapping[str, Any], test_uid: str, key: bytes) -> bool:
    """Whether ``namespace`` carries the UID label of the test ``test_uid`` and a valid proof for its name.

    Lazarus adopts an unrecorded namespace, and deletes a namespace whose test is gone, only if
    this holds: a label alone (which anyone may set, by mistake or not) is never enough.
    """
    metadata = namespace.get("metadata") or {}
    labelled = (metadata.get("labels") or {}).get(TEST_UID_LABEL) == test_uid
    given = str((metadata.get("annotations") or {}).get(PROOF_ANNOTATION, ""))
    return labelled and hmac.compare_digest(given, sandbox_proof(key, test_uid, metadata.get("name", "")))


def namespace_body(
    test: dict[str, Any], name: str, source_namespace: str, extra_labels: dict[str, str], proof: str
) -> dict[str, Any]:
    """The sandbox Namespace object; ``proof``: its ``sandbox_proof``."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {**extra_labels, **owner_labels(test), SANDBOX_LABEL: "true"},
            "annotations": {
                SOURCE_NAMESPACE_ANNOTATION: source_namespace,
                BACKUP_ANNOTATION: test["spec"]["backupName"],
                PROOF_ANNOTATION: proof,
            },
        },
    }


def network_policy_body(test: dict[str, Any], namespace: str, operator_namespace: str) -> dict[str, Any]:
    """The NetworkPolicy that isolates one sandbox namespace (see the module docstring)."""
    same_test = {"namespaceSelector": {"matchLabels": {TEST_UID_LABEL: test["metadata"]["uid"]}}}
    operator = {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: operator_namespace}}}
    dns = {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: "kube-system"}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": NETWORK_POLICY_NAME, "namespace": namespace, "labels": owner_labels(test)},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [same_test, operator]}],
            "egress": [
                {"to": [same_test]},
                {"to": [dns], "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
            ],
        },
    }

