"""Which notifications a finished test sends, and the credentials each one uses.

``spec.notifications.onSuccess`` / ``onFailure`` each name up to four notifiers (slack, email,
pagerduty, webhook); a notifier section that is present is on unless ``enabled: false``.
PagerDuty is special: a failure *triggers* an incident (``onFailure.pagerduty``) and the next
success *resolves* it, so a success sends a resolve when either section configures PagerDuty
(a resolve without an open incident is accepted and does nothing).

Credentials come from the Secret a notifier's ``...SecretRef`` names (in the test's namespace:
a test can never read another namespace's Secret), else from the operator's default Secret
(``Settings.notifications_secret`` in the operator's namespace).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lazarus.notify.secrets import DeliveryError, SecretReader, SecretRef
from lazarus.settings import Settings

SLACK, EMAIL, PAGERDUTY, WEBHOOK = "slack", "email", "pagerduty", "webhook"
KINDS = (SLACK, EMAIL, PAGERDUTY, WEBHOOK)
ON_SUCCESS, ON_FAILURE = "onSuccess", "onFailure"
TRIGGER, RESOLVE = "trigger", "resolve"


@dataclass(frozen=True)
class Target:
    """One notification to send: the notifier, the spec section it came from, its settings."""

    kind: str
    event: str
    config: dict[str, Any]
    action: str = ""
    """PagerDuty only: trigger or resolve."""


def _enabled(section: dict[str, Any], kind: str) -> dict[str, Any] | None:
    config = section.get(kind)
    return config if isinstance(config, dict) and config.get("enabled", True) else None


def plan(test: dict[str, Any], success: bool) -> list[Target]:
    """The notifications ``test`` sends now that it ended (``success`` or not)."""
    notifications = (test.get("spec") or {}).get("notifications") or {}
    on_success, on_failure = notifications.get(ON_SUCCESS) or {}, notifications.get(ON_FAILURE) or {}
    event, section = (ON_SUCCESS, on_success) if success else (ON_FAILURE, on_failure)
    targets = [
        Target(kind, event, config)
        for kind in (SLACK, EMAIL, WEBHOOK)
        if (config := _enabled(section, kind)) is not None
    ]
    if success:
        pagerduty = _enabled(on_success, PAGERDUTY) or _enabled(on_failure, PAGERDUTY)
        if pagerduty is not None:
            targets.append(Target(PAGERDUTY, event, pagerduty, RESOLVE))
    elif (pagerduty := _enabled(on_failure, PAGERDUTY)) is not None:
        targets.append(Target(PAGERDUTY, event, pagerduty, TRIGGER))
    return targets


@dataclass(frozen=True)
class Context:
    """What a notifier needs besides the outcome: settings, Secret access, the test's namespace."""

    settings: Settings
    secrets: SecretReader
    namespace: str

    def credential(self, ref: dict[str, Any] | None, default_key: str, what: str) -> str:
        """The Secret value ``ref`` names (test namespace), else the default Secret's ``default_key``."""
        if ref:
            return self.secrets.value(SecretRef(self.namespace, str(ref["name"]), str(ref["key"])))
        default = SecretRef(self.settings.namespace, self.settings.notifications_secret, default_key)
        try:
            return self.secrets.value(default)
        except DeliveryError as exc:
            raise DeliveryError(
                f"no {what} configured: set the notifier's secret reference in the test, or key "
                f"{default_key} in the operator's Secret ({exc})",
                transient=exc.transient,
            ) from None
