"""``metav1.Condition`` lists, updated the way Kubernetes controllers do it.

``lastTransitionTime`` changes only when a condition's status changes, so it tells when the
condition became what it is, not when it was last written.
"""

from __future__ import annotations

from typing import Any

TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"


def set_condition(
    conditions: list[dict[str, Any]] | None,
    type_: str,
    status: str,
    reason: str,
    message: str,
    *,
    now: str,
    generation: int | None = None,
) -> list[dict[str, Any]]:
    """Return a new list with condition ``type_`` set; other conditions are kept as they are."""
    result = [dict(c) for c in conditions or []]
    existing = next((c for c in result if c.get("type") == type_), None)
    condition = {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message[:32768],
        "lastTransitionTime": existing["lastTransitionTime"]
        if existing is not None and existing.get("status") == status and existing.get("lastTransitionTime")
        else now,
    }
    if generation is not None:
        condition["observedGeneration"] = generation
    if existing is None:
        result.append(condition)
    else:
        result[result.index(existing)] = condition
    return result


def get_condition(conditions: list[dict[str, Any]] | None, type_: str) -> dict[str, Any] | None:
    """The condition of that type, or None."""
    return next((c for c in conditions or [] if c.get("type") == type_), None)
