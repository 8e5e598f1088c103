"""PagerDuty Events API v2: trigger an incident when a test fails, resolve it on the next success.

The dedup key is per backup source (and cluster), not per test: every failure of one Schedule's
backups lands in one incident, and the next successful test of that Schedule resolves it.
"""

from __future__ import annotations

from typing import Any

from lazarus.notify.http import post_json
from lazarus.notify.message import failed_check_lines, headline
from lazarus.notify.targets import RESOLVE, Context, Target
from lazarus.outcome import Outcome

DEFAULT_KEY = "pagerdutyRoutingKey"
MAX_SUMMARY = 1024
MAX_DEDUP_KEY = 255


def dedup_key(source: str, cluster: str = "") -> str:
    """``lazarus/<cluster>/<source>`` (PagerDuty allows 255 characters)."""
    return "/".join(part for part in ("lazarus", cluster, source) if part)[:MAX_DEDUP_KEY]


def pagerduty_event(outcome: Outcome, routing_key: str, action: str, cluster: str = "") -> dict[str, Any]:
    """The Events API v2 body: a ``trigger`` with details, or a bare ``resolve``."""
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup_key(outcome.source, cluster),
    }
    if action == RESOLVE:
        return event
    details: dict[str, Any] = {
        "test": f"{outcome.namespace}/{outcome.name}",
        "backup": outcome.backup,
        "reason": outcome.reason,
        "message": outcome.message,
        "rto_seconds": outcome.rto,
        "rpo_seconds": outcome.rpo,
        "rto_objective_seconds": outcome.rto_objective,
        "rpo_objective_seconds": outcome.rpo_objective,
        "failed_checks": failed_check_lines(outcome),
    }
    event["payload"] = {
        "summary": f"{headline(outcome, cluster)}: {outcome.reason}"[:MAX_SUMMARY],
        "source": cluster or "lazarus",
        "severity": "critical",
        "component": outcome.source,
        "group": "backup-restore-tests",
        "class": outcome.reason or "RestoreTestFailed",
        "custom_details": details,
    }
    if outcome.completion_time is not None:
        event["payload"]["timestamp"] = outcome.completion_time.isoformat()
    event["client"] = "Lazarus"
    return event


def send(context: Context, target: Target, outcome: Outcome) -> str:
    """Send the trigger or resolve event; return what was done (raises ``DeliveryError``)."""
    key = context.credential(target.config.get("routingKeySecretRef"), DEFAULT_KEY, "PagerDuty routing key")
    body = pagerduty_event(outcome, key, target.action, context.settings.cluster_name)
    post_json(context.settings.pagerduty_events_url, body, context.settings.notification_timeout)
    return f"PagerDuty {target.action} accepted (dedup key {body['dedup_key']})"
