"""The bodies of the Velero objects a test creates, built from its view (no I/O)."""

from __future__ import annotations

from typing import Any

from lazarus.controllers.restoretest.view import TestView
from lazarus.sandbox import owner_labels
from lazarus.velero.resource_modifiers import resource_modifiers_configmap
from lazarus.velero.restore_spec import restore_body


def restore_section(view: TestView) -> dict[str, Any]:
    """``spec.restore`` as the Velero restore builders read it (raw: they own its meaning)."""
    return dict(view.obj["spec"].get("restore") or {})


def restore_objects(
    view: TestView, mapping: dict[str, str], velero_namespace: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The resource-modifier ConfigMap and the Velero Restore; raises ``UnsafeRestoreError``."""
    test = dict(view.obj)
    name = view.restore_name
    configmap = resource_modifiers_configmap(name, velero_namespace, list(mapping), owner_labels(test))
    body = restore_body(
        name=name,
        namespace=velero_namespace,
        backup_name=view.spec.backup_name,
        namespace_mapping=mapping,
        restore_spec=restore_section(view),
        resource_modifier_configmap=configmap["metadata"]["name"],
        labels=owner_labels(test),
    )
    return configmap, body
