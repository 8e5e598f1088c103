"""The backup *source* of a restore test: what alerts, dashboards, reports and PagerDuty group by.

A source is a bounded label value, one per thing that produces backups to test, never one per
backup (backup names are unbounded and would explode metric cardinality):

- ``schedule/<name>``: the Velero Schedule that made the backup: Velero's
  ``velero.io/schedule-name`` label on the Backup, else the ``lazarus.io/schedule-name`` label
  the automation puts on the tests it creates (so the source survives the Backup's expiry);
- ``policy/<namespace>/<name>``: the BackupTestPolicy that created the test (its
  ``lazarus.io/policy-name`` label; policies create tests in their own namespace), for backups
  made without a Schedule;
- ``manual``: anything else (``lazarus test``, a hand-written test of a one-off backup).
"""

from __future__ import annotations

from typing import Any

from lazarus.automation.optin import SCHEDULE_NAME_LABEL
from lazarus.automation.template import POLICY_NAME_LABEL, SCHEDULE_LABEL

MANUAL = "manual"


def _labels(obj: dict[str, Any] | None) -> dict[str, str]:
    return dict(((obj or {}).get("metadata") or {}).get("labels") or {})


def source_of(test: dict[str, Any], backup: dict[str, Any] | None = None) -> str:
    """The source of ``test`` (see the module docstring); ``backup`` is the tested Backup if known."""
    schedule = _labels(backup).get(SCHEDULE_NAME_LABEL) or _labels(test).get(SCHEDULE_LABEL)
    if schedule:
        return f"schedule/{schedule}"
    policy = _labels(test).get(POLICY_NAME_LABEL)
    if policy:
        return f"policy/{test['metadata'].get('namespace', '')}/{policy}"
    return MANUAL
