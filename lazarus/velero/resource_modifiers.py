"""Velero resource-modifier rules that neutralise a restore's side effects, as a ConfigMap.

The sandbox safety rules (ARCHITECTURE.md) say side effects are neutralised *at restore time*, so
that no restored object ever exists, even for a moment, in a state that could reach production.
Velero's resource modifiers are the native tool: the Restore names a ConfigMap in the Velero
namespace (``spec.resourceModifier: {kind: ConfigMap, name: ...}``) whose single data entry holds
the rules.

How Velero v1.17 applies them (verified in ``internal/resourcemodifiers/*.go`` and
``pkg/restore/restore.go``) — every rule below is shaped by these facts:

- Format: ``version: v1`` and ``resourceModifierRules``; each rule has ``conditions``
  (``groupResource``, ``namespaces``, ``resourceNameRegex``, ``labelSelector``, ``matches``) and
  exactly one of ``patches`` (JSON patch), ``mergePatches`` (JSON merge patch, RFC 7386) or
  ``strategicPatches``. The YAML is decoded strictly (an unknown field fails the restore's
  validation: ``FailedValidation``, so a mistake here fails closed, nothing is restored).
- ``groupResource`` is a glob with ``.`` as separator: ``*`` matches only core resources
  (``services``), ``**`` matches every resource (``deployments.apps`` too).
- ``namespaces`` is compared with the item's namespace *in the backup*: modifiers run after the
  restore item actions but before the item is moved to its mapped namespace, so the conditions
  name the SOURCE namespaces. Cluster-scoped items ignore the ``namespaces`` condition.
- ``matches`` are JSON-patch ``test`` operations on the original item; a failing test or a missing
  path means "no match", never an error.
- A patch that fails (e.g. JSON patch ``remove`` of a path that is not there) is recorded as a
  restore *error* and the item is then created UNMODIFIED. So every patch here is one that cannot
  fail: merge patches (setting a key to ``null`` deletes it, and deleting an absent key is a
  no-op), and JSON patches only on paths that a ``matches`` condition proved exist.
- Velero's own service restore action (``pkg/restore/actions/service_action.go``) runs before the
  modifiers and clears ``clusterIP`` and the node ports it considers auto-assigned; node ports
  that were set explicitly (in ``last-applied-configuration`` or owned in ``managedFields``), and
  all of them with ``preserveNodePorts``, are kept — and a ClusterIP Service with a node port is
  rejected by the API server. Hence the per-port rules below.

The rules, in order (``modifier_rules`` is the single place that defines them):

1. ``lazarus-label-restored`` — every restored object (``**``) gets ``lazarus.io/sandbox: "true"``,
   so anything a restore created can be found and attributed, cluster-scoped objects included.
2. ``lazarus-suspend-cronjobs`` — every CronJob gets ``spec.suspend: true``: a restored CronJob
   would otherwise start Jobs on its schedule (sending mail, calling APIs, writing to databases).
3. ``lazarus-services-no-external-exposure`` — every Service loses the fields that expose it
   outside the cluster or only make sense for external types: ``externalIPs`` (kube-proxy on every
   node would capture traffic for those IPs — a ClusterIP Service can carry them too),
   ``externalTrafficPolicy``, ``healthCheckNodePort``, ``allocateLoadBalancerNodePorts``,
   ``loadBalancerClass``, ``loadBalancerIP``, ``loadBalancerSourceRanges``. For a plain ClusterIP
   Service none of these is set, and the merge patch changes nothing.
4. ``lazarus-loadbalancer-to-clusterip`` / ``lazarus-nodeport-to-clusterip`` — a Service whose
   ``spec.type`` is ``LoadBalancer`` / ``NodePort`` becomes ``ClusterIP`` (a restored
   LoadBalancer would get a public address from the cloud; a NodePort opens a port on every node),
   and loses the ``service.beta.kubernetes.io/load-balancer-source-ranges`` annotation, which the
   API server forbids on non-LoadBalancer Services.
5. ``lazarus-port-<i>-<protocol>-no-nodeport`` — for each port index ``i`` below
   ``MAX_SERVICE_PORTS`` and each protocol, a Service whose port ``i`` exists (matched on its
   ``protocol``, which the API server always sets) gets ``nodePort`` added-then-removed: the JSON
   patch cannot fail on an existing port, and leaves no node port behind whether or not Velero
   had already cleared it. A Service with more ports than that and an explicit node port beyond
   them is rejected by the API server (a restore error naming it): it fails closed.
6. ``lazarus-pvcs-detach-from-volumes`` — every PersistentVolumeClaim loses ``spec.volumeName``.
   PV objects are never restored (``restore_spec.restore_safety``); a claim that still names the
   production PV would bind to it if that PV is ``Available``; without the name it gets a new,
   empty volume from its StorageClass (Velero does the same itself for volumes restored from
   file-system backups).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

__all__ = [
    "CONFIGMAP_DATA_KEY",
    "MAX_SERVICE_PORTS",
    "RESOURCE_MODIFIERS_VERSION",
    "SANDBOX_LABEL",
    "SERVICE_PROTOCOLS",
    "ModifierRule",
    "modifier_document",
    "modifier_rules",
    "render_rules",
    "resource_modifiers_configmap",
]

RESOURCE_MODIFIERS_VERSION = "v1"
"""The only version Velero v1.17 accepts (``ResourceModifierSupportedVersionV1``)."""

CONFIGMAP_DATA_KEY = "lazarus-resource-modifiers.yaml"
"""The one data key of the ConfigMap (Velero requires exactly one entry; its name is free)."""

SANDBOX_LABEL = "lazarus.io/sandbox"
"""Label put on every restored object (value ``"true"``); the same key as ``lazarus.sandbox.SANDBOX_LABEL``."""

# Ports per Service covered by the node-port rules. Each index costs one rule per protocol, and
# Velero evaluates every rule for every restored item, so this stays small; Services with more
# ports are rare, and an uncovered explicit node port fails closed (see rule 5).
MAX_SERVICE_PORTS = 16
SERVICE_PROTOCOLS = ("TCP", "UDP", "SCTP")
"""Every value the API server accepts for ``ServicePort.protocol`` (it defaults to TCP)."""

_SERVICES = "services"
_EXTERNAL_SERVICE_FIELDS = (
    "externalIPs",
    "externalTrafficPolicy",
    "healthCheckNodePort",
    "allocateLoadBalancerNodePorts",
    "loadBalancerClass",
    "loadBalancerIP",
    "loadBalancerSourceRanges",
)
_SOURCE_RANGES_ANNOTATION = "service.beta.kubernetes.io/load-balancer-source-ranges"
_NAMESPACE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class ModifierRule:
    """One Velero resource-modifier rule and the name Lazarus gives it (Velero's rules are unnamed)."""

    name: str
    body: dict[str, Any]
    """The rule as Velero reads it: ``conditions`` plus one of ``patches`` / ``mergePatches``."""


def _merge_patch(patch: dict[str, Any]) -> dict[str, Any]:
    """A ``mergePatches`` list with one patch (Velero reads ``patchData`` as YAML; JSON is YAML)."""
    return {"mergePatches": [{"patchData": json.dumps(patch, sort_keys=True, separators=(",", ":"))}]}


def _conditions(
    group_resource: str, namespaces: list[str], matches: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    conditions: dict[str, Any] = {"groupResource": group_resource, "namespaces": namespaces}
    if matches:
        conditions["matches"] = matches
    return {"conditions": conditions}


def modifier_rules(source_namespaces: Iterable[str]) -> list[ModifierRule]:
    """The rules for a restore of ``source_namespaces``, in order (see the module docstring).

    Deterministic: the same inputs give the same rules. Raises ``ValueError`` for an empty
    namespace set or a name that is not a plain namespace name (no wildcards).
    """
    namespaces = sorted(set(source_namespaces))
    if not namespaces:
        raise ValueError("resource modifiers need at least one source namespace")
    for namespace in namespaces:
        if not _NAMESPACE_NAME.fullmatch(namespace):
            raise ValueError(f"not a namespace name: {namespace!r}")

    rules = [
        ModifierRule(
            "lazarus-label-restored",
            {**_conditions("**", namespaces), **_merge_patch({"metadata": {"labels": {SANDBOX_LABEL: "true"}}})},
        ),
        ModifierRule(
            "lazarus-suspend-cronjobs",
            {**_conditions("cronjobs.batch", namespaces), **_merge_patch({"spec": {"suspend": True}})},
        ),
        ModifierRule(
            "lazarus-services-no-external-exposure",
            {**_conditions(_SERVICES, namespaces), **_merge_patch({"spec": dict.fromkeys(_EXTERNAL_SERVICE_FIELDS)})},
        ),
    ]
    for service_type in ("LoadBalancer", "NodePort"):
        matches = [{"path": "/spec/type", "value": service_type}]
        patch = {"spec": {"type": "ClusterIP"}, "metadata": {"annotations": {_SOURCE_RANGES_ANNOTATION: None}}}
        rules.append(
            ModifierRule(
                f"lazarus-{service_type.lower()}-to-clusterip",
                {**_conditions(_SERVICES, namespaces, matches), **_merge_patch(patch)},
            )
        )
    for index in range(MAX_SERVICE_PORTS):
        for protocol in SERVICE_PROTOCOLS:
            matches = [{"path": f"/spec/ports/{index}/protocol", "value": protocol}]
            # Velero turns "0" into the JSON number 0 (JSONPatch.ToString); ``add`` on an object
            # member creates or replaces it, so ``remove`` then always finds it.
            patches = [
                {"operation": "add", "path": f"/spec/ports/{index}/nodePort", "value": "0"},
                {"operation": "remove", "path": f"/spec/ports/{index}/nodePort"},
            ]
            rules.append(
                ModifierRule(
                    f"lazarus-port-{index}-{protocol.lower()}-no-nodeport",
                    {**_conditions(_SERVICES, namespaces, matches), "patches": patches},
                )
            )
    rules.append(
        ModifierRule(
            "lazarus-pvcs-detach-from-volumes",
            {**_conditions("persistentvolumeclaims", namespaces), **_merge_patch({"spec": {"volumeName": None}})},
        )
    )
    return rules


def modifier_document(rules: Iterable[ModifierRule]) -> dict[str, Any]:
    """The document Velero decodes: ``{"version": "v1", "resourceModifierRules": [...]}``."""
    return {"version": RESOURCE_MODIFIERS_VERSION, "resourceModifierRules": [rule.body for rule in rules]}


def render_rules(rules: Iterable[ModifierRule]) -> str:
    """The YAML Velero reads, each rule preceded by a comment with its name, in a stable order."""
    lines = [
        "# Generated by Lazarus (lazarus/velero/resource_modifiers.py): neutralises the side effects",
        "# of a restore into sandbox namespaces. Recreated for every restore test; do not edit.",
        f"version: {RESOURCE_MODIFIERS_VERSION}",
        "resourceModifierRules:",
    ]
    for rule in rules:
        lines.append(f"# {rule.name}")
        dumped = yaml.safe_dump([rule.body], sort_keys=False, default_flow_style=False, width=1000)
        lines.extend(dumped.rstrip("\n").split("\n"))
    return "\n".join(lines) + "\n"


def resource_modifiers_configmap(
    name: str,
    namespace: str,
    source_namespaces: Iterable[str],
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ConfigMap ``namespace/name`` (``namespace`` = the Velero namespace) holding the rules.

    ``name`` is chosen by the caller (deterministic per test, e.g. the Restore's name);
    ``labels`` tie it to its test (e.g. ``lazarus.sandbox.owner_labels(test)``) so cleanup finds
    it.
    """
    rules = modifier_rules(source_namespaces)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})},
        "data": {CONFIGMAP_DATA_KEY: render_rules(rules)},
    }
