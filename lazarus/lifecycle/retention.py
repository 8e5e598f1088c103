"""How long a finished test's sandbox is kept: one rule, for cleanup and for the leak metrics."""

from __future__ import annotations

from typing import Any

from lazarus.api.v1alpha1 import Phase


def kept_until_deleted(test: dict[str, Any] | None) -> bool:
    """Whether the spec keeps the sandbox of the finished ``test`` until the test is deleted.

    ``cleanup.enabled: false``, or ``cleanup.keepOnFailure`` on a test that did not succeed:
    such sandboxes are kept on purpose (for debugging), so they are no leak.
    """
    if test is None:
        return False
    cleanup = (test.get("spec") or {}).get("cleanup") or {}
    failed = (test.get("status") or {}).get("phase") != Phase.SUCCEEDED
    return cleanup.get("enabled") is False or (failed and bool(cleanup.get("keepOnFailure")))
