"""The per-item errors and warnings of a Velero restore, from its ``RestoreResults`` artefact.

Format (Velero v1.17, verified in the source): ``putResults`` in
``pkg/controller/restore_controller.go`` gzips the JSON of ``map[string]results.Result`` with the
keys ``"warnings"`` and ``"errors"``; ``results.Result`` (``pkg/util/results/result.go``) is::

    {"velero": ["..."], "cluster": ["..."], "namespaces": {"<namespace>": ["..."]}}

with every field ``omitempty`` (an empty result is ``{}``). ``velero`` holds messages about
Velero's own operation, ``cluster`` those about cluster-scoped items, ``namespaces`` those about
namespaced items keyed by the namespace the item was restored *into* (``restoreItem`` adds errors
under its remapped target namespace), so for a Lazarus restore mostly sandbox names.
The restore's ``status.errors``/``status.warnings`` are the total message counts of the same data.

Contract: ``parse_restore_results`` is pure; a malformed file raises ``ArtefactFormatError`` (a
``DownloadError``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from lazarus.kube.client import Rest
from lazarus.velero.downloads import ArtefactFormatError, TargetKind, download

__all__ = ["RestoreResults", "parse_restore_results", "restore_results", "scoped_messages"]


@dataclass(frozen=True)
class RestoreResults:
    """A restore's messages, flattened and prefixed with their scope.

    Each message reads ``velero: <msg>``, ``cluster: <msg>`` or ``namespace <ns>: <msg>``; order:
    Velero, cluster, then namespaces by name, each in Velero's order. The lists must not be
    mutated (they are lists so that callers can concatenate them with other lists).
    """

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def scoped_messages(result: Any, what: str = "result", restore_name: str = "") -> list[str]:
    """Flatten one ``results.Result`` object into scope-prefixed messages (see ``RestoreResults``)."""
    if result is None:
        return []
    if not isinstance(result, dict):
        raise _format_error(restore_name, f"{what} is not a JSON object")
    messages = [f"velero: {m}" for m in _strings(result.get("velero"), f"{what}.velero", restore_name)]
    messages += [f"cluster: {m}" for m in _strings(result.get("cluster"), f"{what}.cluster", restore_name)]
    namespaces = result.get("namespaces") or {}
    if not isinstance(namespaces, dict):
        raise _format_error(restore_name, f"{what}.namespaces is not a JSON object")
    for namespace in sorted(namespaces):
        path = f"{what}.namespaces[{namespace}]"
        messages += [f"namespace {namespace}: {m}" for m in _strings(namespaces[namespace], path, restore_name)]
    return messages


def parse_restore_results(data: bytes | str, restore_name: str = "") -> RestoreResults:
    """Parse the (decompressed) ``RestoreResults`` JSON; ``ArtefactFormatError`` if malformed."""
    try:
        raw = json.loads(data)
    except ValueError as exc:
        raise _format_error(restore_name, f"not valid JSON: {exc}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise _format_error(restore_name, f"expected a JSON object, got {type(raw).__name__}")
    return RestoreResults(
        errors=scoped_messages(raw.get("errors"), "errors", restore_name),
        warnings=scoped_messages(raw.get("warnings"), "warnings", restore_name),
    )


def restore_results(rest: Rest, restore_name: str, velero_namespace: str, **options: Any) -> RestoreResults:
    """Download and parse the results of restore ``restore_name``.

    ``options`` go to ``downloads.download``. Raises ``DownloadError``; a 404
    (``exc.not_found``) means Velero has not uploaded results (the restore has not finished, or
    failed validation before running).
    """
    data = download(rest, TargetKind.RESTORE_RESULTS, restore_name, velero_namespace, **options)
    return parse_restore_results(data, restore_name)


def _strings(value: Any, path: str, restore_name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(m, str) for m in value):
        raise _format_error(restore_name, f"{path} is not a list of messages")
    return value


def _format_error(restore_name: str, reason: str) -> ArtefactFormatError:
    return ArtefactFormatError(TargetKind.RESTORE_RESULTS, restore_name, f"unexpected format: {reason}")
