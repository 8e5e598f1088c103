"""Watch responses: newline-delimited JSON events, decoded from a body that arrives in chunks.

Below both the informers (their reflector's watches) and the domain (watches of a Job or a
DownloadRequest), which share it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True)
class WatchEvent:
    """One watch event: ``type`` is ``ADDED``, ``MODIFIED``, ``DELETED``, ``BOOKMARK`` or ``ERROR``."""

    type: str
    object: Obj
    """The object; for ``ERROR`` a ``Status``; for ``BOOKMARK`` only ``metadata.resourceVersion``."""


def decode_watch_stream(chunks: Iterable[bytes]) -> Iterator[WatchEvent]:
    """Turn a watch response body (newline-delimited JSON, in arbitrary chunks) into events."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.strip():
                yield _decode_event(line)
    if pending.strip():
        yield _decode_event(pending)


def _decode_event(line: bytes) -> WatchEvent:
    event = json.loads(line)
    return WatchEvent(event["type"], event["object"])
