"""Build the Velero ``Restore`` of a restore test: pure functions, failing closed.

The operator creates the object; this module only decides what it says. Every decision follows
the sandbox safety rules of ARCHITECTURE.md:

- ``includedNamespaces`` is exactly the set of source namespaces, and ``namespaceMapping`` maps
  every one of them to a sandbox namespace. A namespace without a mapping, a wildcard, a sandbox
  that is itself a source namespace (restoring A→B and B→C writes into production B), or a
  sandbox that is a system or the Velero namespace raises ``UnsafeRestoreError``: Velero restores
  an unmapped namespace into the namespace of the same name, i.e. into production.
- ``includeClusterResources`` is ``false`` (explicitly: Velero's ``null`` means "auto", which
  still restores some cluster-scoped objects) unless the test explicitly allows it.
- Ingresses and Gateway API objects are always excluded (a restored Ingress or route can capture
  production traffic), plus well-known third-party routing resources; the test's own exclusions
  are added, never the other way round.
- Side effects are neutralised at restore time by the resource modifiers named in
  ``resourceModifier`` (``lazarus.velero.resource_modifiers``).
- ``existingResourcePolicy`` is ``none`` and ``preserveNodePorts`` is ``false`` — see
  ``restore_safety`` for those and for the persistent-volume decision.

Velero facts relied on (v1.17, verified in the source): ``pkg/apis/velero/v1/restore_types.go``
for the field names; ``validateAndComplete`` in ``pkg/controller/restore_controller.go`` rejects
(``FailedValidation``) an excluded resource that is also listed literally as included, ``*``
among excludes, and ``labelSelector`` together with ``orLabelSelectors``; excluded resources
that the cluster does not serve are kept literally and simply match nothing
(``collections.GetResourceIncludesExcludes``), so excluding Gateway API kinds is harmless where
Gateway API is not installed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "EXISTING_RESOURCE_POLICY",
    "FORCED_EXCLUDED_RESOURCES",
    "PROTECTED_NAMESPACES",
    "RESTORE_STATUS_NEVER",
    "RestoreSafety",
    "UnsafeRestoreError",
    "restore_body",
    "restore_safety",
]

FORCED_EXCLUDED_RESOURCES: tuple[str, ...] = (
    # Kubernetes Ingress, under both groups it has been served from.
    "ingresses.networking.k8s.io",
    "ingresses.extensions",
    # Gateway API: a Gateway gets an external address; routes attach to production Gateways.
    "gateways.gateway.networking.k8s.io",
    "httproutes.gateway.networking.k8s.io",
    "grpcroutes.gateway.networking.k8s.io",
    "tlsroutes.gateway.networking.k8s.io",
    "tcproutes.gateway.networking.k8s.io",
    "udproutes.gateway.networking.k8s.io",
    # Well-known third-party routing resources that attach to shared (production) gateways.
    "virtualservices.networking.istio.io",
    "gateways.networking.istio.io",
    "ingressroutes.traefik.io",
    "ingressroutes.traefik.containo.us",
    "httpproxies.projectcontour.io",
    "routes.route.openshift.io",
)
"""Resources never restored into a sandbox, whatever the test says (module docstring)."""

RESTORE_STATUS_NEVER: tuple[str, ...] = ("services",)
"""Resources whose status is never restored: a LoadBalancer status on a Service that the modifiers
turned into ClusterIP is rejected by the API server (status.loadBalancer.ingress is forbidden)."""

EXISTING_RESOURCE_POLICY = "none"
"""Velero's ``existingResourcePolicy``: ``none`` leaves an object that already exists untouched
(``update`` would patch it — for a cluster-scoped object that is production)."""

PROTECTED_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})
"""Namespaces that are never a restore target (the Velero namespace is added at build time)."""

_NAMESPACE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


class UnsafeRestoreError(ValueError):
    """The requested restore could write outside the sandbox (or is invalid): it is refused."""


@dataclass(frozen=True)
class RestoreSafety:
    """The cluster-scoped and persistent-volume decisions of one restore, with their reasons."""

    include_cluster_resources: bool
    """Restore cluster-scoped objects at all (only when the test explicitly allows it)."""
    restore_pvs: bool
    """Velero's ``restorePVs``: recreate volumes from their snapshots."""
    existing_resource_policy: str = EXISTING_RESOURCE_POLICY
    preserve_node_ports: bool = False
    """Never keep node ports: the modifiers turn every NodePort/LoadBalancer Service into ClusterIP."""
    reasons: tuple[str, ...] = ()
    """One sentence per decision, for status and events."""


