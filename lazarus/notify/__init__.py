"""Notifications of finished restore tests: Slack, PagerDuty, a generic JSON webhook, e-mail.

The one entry point is ``send_notifications``; see ``notifier`` for delivery and retries,
``targets`` for what the spec asks for and where credentials come from, and one module per
notifier for its message.
"""

from __future__ import annotations

from typing import Any

from lazarus.kube.client import Rest
from lazarus.notify.notifier import Notifier
from lazarus.notify.secrets import SecretReader, kube_fetch
from lazarus.settings import Settings

__all__ = ["send_notifications"]


def send_notifications(
    rest: Rest, test: dict[str, Any], settings: Settings, backup: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Send the notifications ``test`` (Succeeded or Failed) asks for; return ``status.notifications``.

    Never raises and never changes the test: each notification's outcome is one entry. Blocks
    while sending (at most about ``notification_attempts`` × ``notification_timeout`` plus
    backoff, notifiers in parallel). ``backup``: the tested Velero Backup if cached (it names
    the source, e.g. the Schedule, used in messages and the PagerDuty dedup key).
    """
    return Notifier(settings, SecretReader(kube_fetch(rest))).send(test, backup)
