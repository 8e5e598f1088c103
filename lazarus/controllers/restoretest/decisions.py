"""What a phase function decides; the controller is the one that acts on it.

Three kinds of outcome, as in sample-controller: a transition (``Advance``, ``Wait``), a permanent
user error recorded on status and not retried (``Fail``), or nothing to do yet (``RequeueAfter``,
or ``None`` when a watched object's event brings the key back). API errors are not decisions:
the controller raises them and the queue retries with backoff.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lazarus.api.v1alpha1 import ConditionType, FailureReason, PendingReason, Phase


@dataclass(frozen=True)
class Fail:
    """End the test Failed with ``reason``; ``extra`` is merged into its status."""

    reason: FailureReason
    message: str
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Wait:
    """Keep the test Pending for ``reason`` (written only when the reason changes)."""

    reason: PendingReason
    message: str


@dataclass(frozen=True)
class Advance:
    """Move to ``phase``; ``condition`` is set True with the same reason and message."""

    phase: Phase
    reason: str
    message: str
    condition: ConditionType | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RequeueAfter:
    """Nothing to write; look again in ``seconds`` (nothing else may bring the key back in time)."""

    seconds: float


Decision = Fail | Wait | Advance | RequeueAfter