def restore_safety(restore_spec: Mapping[str, Any] | None = None) -> RestoreSafety:
    """Decide cluster-scoped and PV handling for a test's ``spec.restore`` (see ``RestoreSafety``).

    PersistentVolume objects are never restored: a PV object restored without its data still
    points at the production disk (Velero renames it, but keeps its volume source — Velero PR
    #3708 review), and Lazarus does not verify every volume's backup data. So ``persistentvolumes``
    is excluded, and the resource modifiers strip ``spec.volumeName`` from claims (they get new,
    empty volumes instead of binding to production ones).
    """
    spec = restore_spec or {}
    include_cluster = spec.get("includeClusterResources") is True
    restore_pvs = spec.get("restorePVs", True) is not False
    reasons = [
        "existing objects are never overwritten (existingResourcePolicy: none)",
        "node ports are never preserved (Services become ClusterIP)",
    ]
    if not include_cluster:
        reasons.append("cluster-scoped resources are not restored (not allowed by the test)")
    else:
        reasons.append("cluster-scoped resources are restored (allowed by the test); existing ones stay untouched")
    if include_cluster:
        why = "restorePVs is off" if not restore_pvs else "their backup data is not verified"
        reasons.append(
            f"persistent volumes are not restored ({why}): a volume restored without its data would "
            "point at production storage; claims get new, empty volumes"
        )
    else:
        reasons.append("persistent volumes are not restored (cluster-scoped); claims get new, empty volumes")
    return RestoreSafety(
        include_cluster_resources=include_cluster,
        restore_pvs=restore_pvs,
        reasons=tuple(reasons),
    )


def restore_body(
    *,
    name: str,
    namespace: str,
    backup_name: str,
    namespace_mapping: Mapping[str, str],
    resource_modifier_configmap: str,
    restore_spec: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
    source_namespaces: Iterable[str] | None = None,
) -> dict[str, Any]:
    """The ``velero.io/v1`` ``Restore`` ``namespace/name`` (``namespace``: the Velero namespace).

    ``namespace_mapping`` maps every source namespace to its sandbox; ``source_namespaces``
    (default: the mapping's keys) is what is restored and must be exactly the mapping's keys.
    ``restore_spec`` is the test's ``spec.restore``: ``includedResources``, ``excludedResources``,
    ``labelSelector`` / ``orLabelSelectors``, ``includeClusterResources``, ``restorePVs`` and
    ``restoreStatus`` (a boolean, or Velero's ``{includedResources, excludedResources}``) are
    used; its namespace fields are not — they are the caller's input to ``namespace_mapping``.
    ``resource_modifier_configmap`` names the ConfigMap built by ``resource_modifiers_configmap``
    ``labels`` tie the Restore to
    its test. Raises ``UnsafeRestoreError`` (see the module docstring).
    """
    spec = restore_spec or {}
    sources = _checked_sources(namespace_mapping, source_namespaces, velero_namespace=namespace)
    safety = restore_safety(spec)

    included = _resource_list(spec.get("includedResources"), "includedResources")
    if "*" in included and len(included) > 1:
        raise UnsafeRestoreError("includedResources must be ['*'] alone or a list of resources")
    user_excluded = _resource_list(spec.get("excludedResources"), "excludedResources")
    if "*" in user_excluded:
        raise UnsafeRestoreError("excludedResources cannot contain '*'")
    forbidden = [r for r in included if _is_forced_excluded(r)]
    if forbidden:
        raise UnsafeRestoreError(
            f"{', '.join(forbidden)} can never be restored into a sandbox (Ingress and Gateway routes "
            "could capture production traffic)"
        )
    excluded = _dedupe([*FORCED_EXCLUDED_RESOURCES, *user_excluded])
    if safety.include_cluster_resources:
        excluded = _dedupe([*excluded, "persistentvolumes"])
        if "persistentvolumes" in included:
            raise UnsafeRestoreError(
                "persistentvolumes are included but cannot be restored safely: " + safety.reasons[-1]
            )

    velero_spec: dict[str, Any] = {
        "backupName": backup_name,
        "includedNamespaces": sources,
        "namespaceMapping": {source: namespace_mapping[source] for source in sources},
        "includeClusterResources": safety.include_cluster_resources,
        "excludedResources": excluded,
        "restorePVs": safety.restore_pvs,
        "preserveNodePorts": safety.preserve_node_ports,
        "existingResourcePolicy": safety.existing_resource_policy,
        "resourceModifier": {"kind": "ConfigMap", "name": resource_modifier_configmap},
    }
    if included:
        velero_spec["includedResources"] = included
    label_selector, or_selectors = spec.get("labelSelector"), spec.get("orLabelSelectors")
    if label_selector and or_selectors:
        raise UnsafeRestoreError("labelSelector and orLabelSelectors cannot both be set (Velero allows only one)")
    if label_selector:
        velero_spec["labelSelector"] = dict(label_selector)
    if or_selectors:
        velero_spec["orLabelSelectors"] = [dict(s) for s in or_selectors]
    restore_status = _restore_status(spec.get("restoreStatus"))
    if restore_status is not None:
        velero_spec["restoreStatus"] = restore_status

    return {
        "apiVersion": "velero.io/v1",
        "kind": "Restore",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})},
        "spec": velero_spec,
    }


