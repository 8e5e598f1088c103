"""Slack incoming-webhook notifications: a readable message with a plain-text fallback.

The message leads with the verdict and the backup, then RTO/RPO against the objectives, the
result and the checks that did not pass. ``mentionOnFailure`` is put first on failures: ``@here``,
``@channel`` and ``@everyone`` become Slack's special mentions; a user or group needs Slack's
own syntax (``<@U123>``, ``<!subteam^S123>``), which is passed through as written.
"""

from __future__ import annotations

from typing import Any

from lazarus.notify.http import post_json
from lazarus.notify.message import detail_lines, failed_check_lines, headline
from lazarus.notify.targets import Context, Target
from lazarus.outcome import Outcome

DEFAULT_KEY = "slackWebhookURL"
SPECIAL_MENTIONS = {"@here": "<!here>", "@channel": "<!channel>", "@everyone": "<!everyone>"}
# Slack rejects a section text longer than 3000 characters.
MAX_SECTION = 3000


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mention(text: str) -> str:
    """A mention as Slack expects it (see the module docstring)."""
    text = text.strip()
    return SPECIAL_MENTIONS.get(text, text if text.startswith("<") else escape(text))


def slack_message(outcome: Outcome, config: dict[str, Any], cluster: str = "") -> dict[str, Any]:
    """The incoming-webhook payload for ``outcome`` (``config``: the spec's slack section)."""
    title = ("✅ " if outcome.success else "❌ ") + escape(headline(outcome, cluster))
    prefix = []
    if not outcome.success and config.get("mentionOnFailure"):
        prefix.append(mention(str(config["mentionOnFailure"])))
    if config.get("message"):
        prefix.append(escape(str(config["message"])))
    lead = " ".join(prefix)
    body = "\n".join(escape(line) for line in detail_lines(outcome))
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": (f"{lead}\n" if lead else "") + f"*{title}*"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": body[:MAX_SECTION]}},
    ]
    checks = failed_check_lines(outcome)
    if checks:
        listed = "*Checks that did not pass:*\n" + "\n".join(f"• {escape(line)}" for line in checks)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": listed[:MAX_SECTION]}})
    payload: dict[str, Any] = {"text": f"{lead} {title}".strip(), "blocks": blocks}
    if config.get("channel"):
        payload["channel"] = str(config["channel"])
    return payload


def send(context: Context, target: Target, outcome: Outcome) -> str:
    """Post the message; return what was done (raises ``DeliveryError``)."""
    url = context.credential(target.config.get("webhookSecretRef"), DEFAULT_KEY, "Slack webhook URL")
    message = slack_message(outcome, target.config, context.settings.cluster_name)
    post_json(url, message, context.settings.notification_timeout)
    return "posted to Slack" + (f" channel {target.config['channel']}" if target.config.get("channel") else "")
