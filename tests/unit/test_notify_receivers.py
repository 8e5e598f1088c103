"""Notifications delivered to real local receivers: an HTTP server standing in for Slack, PagerDuty
and a webhook, and an SMTP server (aiosmtpd). Secrets are passed in as already-read Secret data."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY

from lazarus.notify.notifier import Notifier
from lazarus.notify.secrets import DeliveryError, SecretReader
from lazarus.settings import Settings
from tests.finished_tests import backup, finished_test
from tests.receivers import HttpReceiver, SmtpReceiver, free_port

SLACK_PATH = "/services/T0001/B0001/S3CR3TSLACKTOKEN"
HOOK_PATH = "/hooks/lazarus?token=W3BH00KT0KEN"
ROUTING_KEY = "PDR0UT1NGK3Y00000000000000000000"

# The SMTP receiver takes AUTH without TLS, on loopback only.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    server = HttpReceiver()
    yield server
    server.close()


def secrets_of(data: dict[tuple[str, str], dict[str, str]]) -> SecretReader:
    def fetch(namespace: str, name: str) -> dict[str, str]:
        if (namespace, name) not in data:
            raise DeliveryError(f"Secret {namespace}/{name} does not exist")
        return data[(namespace, name)]

    return SecretReader(fetch)


def notifier(receiver: HttpReceiver, secrets: dict[tuple[str, str], dict[str, str]], **settings: Any) -> Notifier:
    values: dict[str, Any] = {
        "cluster_name": "prod",
        "pagerduty_events_url": receiver.url("/v2/enqueue"),
        "notification_attempts": 3,
        **settings,
    }
    return Notifier(Settings(**values), secrets_of(secrets), initial_delay=0)


def counted(kind: str, status: str) -> float:
    return REGISTRY.get_sample_value("lazarus_notifications_total", {"type": kind, "status": status}) or 0.0


ALL_NOTIFIERS = {
    "onSuccess": {"slack": {"webhookSecretRef": {"name": "team-hooks", "key": "slack"}}},
    "onFailure": {
        "slack": {"webhookSecretRef": {"name": "team-hooks", "key": "slack"}, "mentionOnFailure": "@channel"},
        "pagerduty": {},  # the operator's default routing key
        "webhook": {"urlSecretRef": {"name": "team-hooks", "key": "webhook"}},
    },
}


def team_secrets(receiver: HttpReceiver) -> dict[tuple[str, str], dict[str, str]]:
    return {
        ("team-a", "team-hooks"): {"slack": receiver.url(SLACK_PATH), "webhook": receiver.url(HOOK_PATH)},
        ("lazarus-system", "lazarus-notifications"): {"pagerdutyRoutingKey": ROUTING_KEY},
    }


def test_a_failure_reaches_slack_pagerduty_and_the_webhook(receiver: HttpReceiver) -> None:
    test = finished_test(success=False, spec={"notifications": ALL_NOTIFIERS})
    sent_before = counted("pagerduty", "sent")
    entries = notifier(receiver, team_secrets(receiver)).send(test, backup("shop-20260101", "shop-daily"))
    assert [(e["type"], e["event"], e["status"], e["attempts"]) for e in entries] == [
        ("slack", "onFailure", "Sent", 1),
        ("webhook", "onFailure", "Sent", 1),
        ("pagerduty", "onFailure", "Sent", 1),
    ]
    by_path = {r.path: r.body for r in receiver.requests}
    assert by_path[SLACK_PATH]["text"].startswith("<!channel> ❌ Restore test FAILED: backup shop-20260101")
    assert by_path[HOOK_PATH]["reason"] == "HealthChecksFailed" and by_path[HOOK_PATH]["cluster"] == "prod"
    event = by_path["/v2/enqueue"]
    assert (event["routing_key"], event["event_action"], event["dedup_key"]) == (
        ROUTING_KEY, "trigger", "lazarus/prod/schedule/shop-daily",
    )  # fmt: skip
    assert counted("pagerduty", "sent") == sent_before + 1
    assert "PDR0UT1NGK3Y" not in str(entries)


def test_the_next_success_resolves_the_pagerduty_incident(receiver: HttpReceiver) -> None:
    send = notifier(receiver, team_secrets(receiver)).send
    send(finished_test(success=False, spec={"notifications": ALL_NOTIFIERS}), backup("b1", "shop-daily"))
    entries = send(finished_test(spec={"notifications": ALL_NOTIFIERS}), backup("b2", "shop-daily"))
    assert [(e["type"], e["event"], e["status"]) for e in entries] == [
        ("slack", "onSuccess", "Sent"), ("pagerduty", "onSuccess", "Sent"),
    ]  # fmt: skip
    events = [r.body for r in receiver.requests if r.path == "/v2/enqueue"]
    assert [e["event_action"] for e in events] == ["trigger", "resolve"]
    assert events[0]["dedup_key"] == events[1]["dedup_key"]
    assert "PagerDuty resolve accepted" in entries[1]["message"]


def test_transient_answers_are_retried_until_delivered(receiver: HttpReceiver) -> None:
    receiver.script.extend([(503, "upstream unavailable"), (429, "rate_limited")])
    spec = {"notifications": {"onFailure": ALL_NOTIFIERS["onFailure"] | {"pagerduty": {"enabled": False}}}}
    spec["notifications"]["onFailure"].pop("webhook")
    entries = notifier(receiver, team_secrets(receiver)).send(finished_test(success=False, spec=spec))
    assert [(e["type"], e["status"], e["attempts"]) for e in entries] == [("slack", "Sent", 3)]
    assert len(receiver.requests) == 3


def test_a_permanent_error_fails_at_once_and_the_message_holds_no_secret(receiver: HttpReceiver) -> None:
    receiver.script.append((404, "no_service"))
    spec = {"notifications": {"onSuccess": ALL_NOTIFIERS["onSuccess"]}}
    failed_before = counted("slack", "failed")
    entries = notifier(receiver, team_secrets(receiver)).send(finished_test(spec=spec))
    assert [(e["type"], e["status"], e["attempts"]) for e in entries] == [("slack", "Failed", 1)]
    assert entries[0]["message"] == f"{receiver.url('')} answered HTTP 404: no_service"
    assert counted("slack", "failed") == failed_before + 1


def test_an_unreachable_receiver_is_retried_then_recorded_without_its_url(receiver: HttpReceiver) -> None:
    dead = f"http://127.0.0.1:{free_port()}/hooks/T0P-S3CR3T-PATH"
    secrets = {("team-a", "team-hooks"): {"webhook": dead}}
    spec = {"notifications": {"onFailure": {"webhook": ALL_NOTIFIERS["onFailure"]["webhook"]}}}
    entries = notifier(receiver, secrets).send(finished_test(success=False, spec=spec))
    assert [(e["status"], e["attempts"]) for e in entries] == [("Failed", 3)]
    assert entries[0]["message"].startswith("could not connect to http://127.0.0.1:")
    assert "S3CR3T" not in entries[0]["message"]


def test_a_missing_secret_is_a_failed_notification_naming_the_reference(receiver: HttpReceiver) -> None:
    spec = {"notifications": {"onSuccess": {"slack": {}}, "onFailure": {}}}
    entries = notifier(receiver, {}).send(finished_test(spec=spec))
    assert entries[0]["status"] == "Failed" and entries[0]["attempts"] == 1
    assert "no Slack webhook URL configured" in entries[0]["message"]
    assert "Secret lazarus-system/lazarus-notifications does not exist" in entries[0]["message"]
    assert receiver.requests == []


def test_email_through_a_real_smtp_server_with_authentication(receiver: HttpReceiver) -> None:
    smtp = SmtpReceiver(login=("lazarus", "sm7p-pa55"))
    try:
        login = {"smtpUsername": "lazarus", "smtpPassword": "sm7p-pa55"}
        secrets = {("lazarus-system", "lazarus-notifications"): login}
        spec = {"notifications": {"onFailure": {"email": {"to": ["ops@example.com"], "from": "dr@example.com"}}}}
        entries = notifier(receiver, secrets, smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_security="none").send(
            finished_test(success=False, spec=spec), backup("shop-20260101", "shop-daily")
        )
        assert [(e["type"], e["status"], e["message"]) for e in entries] == [
            ("email", "Sent", "e-mailed 1 recipient(s)"),
        ]
        (mail,) = smtp.mails
        assert (mail.sender, mail.recipients) == ("dr@example.com", ["ops@example.com"])
        # A long Subject is folded right after "Subject:"; unfolding leaves the folding space.
        subject = str(mail.message["Subject"]).strip()
        assert subject == "[Lazarus] FAILED: restore test of backup shop-20260101 (schedule/shop-daily)"
        assert "orders-db/row-count: Failed" in mail.message.get_content()
    finally:
        smtp.close()


def test_email_with_a_wrong_password_or_refused_recipient_fails_without_retrying(receiver: HttpReceiver) -> None:
    smtp = SmtpReceiver(login=("lazarus", "right"))
    smtp.refused.add("nobody@example.com")
    try:
        wrong = {("lazarus-system", "lazarus-notifications"): {"smtpUsername": "lazarus", "smtpPassword": "wr0ng-pw"}}
        spec = {"notifications": {"onSuccess": {"email": {"to": ["ops@example.com"]}}}}
        settings = {"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_security": "none"}
        (entry,) = notifier(receiver, wrong, **settings).send(finished_test(spec=spec))
        assert (entry["status"], entry["attempts"]) == ("Failed", 1)
        assert entry["message"].startswith(f"SMTP server 127.0.0.1:{smtp.port} answered 535")
        assert "wr0ng-pw" not in entry["message"]
        right = {("lazarus-system", "lazarus-notifications"): {"smtpUsername": "lazarus", "smtpPassword": "right"}}
        refused = {"notifications": {"onSuccess": {"email": {"to": ["nobody@example.com"]}}}}
        (entry,) = notifier(receiver, right, **settings).send(finished_test(spec=refused))
        assert (entry["status"], entry["attempts"]) == ("Failed", 1)
        assert "refused every recipient: nobody@example.com" in entry["message"]
        assert smtp.mails == []
    finally:
        smtp.close()


def test_email_without_an_smtp_server_configured_fails_clearly(receiver: HttpReceiver) -> None:
    spec = {"notifications": {"onSuccess": {"email": {"to": ["ops@example.com"]}}}}
    (entry,) = notifier(receiver, {}).send(finished_test(spec=spec))
    assert (entry["status"], entry["message"]) == ("Failed", "no SMTP server configured (setting smtp_host)")
