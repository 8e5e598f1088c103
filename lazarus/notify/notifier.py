"""Deliver a finished test's notifications: concurrently, retried with backoff, each recorded.

Every notification ends as one status entry (``status.notifications[]``): ``type``, ``event``,
``status`` (Sent or Failed), ``attempts``, ``message`` and ``time``. Delivery never raises: a
notification that cannot be sent is a Failed entry, a counted metric and a log line, and never
changes the test's result. Every message is scrubbed of the Secret values read for the delivery.

Transient failures (timeouts, connection errors, 429, 5xx, SMTP 4xx) are retried up to
``Settings.notification_attempts`` times with exponential backoff from ``initial_delay``
(doubling, at most ``MAX_DELAY``); the notifications of one test go out in parallel, so one
slow receiver does not delay the others.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog
from prometheus_client import Counter
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from lazarus.lifecycle.status import now_text
from lazarus.notify import mail, pagerduty, slack, webhook
from lazarus.notify.secrets import DeliveryError, SecretReader
from lazarus.notify.targets import EMAIL, PAGERDUTY, SLACK, WEBHOOK, Context, Target, plan
from lazarus.outcome import Outcome, outcome_of
from lazarus.settings import Settings

log = structlog.get_logger(__name__)

SENT, FAILED = "Sent", "Failed"
INITIAL_DELAY = 1.0
MAX_DELAY = 30.0
MAX_MESSAGE = 1024

NOTIFICATIONS = Counter(
    "lazarus_notifications_total",
    "Notifications of finished restore tests, by notifier type and outcome (sent or failed, after retries).",
    ["type", "status"],
)

Send = Callable[[Context, Target, Outcome], str]
SENDERS: dict[str, Send] = {SLACK: slack.send, EMAIL: mail.send, PAGERDUTY: pagerduty.send, WEBHOOK: webhook.send}


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, DeliveryError) and exc.transient


class Notifier:
    """Sends the notifications of finished tests with one ``Settings`` and one Secret reader."""

    def __init__(self, settings: Settings, secrets: SecretReader, *, initial_delay: float = INITIAL_DELAY) -> None:
        self._settings = settings
        self._secrets = secrets
        self._initial_delay = initial_delay

    def send(self, test: dict[str, Any], backup: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Send what ``test`` (Succeeded or Failed) asks for; return the status entries."""
        outcome = outcome_of(test, backup)
        targets = plan(test, outcome.success)
        if not targets:
            return []
        context = Context(self._settings, self._secrets, outcome.namespace)
        with ThreadPoolExecutor(max_workers=len(targets), thread_name_prefix="notify") as pool:
            return list(pool.map(lambda target: self._deliver(context, target, outcome), targets))

    def _deliver(self, context: Context, target: Target, outcome: Outcome) -> dict[str, Any]:
        attempts = 0

        def attempt() -> str:
            nonlocal attempts
            attempts += 1
            return SENDERS[target.kind](context, target, outcome)

        retrying = Retrying(
            stop=stop_after_attempt(self._settings.notification_attempts),
            wait=wait_exponential(multiplier=self._initial_delay, max=MAX_DELAY),
            retry=retry_if_exception(_transient),
            reraise=True,
        )
        try:
            detail, status = retrying(attempt), SENT
        except DeliveryError as exc:
            detail, status = str(exc), FAILED
        except Exception as exc:  # noqa: BLE001 - a notifier bug must not fail the test or the others
            detail, status = f"unexpected error: {type(exc).__name__}: {exc}", FAILED
        detail = self._secrets.scrub(detail)[:MAX_MESSAGE]
        NOTIFICATIONS.labels(target.kind, status.lower()).inc()
        logger = log.info if status == SENT else log.warning
        logger(
            "notification " + status.lower(),
            test=f"{outcome.namespace}/{outcome.name}",
            backup=outcome.backup,
            type=target.kind,
            section=target.event,
            attempts=attempts,
            detail=detail,
        )
        return {
            "type": target.kind,
            "event": target.event,
            "status": status,
            "attempts": attempts,
            "message": detail,
            "time": now_text(),
        }
