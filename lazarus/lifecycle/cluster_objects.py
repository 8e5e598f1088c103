"""Cleanup of the cluster-scoped objects a restore created (tests with ``includeClusterResources``).

Sandbox namespaces take every namespaced object with them; cluster-scoped objects a restore
created (a ClusterRole, a CRD, ...) live on in the cluster and must be deleted one by one. Which
ones: the entries of the Restore's restored resource list without a namespace whose action is
``(created)`` — objects Velero skipped because they already existed (``existingResourcePolicy:
none``) are production's and never touched. Before deleting, each object is read and deleted only
if Velero's ``velero.io/restore-name`` label still names this Restore (a production object that
took the name after the test is left alone), with its ``resourceVersion`` as a precondition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import structlog

from lazarus.kube.client import ApiError, Rest

log = structlog.get_logger(__name__)

RESTORE_NAME_LABEL = "velero.io/restore-name"
CREATED_ACTION = "(created)"
# Deleted with their sandbox (and Lazarus creates the sandboxes itself).
SKIPPED_KINDS = frozenset({"Namespace"})


@dataclass(frozen=True)
class ClusterObject:
    """One cluster-scoped object: ``api_version`` (``v1``, ``rbac.authorization.k8s.io/v1``)."""

    api_version: str
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name} ({self.api_version})"


def created_cluster_objects(restored: Mapping[str, list[str]]) -> list[ClusterObject]:
    """The cluster-scoped objects a restored resource list says the restore created.

    ``restored`` maps ``group/version/Kind`` (``version/Kind`` for core) to entries
    ``[namespace/]name(action)``.
    """
    found = []
    for kind_key, entries in restored.items():
        api_version, _, kind = kind_key.rpartition("/")
        if kind in SKIPPED_KINDS:
            continue
        for entry in entries:
            if "/" not in entry and entry.endswith(CREATED_ACTION):
                found.append(ClusterObject(api_version, kind, entry[: -len(CREATED_ACTION)]))
    return found


class ClusterObjectDeleter:
    """Deletes restored cluster-scoped objects; remembers the API's resource names per kind."""

    def __init__(self, rest: Rest) -> None:
        self.rest = rest
        self._plurals: dict[tuple[str, str], str | None] = {}

    def delete(self, obj: ClusterObject, restore_name: str) -> bool:
        """Delete ``obj`` if ``restore_name`` created it; False if it was left (the log says why).

        Raises ``ApiError`` for errors worth retrying (anything but 404 and the checks above).
        """
        path = self._path(obj)
        if path is None:
            log.warning("restored cluster-scoped object left: its kind is not served", object=str(obj))
            return False
        try:
            current = self.rest.request("GET", path)
        except ApiError as exc:
            if exc.not_found:
                return True
            raise
        metadata = current.get("metadata") or {}
        if (metadata.get("labels") or {}).get(RESTORE_NAME_LABEL) != restore_name:
            log.warning("cluster-scoped object not deleted: not labelled as created by this restore",
                        object=str(obj), restore=restore_name)  # fmt: skip
            return False
        body = {"propagationPolicy": "Background", "preconditions": {"resourceVersion": metadata["resourceVersion"]}}
        try:
            self.rest.request("DELETE", path, body=body)
        except ApiError as exc:
            if not exc.not_found:
                raise
        return True

    def _path(self, obj: ClusterObject) -> str | None:
        """The object's URL path, from discovery (cached); None if the API does not serve it."""
        key = (obj.api_version, obj.kind)
        if key not in self._plurals:
            try:
                resources = self.rest.request("GET", _base(obj.api_version)).get("resources") or []
            except ApiError as exc:
                if not exc.not_found:
                    raise
                resources = []
            self._plurals[key] = next(
                (
                    r["name"]
                    for r in resources
                    if r.get("kind") == obj.kind and "/" not in r["name"] and not r.get("namespaced")
                ),
                None,
            )
        plural = self._plurals[key]
        if plural is None:
            return None
        return f"{_base(obj.api_version)}/{plural}/{obj.name}"


def _base(api_version: str) -> str:
    """The discovery path of an API version: ``/api/v1`` for core, ``/apis/group/version`` else."""
    return f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
