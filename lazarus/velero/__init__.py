"""Velero, as Lazarus uses it: reading backup artefacts and building safe restores.

One job per module:

- ``downloads``: fetch an artefact (resource list, restore results, logs, ...) through a Velero
  ``DownloadRequest``, waiting with a watch, never polling; ``DownloadError`` on any failure.
- ``backup_contents``: parse a backup's ``BackupResourceList`` into ``BackupContents`` (items per
  kind, namespaces, cluster-scoped items, counts).
- ``restore_results``: parse a restore's ``RestoreResults`` into scope-prefixed error and
  warning messages.
- ``resource_modifiers``: the resource-modifier rules (and their ConfigMap) that neutralise a
  restore's side effects: CronJobs suspended, Services made ClusterIP, restored objects labelled.
- ``restore_spec``: the Velero ``Restore`` body of a test, mapping every namespace to a sandbox
  and refusing anything that could write to production (``UnsafeRestoreError``).

Everything here is plain dicts and pure functions except ``downloads`` and the two helpers that
call it (``backup_contents.backup_resource_list``, ``restore_results.restore_results``; the latter
is not re-exported here, where its name would hide the ``restore_results`` module).
"""

from lazarus.velero.backup_contents import BackupContents, backup_resource_list, parse_backup_resource_list
from lazarus.velero.downloads import ArtefactFormatError, DownloadError, TargetKind, download, download_json
from lazarus.velero.resource_modifiers import modifier_rules, resource_modifiers_configmap
from lazarus.velero.restore_results import RestoreResults, parse_restore_results
from lazarus.velero.restore_spec import RestoreSafety, UnsafeRestoreError, restore_body, restore_safety

__all__ = [
    "ArtefactFormatError",
    "BackupContents",
    "DownloadError",
    "RestoreResults",
    "RestoreSafety",
    "TargetKind",
    "UnsafeRestoreError",
    "backup_resource_list",
    "download",
    "download_json",
    "modifier_rules",
    "parse_backup_resource_list",
    "parse_restore_results",
    "resource_modifiers_configmap",
    "restore_body",
    "restore_safety",
]
