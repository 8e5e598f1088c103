"""A generic JSON webhook: the test's outcome as one versioned JSON document.

Fields (stable; new ones may be added): ``apiVersion``, ``kind`` (RestoreTestResult),
``cluster``, ``event`` (onSuccess/onFailure), ``test`` {namespace, name}, ``backup``, ``source``,
``success``, ``phase``, ``reason``, ``message``, ``startTime``, ``completionTime``, ``rtoSeconds``,
``rpoSeconds``, ``objectives`` {rtoSeconds, rpoSeconds}, ``resources`` {recovered, failed},
``failedChecks`` [{type, group, name, status, result}].
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lazarus.lifecycle.durations import format_time
from lazarus.notify.http import post_json
from lazarus.notify.targets import Context, Target
from lazarus.outcome import Outcome

DEFAULT_KEY = "webhookURL"
API_VERSION = "lazarus.io/v1alpha1"
KIND = "RestoreTestResult"


def _time(moment: datetime | None) -> str | None:
    return format_time(moment) if moment is not None else None


def webhook_document(outcome: Outcome, event: str, cluster: str = "") -> dict[str, Any]:
    """The JSON document posted for ``outcome``."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "cluster": cluster,
        "event": event,
        "test": {"namespace": outcome.namespace, "name": outcome.name},
        "backup": outcome.backup,
        "source": outcome.source,
        "success": outcome.success,
        "phase": outcome.phase,
        "reason": outcome.reason,
        "message": outcome.message,
        "startTime": _time(outcome.start_time),
        "completionTime": _time(outcome.completion_time),
        "rtoSeconds": outcome.rto,
        "rpoSeconds": outcome.rpo,
        "objectives": {"rtoSeconds": outcome.rto_objective, "rpoSeconds": outcome.rpo_objective},
        "resources": {"recovered": outcome.resources_recovered, "failed": outcome.resources_failed},
        "failedChecks": [
            {"type": c.check_type, "group": c.group, "name": c.name, "status": c.status, "result": c.result}
            for c in outcome.failed_checks
        ],
    }


def send(context: Context, target: Target, outcome: Outcome) -> str:
    """POST the document; return what was done (raises ``DeliveryError``)."""
    url = context.credential(target.config.get("urlSecretRef"), DEFAULT_KEY, "webhook URL")
    document = webhook_document(outcome, target.event, context.settings.cluster_name)
    post_json(url, document, context.settings.notification_timeout)
    return "posted to the webhook"
