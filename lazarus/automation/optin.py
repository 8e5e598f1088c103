"""How Velero Schedules and Backups opt in to automatic restore tests.

- A ``Schedule`` annotated ``lazarus.io/validate: "true"`` opts in every Backup it makes (Velero
  labels them ``velero.io/schedule-name``). ``lazarus.io/test-every: "N"`` tests only every Nth
  of them. ``lazarus.io/test-policy`` names the ``BackupTestPolicy`` whose template the tests
  are made from: ``name`` (in the operator's namespace) or ``namespace/name``.
- A ``Backup`` labelled ``backup-type: validation`` (the design's opt-in label) is tested itself,
  whatever its Schedule says; ``lazarus.io/test-policy`` on the Backup, else on its Schedule,
  names the policy.

Anything else (no annotation, ``validate`` not ``"true"``) means no opt-in. A malformed value
raises ``OptInError``: bad input the controller reports and does not guess at.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

VALIDATE_ANNOTATION = "lazarus.io/validate"
POLICY_ANNOTATION = "lazarus.io/test-policy"
EVERY_ANNOTATION = "lazarus.io/test-every"
BACKUP_OPT_IN_LABEL, BACKUP_OPT_IN_VALUE = "backup-type", "validation"
SCHEDULE_NAME_LABEL = "velero.io/schedule-name"

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


class OptInError(ValueError):
    """An opt-in annotation has a value that cannot be used; the message names it."""


@dataclass(frozen=True)
class ScheduleOptIn:
    """What a Schedule's annotations ask for."""

    enabled: bool
    """``lazarus.io/validate: "true"``: test the Schedule's backups."""
    every: int = 1
    """Test every Nth backup (1: all)."""
    policy: str | None = None
    """``namespace/name`` of the policy supplying the template; None: the default template."""


def _annotations(obj: Mapping[str, Any]) -> dict[str, str]:
    return obj.get("metadata", {}).get("annotations") or {}


def policy_key(ref: str, default_namespace: str) -> str:
    """``namespace/name`` of a policy reference (``name`` alone: in ``default_namespace``)."""
    namespace, _, name = ref.strip().rpartition("/")
    namespace = namespace or default_namespace
    if not _DNS_LABEL.fullmatch(namespace) or not _DNS_SUBDOMAIN.fullmatch(name):
        raise OptInError(f"{POLICY_ANNOTATION}: {ref!r} is not a policy name or namespace/name")
    return f"{namespace}/{name}"


def schedule_opt_in(schedule: Mapping[str, Any], default_namespace: str) -> ScheduleOptIn:
    """Read a Schedule's opt-in annotations; raise ``OptInError`` for a malformed one."""
    annotations = _annotations(schedule)
    if annotations.get(VALIDATE_ANNOTATION, "").strip().lower() != "true":
        return ScheduleOptIn(enabled=False)
    raw_every = annotations.get(EVERY_ANNOTATION, "1").strip()
    if not raw_every.isdigit() or int(raw_every) < 1:
        raise OptInError(f"{EVERY_ANNOTATION}: {raw_every!r} is not a whole number of at least 1")
    ref = annotations.get(POLICY_ANNOTATION)
    return ScheduleOptIn(enabled=True, every=int(raw_every), policy=policy_key(ref, default_namespace) if ref else None)


def backup_labelled(backup: Mapping[str, Any]) -> bool:
    """Whether the Backup itself carries the opt-in label."""
    labels = backup.get("metadata", {}).get("labels") or {}
    return labels.get(BACKUP_OPT_IN_LABEL) == BACKUP_OPT_IN_VALUE


def schedule_of(backup: Mapping[str, Any]) -> str | None:
    """The name of the Velero Schedule that made the Backup, if any."""
    return (backup.get("metadata", {}).get("labels") or {}).get(SCHEDULE_NAME_LABEL) or None


def backup_policy(backup: Mapping[str, Any], default_namespace: str) -> str | None:
    """The policy named on the Backup itself (``namespace/name``), if any."""
    ref = _annotations(backup).get(POLICY_ANNOTATION)
    return policy_key(ref, default_namespace) if ref else None
