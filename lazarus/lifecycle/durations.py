"""Durations as the CRDs write them: ``90s``, ``30m``, ``1h30m``, ``250ms``."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in ``text``; raise ``ValueError`` naming the text if it is not a duration."""
    position, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if not text or position != len(text):
        raise ValueError(f"{text!r} is not a duration like 90s, 30m or 1h30m")
    return total


def parse_time(text: str) -> datetime:
    """A Kubernetes timestamp (RFC 3339, ``Z``) as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def format_time(moment: datetime) -> str:
    """An aware datetime as a Kubernetes timestamp with second precision."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
