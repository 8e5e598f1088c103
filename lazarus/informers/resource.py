"""What to list and watch: a resource descriptor and a query on it.

``Resource`` names one API resource (group, version, plural) and says whether it is namespaced
and what its kind is. ``Query`` is a resource plus the scope of one list/watch: one namespace or
the whole cluster, and optional label and field selectors. Both are frozen and hashable: a
``Query`` is also the key under which the informer factory shares informers.

Paths follow the API server's layout: core types (group ``""``) live under ``/api/v1``, every
other group under ``/apis/<group>/<version>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

__all__ = [
    "BACKUPS",
    "BACKUP_TEST_POLICIES",
    "CONFIG_MAPS",
    "DAEMON_SETS",
    "DEPLOYMENTS",
    "DOWNLOAD_REQUESTS",
    "LAZARUS_RESTORE_TESTS",
    "NAMESPACES",
    "RESTORES",
    "SCHEDULES",
    "STATEFUL_SETS",
    "Query",
    "Resource",
]


@dataclass(frozen=True)
class Resource:
    """One API resource, e.g. ``Resource("velero.io", "v1", "backups", True, "Backup")``."""

    group: str
    """API group; ``""`` for the core group (ConfigMaps, Namespaces, ...)."""
    version: str
    """API version within the group, e.g. ``v1``."""
    plural: str
    """The resource name used in URLs, e.g. ``backups``."""
    namespaced: bool
    """Whether objects live in namespaces (``False`` for cluster-scoped kinds)."""
    kind: str
    """The object kind, e.g. ``Backup``; filled into listed objects, which arrive without it."""

    @property
    def api_version(self) -> str:
        """``apiVersion`` of the objects: ``v1`` for core, ``<group>/<version>`` otherwise."""
        return f"{self.group}/{self.version}" if self.group else self.version

    def collection_path(self, namespace: str | None = None) -> str:
        """URL path of the collection, in ``namespace`` or (``None``) across all namespaces."""
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace is None:
            return f"{prefix}/{self.plural}"
        if not self.namespaced:
            raise ValueError(f"{self.plural} is cluster-scoped: it cannot be listed in namespace {namespace!r}")
        return f"{prefix}/namespaces/{quote(namespace, safe='')}/{self.plural}"

    def __str__(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


@dataclass(frozen=True)
class Query:
    """A resource and the scope of one list/watch on it."""

    resource: Resource
    namespace: str | None = None
    """Only this namespace; ``None``: every namespace (or a cluster-scoped resource)."""
    label_selector: str | None = None
    """A label selector in the API's string form, e.g. ``app.kubernetes.io/managed-by=lazarus``."""
    field_selector: str | None = None
    """A field selector in the API's string form, e.g. ``metadata.name=default``."""

    def __post_init__(self) -> None:
        # Fail at construction, not on the first request from a background thread.
        self.resource.collection_path(self.namespace)

    @property
    def path(self) -> str:
        """URL path of the collection this query lists and watches."""
        return self.resource.collection_path(self.namespace)

    def selector_params(self) -> list[tuple[str, str]]:
        """The selector query parameters, shared by list and watch requests."""
        params: list[tuple[str, str]] = []
        if self.label_selector:
            params.append(("labelSelector", self.label_selector))
        if self.field_selector:
            params.append(("fieldSelector", self.field_selector))
        return params

    def __str__(self) -> str:
        parts = [str(self.resource), self.namespace or "*"]
        parts += [f"{name}={value}" for name, value in self.selector_params()]
        return " ".join(parts)


# The resources Lazarus watches (see the architecture notes): core types for sandboxes, Velero's
# objects, and our own CRDs.
CONFIG_MAPS = Resource("", "v1", "configmaps", True, "ConfigMap")
NAMESPACES = Resource("", "v1", "namespaces", False, "Namespace")
BACKUPS = Resource("velero.io", "v1", "backups", True, "Backup")
RESTORES = Resource("velero.io", "v1", "restores", True, "Restore")
SCHEDULES = Resource("velero.io", "v1", "schedules", True, "Schedule")
DOWNLOAD_REQUESTS = Resource("velero.io", "v1", "downloadrequests", True, "DownloadRequest")
LAZARUS_RESTORE_TESTS = Resource("lazarus.io", "v1alpha1", "lazarusrestoretests", True, "LazarusRestoreTest")
BACKUP_TEST_POLICIES = Resource("lazarus.io", "v1alpha1", "backuptestpolicies", True, "BackupTestPolicy")
# Restored workloads whose readiness a test waits for.
DEPLOYMENTS = Resource("apps", "v1", "deployments", True, "Deployment")
STATEFUL_SETS = Resource("apps", "v1", "statefulsets", True, "StatefulSet")
DAEMON_SETS = Resource("apps", "v1", "daemonsets", True, "DaemonSet")
