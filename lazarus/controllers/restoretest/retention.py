"""Retention of finished tests Lazarus made outside a policy (see ``lazarus.lifecycle.history``).

Tests made by the backup trigger (a Schedule's opt-in, a labelled Backup) and by ``lazarus test``
are grouped by namespace, maker and source; a group keeps its newest ``DEFAULT_KEPT_SUCCEEDED``
successful and ``DEFAULT_KEPT_FAILED`` failed tests, none finished more than ``DEFAULT_MAX_AGE``
ago. A policy's tests follow the policy's own history limits; tests a user created are theirs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from lazarus.api.v1alpha1 import Phase
from lazarus.automation.template import CREATED_BY_CLI, CREATED_BY_LABEL, CREATED_BY_TRIGGER
from lazarus.lifecycle.history import DEFAULT_KEPT_FAILED, DEFAULT_KEPT_SUCCEEDED, beyond_limits, expired
from lazarus.sources import source_of

RETAINED_MAKERS = (CREATED_BY_TRIGGER, CREATED_BY_CLI)
LIMITS: dict[Phase, int] = {Phase.SUCCEEDED: DEFAULT_KEPT_SUCCEEDED, Phase.FAILED: DEFAULT_KEPT_FAILED}

Obj = Mapping[str, Any]


def group_of(test: Obj) -> list[str]:
    """Index: the retention group of a test Lazarus made outside a policy (none for others)."""
    maker = (test["metadata"].get("labels") or {}).get(CREATED_BY_LABEL)
    if maker not in RETAINED_MAKERS:
        return []
    return [f"{test['metadata']['namespace']}/{maker}/{source_of(dict(test))}"]


def to_delete(group: Iterable[Obj], now: datetime) -> list[Obj]:
    """The tests of one group beyond its limits or too old, each once."""
    members = list(group)
    chosen = {f"{t['metadata']['namespace']}/{t['metadata']['name']}": t
              for t in [*beyond_limits(members, LIMITS), *expired(members, now)]}  # fmt: skip
    return list(chosen.values())