def _checked_sources(
    mapping: Mapping[str, str], source_namespaces: Iterable[str] | None, *, velero_namespace: str
) -> list[str]:
    """The sorted source namespaces, after every fail-closed check on them and their mapping."""
    sources = sorted(set(mapping if source_namespaces is None else source_namespaces))
    if not sources:
        raise UnsafeRestoreError("no namespace to restore: a restore of every namespace is never allowed")
    for source in sources:
        if not _NAMESPACE_NAME.fullmatch(source):
            raise UnsafeRestoreError(f"{source!r} is not a namespace name (wildcards are never restored)")
    unmapped = [s for s in sources if not mapping.get(s)]
    if unmapped:
        raise UnsafeRestoreError(
            f"namespaces {', '.join(unmapped)} have no sandbox mapping: Velero would restore them into production"
        )
    extra = sorted(set(mapping) - set(sources))
    if extra:
        raise UnsafeRestoreError(f"namespace mapping names namespaces that are not restored: {', '.join(extra)}")
    targets = [mapping[s] for s in sources]
    for target in targets:
        if not _NAMESPACE_NAME.fullmatch(target):
            raise UnsafeRestoreError(f"sandbox {target!r} is not a namespace name")
    if len(set(targets)) != len(targets):
        raise UnsafeRestoreError("two source namespaces map to the same sandbox")
    overlap = sorted(set(targets) & set(sources))
    if overlap:
        raise UnsafeRestoreError(f"sandboxes {', '.join(overlap)} are also source namespaces of the restore")
    protected = sorted(set(targets) & (PROTECTED_NAMESPACES | {velero_namespace}))
    if protected:
        raise UnsafeRestoreError(f"{', '.join(protected)} can never be a sandbox")
    return sources


def _resource_list(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise UnsafeRestoreError(f"{field} must be a list of resource names")
    return _dedupe(value)


def _is_forced_excluded(resource: str) -> bool:
    """Whether an include names a forced exclusion: fully (``ingresses.networking.k8s.io``), by
    resource name alone (``ingresses``), or in the singular (``ingress``, ``ingress.extensions``)."""
    name, _, group = resource.lower().partition(".")
    for forced in FORCED_EXCLUDED_RESOURCES:
        plural, _, forced_group = forced.partition(".")
        names = {plural, plural[:-1], plural[:-2], plural[:-3] + "y"}
        if name in names and group in ("", forced_group):
            return True
    return False


def _restore_status(value: Any) -> dict[str, Any] | None:
    """Velero's ``restoreStatus`` for the test's boolean or object; never for ``RESTORE_STATUS_NEVER``."""
    if value is None or value is False:
        return None
    if value is True:
        return {"includedResources": ["*"], "excludedResources": list(RESTORE_STATUS_NEVER)}
    if isinstance(value, Mapping):
        included = _resource_list(value.get("includedResources"), "restoreStatus.includedResources") or ["*"]
        excluded = _resource_list(value.get("excludedResources"), "restoreStatus.excludedResources")
        included = [r for r in included if r not in RESTORE_STATUS_NEVER]
        if not included:
            return None  # only never-restored resources were asked for
        return {"includedResources": included, "excludedResources": _dedupe([*excluded, *RESTORE_STATUS_NEVER])}
    raise UnsafeRestoreError("restoreStatus must be a boolean or {includedResources, excludedResources}")


def _dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
