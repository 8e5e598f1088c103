"""What a Velero backup holds, from its ``BackupResourceList`` artefact.

Format (Velero v1.17, verified in the source): the backup controller uploads
``encode.ToJSONGzip(backup.BackupResourceList())`` (``pkg/controller/backup_controller.go``), where
``BackupResourceList`` is ``backedUpItemsMap.ResourceMap()`` (``pkg/backup/backed_up_items_map.go``):
a JSON object mapping ``<apiVersion>/<Kind>`` (``resourceKey`` in ``pkg/backup/item_backupper.go``:
``gvk.GroupVersion().String() + "/" + gvk.Kind``) to the sorted list of items of that kind, each
``<namespace>/<name>`` for a namespaced item and ``<name>`` for a cluster-scoped one::

    {"apps/v1/Deployment": ["shop/web"], "v1/Namespace": ["shop"], "v1/PersistentVolume": ["pv-1"]}

Core-group kinds have a two-part key (``v1/Pod``), others three parts (``apps/v1/Deployment``);
group names contain dots but never slashes, and object names never contain a slash, so the split
is unambiguous.

Contract: ``parse_backup_resource_list`` is pure and raises ``ArtefactFormatError`` (a
``DownloadError``) on anything that is not in that shape, so a caller handles "cannot determine
the backup's contents" — which the safety rules turn into an unsafe-restore failure — in one place.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

from lazarus.kube.client import Rest
from lazarus.velero.downloads import ArtefactFormatError, TargetKind, download

__all__ = [
    "NAMESPACE_KIND",
    "BackupContents",
    "GroupVersionKind",
    "backup_resource_list",
    "parse_backup_resource_list",
    "parse_kind_key",
]

NAMESPACE_KIND = "v1/Namespace"
"""The resource-list key of Namespace objects."""


class GroupVersionKind(NamedTuple):
    """A resource-list key split up; ``group`` is ``""`` for the core group."""

    group: str
    version: str
    kind: str

    @property
    def api_version(self) -> str:
        """``v1`` for core, ``<group>/<version>`` otherwise."""
        return f"{self.group}/{self.version}" if self.group else self.version


def parse_kind_key(key: str) -> GroupVersionKind:
    """Split ``apps/v1/Deployment`` or ``v1/Pod``; ``ValueError`` on any other shape."""
    parts = key.split("/")
    if len(parts) == 2 and all(parts):
        return GroupVersionKind("", parts[0], parts[1])
    if len(parts) == 3 and all(parts):
        return GroupVersionKind(parts[0], parts[1], parts[2])
    raise ValueError(f"not a <group>/<version>/<Kind> or <version>/<Kind> key: {key!r}")


@dataclass(frozen=True)
class BackupContents:
    """The items of one backup, by kind. Read-only.

    ``items`` maps each resource-list key (``apps/v1/Deployment``) to its entries exactly as Velero
    wrote them (``namespace/name`` or, cluster-scoped, ``name``), sorted.
    """

    items: Mapping[str, tuple[str, ...]]
    """Every item, by kind key."""
    namespaces: frozenset[str]
    """Namespaces that namespaced items live in, plus every backed-up Namespace object."""
    cluster_scoped: Mapping[str, tuple[str, ...]]
    """Cluster-scoped items by kind key (PersistentVolumes, CRDs, ClusterRoles, ...), *excluding*
    Namespace objects: those are in ``namespaces``, and a restore maps them to sandboxes rather
    than restoring them as cluster objects."""
    counts: Mapping[str, int]
    """Number of items per kind key."""

    @property
    def total(self) -> int:
        """Number of items in the backup."""
        return sum(self.counts.values())

    def kinds(self) -> list[GroupVersionKind]:
        """Every kind in the backup, sorted by key."""
        return [parse_kind_key(key) for key in sorted(self.items)]


def parse_backup_resource_list(data: bytes | str, backup_name: str = "") -> BackupContents:
    """Parse the (decompressed) ``BackupResourceList`` JSON; ``ArtefactFormatError`` if malformed."""
    try:
        raw = json.loads(data)
    except ValueError as exc:
        raise _format_error(backup_name, f"not valid JSON: {exc}") from exc
    return backup_contents_from_map(raw, backup_name)


def backup_contents_from_map(raw: Any, backup_name: str = "") -> BackupContents:
    """Build ``BackupContents`` from the decoded resource-list map (see the module docstring)."""
    if raw is None:
        raw = {}  # Go encodes a nil map as null: a backup with nothing in it
    if not isinstance(raw, dict):
        raise _format_error(backup_name, f"expected a JSON object, got {type(raw).__name__}")
    items: dict[str, tuple[str, ...]] = {}
    cluster_scoped: dict[str, tuple[str, ...]] = {}
    namespaces: set[str] = set()
    for key, entries in raw.items():
        try:
            parse_kind_key(key)
        except ValueError as exc:
            raise _format_error(backup_name, str(exc)) from exc
        if not isinstance(entries, list) or not all(isinstance(e, str) and e for e in entries):
            raise _format_error(backup_name, f"items of {key} are not a list of names")
        for entry in entries:
            if entry.count("/") > 1 or entry.startswith("/") or entry.endswith("/"):
                raise _format_error(backup_name, f"item {entry!r} of {key} is not <namespace>/<name> or <name>")
        items[key] = tuple(sorted(entries))
        namespaces.update(entry.split("/", 1)[0] for entry in entries if "/" in entry)
        if key == NAMESPACE_KIND:
            namespaces.update(entries)
            continue
        cluster = tuple(sorted(entry for entry in entries if "/" not in entry))
        if cluster:
            cluster_scoped[key] = cluster
    return BackupContents(
        items=MappingProxyType(items),
        namespaces=frozenset(namespaces),
        cluster_scoped=MappingProxyType(cluster_scoped),
        counts=MappingProxyType({key: len(entries) for key, entries in items.items()}),
    )


def backup_resource_list(rest: Rest, backup_name: str, velero_namespace: str, **options: Any) -> BackupContents:
    """Download and parse the resource list of backup ``backup_name``.

    ``options`` go to ``downloads.download`` (timeouts, size limit). Raises ``DownloadError``
    (including ``ArtefactFormatError``); a 404 (``exc.not_found``) means the backup has no
    resource list, e.g. it failed before uploading one.
    """
    data = download(rest, TargetKind.BACKUP_RESOURCE_LIST, backup_name, velero_namespace, **options)
    return parse_backup_resource_list(data, backup_name)


def _format_error(backup_name: str, reason: str) -> ArtefactFormatError:
    return ArtefactFormatError(TargetKind.BACKUP_RESOURCE_LIST, backup_name, f"unexpected format: {reason}")
