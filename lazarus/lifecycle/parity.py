"""Resource parity: did everything the backup holds come back?

Compared per kind (``group/Kind``, version ignored: the restore may use another served version),
counting the backup's items in the restored source namespaces against the items Velero's restored
resource list shows in the sandboxes. Kinds that are not restored on purpose are left out of the
comparison: routing objects Lazarus excludes for safety, and kinds Velero never restores.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from lazarus.velero.backup_contents import BackupContents
from lazarus.velero.restore_spec import FORCED_EXCLUDED_RESOURCES

# Namespaced resources Velero never restores (its restore controller's nonRestorableResources).
NOT_RESTORED_BY_VELERO = (
    "events",
    "events.events.k8s.io",
    "backups.velero.io",
    "restores.velero.io",
    "resticrepositories.velero.io",
    "backuprepositories.velero.io",
)
NAMESPACE_KIND = "Namespace"
# Objects Kubernetes creates in every new namespace, so in every sandbox before the restore: Velero
# skips them as existing and does not list them as restored.
CREATED_IN_EVERY_NAMESPACE = frozenset({("ConfigMap", "kube-root-ca.crt")})
# Restored-list entries end with the action Velero took, e.g. "ns/name(created)".
FAILED_ACTION = "(failed)"


def group_kind(kind_key: str) -> str:
    """``apps/v1/Deployment`` → ``apps/Deployment``; ``v1/ConfigMap`` → ``ConfigMap``."""
    parts = kind_key.split("/")
    return f"{parts[0]}/{parts[-1]}" if len(parts) == 3 else parts[-1]


def _excluded(kind_key: str, resources: Iterable[str]) -> bool:
    """Whether a kind is one of ``resources`` (``plural.group``, or ``plural`` for core)."""
    parts = kind_key.split("/")
    group, kind = (parts[0], parts[-1]) if len(parts) == 3 else ("", parts[-1])
    for resource in resources:
        plural, _, resource_group = resource.partition(".")
        if resource_group == group and plural.startswith(kind.lower()):
            return True
    return False


def expected_counts(contents: BackupContents, source_namespaces: Iterable[str]) -> dict[str, int]:
    """Per group/Kind, the items a restore of ``source_namespaces`` should bring back."""
    skipped = (*FORCED_EXCLUDED_RESOURCES, *NOT_RESTORED_BY_VELERO)
    sources = set(source_namespaces)
    counts: dict[str, int] = {}
    for kind_key, entries in contents.items.items():
        kind = kind_key.split("/")[-1]
        if kind == NAMESPACE_KIND or _excluded(kind_key, skipped):
            continue
        n = sum(
            1
            for entry in entries
            if "/" in entry
            and entry.split("/", 1)[0] in sources
            and (kind, entry.split("/", 1)[1]) not in CREATED_IN_EVERY_NAMESPACE
        )
        if n:
            key = group_kind(kind_key)
            counts[key] = counts.get(key, 0) + n
    return counts


def restored_counts(restored: Mapping[str, list[str]], sandbox_namespaces: Iterable[str]) -> dict[str, int]:
    """Per group/Kind, the items Velero's restored resource list shows in the sandboxes."""
    sandboxes = set(sandbox_namespaces)
    counts: dict[str, int] = {}
    for kind_key, entries in restored.items():
        n = sum(1 for e in entries if e.split("/", 1)[0] in sandboxes and "/" in e and not e.endswith(FAILED_ACTION))
        if n:
            key = group_kind(kind_key)
            counts[key] = counts.get(key, 0) + n
    return counts


def missing(expected: Mapping[str, int], restored: Mapping[str, int]) -> dict[str, int]:
    """Per group/Kind, how many expected items did not come back."""
    return {kind: n - restored.get(kind, 0) for kind, n in sorted(expected.items()) if n > restored.get(kind, 0)}
