"""API resources: a descriptor of one, and the catalogue of those Lazarus reads and writes.

``Resource`` names one API resource (group, version, plural) and says whether it is namespaced
and what its kind is; it is frozen and hashable. Paths follow the API server's layout: core types
(group ``""``) live under ``/api/v1``, every other group under ``/apis/<group>/<version>``. It sits
below both the informers (which list and watch them) and the domain (which reads and writes them).
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
