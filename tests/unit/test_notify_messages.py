"""What each notifier sends, which notifications a test asks for, and scrubbing secrets."""

from __future__ import annotations

from lazarus.notify.mail import email_message
from lazarus.notify.pagerduty import dedup_key, pagerduty_event
from lazarus.notify.secrets import SecretReader, SecretRef
from lazarus.notify.slack import slack_message
from lazarus.notify.targets import plan
from lazarus.notify.webhook import webhook_document
from lazarus.outcome import outcome_of
from tests.finished_tests import backup, finished_test

FAILED = outcome_of(
    finished_test(success=False, spec={"objectives": {"rtoSeconds": 300}}), backup("shop-20260101", "shop-daily")
)
PASSED = outcome_of(finished_test(), backup("shop-20260101", "shop-daily"))


def notifications(on_success: dict[str, object], on_failure: dict[str, object]) -> dict[str, object]:
    return {"notifications": {"onSuccess": on_success, "onFailure": on_failure}}


def test_plan_follows_the_spec_and_pagerduty_resolves_on_success() -> None:
    spec = notifications(
        {"slack": {"channel": "#ok"}, "email": {"enabled": False, "to": ["a@b.c"]}},
        {"slack": {}, "pagerduty": {}, "webhook": {"urlSecretRef": {"name": "s", "key": "k"}}},
    )
    success = plan(finished_test(spec=spec), success=True)
    assert [(t.kind, t.event, t.action) for t in success] == [
        ("slack", "onSuccess", ""), ("pagerduty", "onSuccess", "resolve"),
    ]  # fmt: skip
    failure = plan(finished_test(spec=spec), success=False)
    assert [(t.kind, t.action) for t in failure] == [("slack", ""), ("webhook", ""), ("pagerduty", "trigger")]
    assert plan(finished_test(), success=False) == []
    disabled = notifications({}, {"pagerduty": {"enabled": False}})
    assert plan(finished_test(spec=disabled), success=True) == []


def test_slack_message_is_readable_escaped_and_mentions_on_failure() -> None:
    config = {"channel": "#alerts", "mentionOnFailure": "@here", "message": "Nightly <shop> check"}
    message = slack_message(FAILED, config, cluster="prod-eu")
    text = "\n".join(block["text"]["text"] for block in message["blocks"])
    assert message["channel"] == "#alerts"
    assert message["text"].startswith("<!here> Nightly &lt;shop&gt; check ❌ Restore test FAILED")
    assert "backup shop-20260101 (schedule/shop-daily) on prod-eu" in text
    assert "RTO: 600.0 s (objective 300 s, missed)" in text
    assert "RPO: 3600.0 s" in text
    assert "postgres orders-db/row-count: Failed: Count: 3 (outside 100-1000)" in text
    passed = slack_message(PASSED, config)
    assert "<!here>" not in passed["text"] and passed["text"].startswith("Nightly")
    assert len(passed["blocks"]) == 2  # no failed checks section


def test_pagerduty_trigger_and_resolve_share_the_dedup_key_of_the_source() -> None:
    trigger = pagerduty_event(FAILED, "routing-key-1", "trigger", cluster="prod")
    resolve = pagerduty_event(PASSED, "routing-key-1", "resolve", cluster="prod")
    assert trigger["dedup_key"] == resolve["dedup_key"] == dedup_key("schedule/shop-daily", "prod")
    assert trigger["dedup_key"] == "lazarus/prod/schedule/shop-daily"
    assert resolve == {"routing_key": "routing-key-1", "event_action": "resolve", "dedup_key": trigger["dedup_key"]}
    payload = trigger["payload"]
    assert payload["severity"] == "critical" and payload["source"] == "prod"
    assert payload["summary"].startswith("Restore test FAILED: backup shop-20260101")
    failed_checks = payload["custom_details"]["failed_checks"]
    assert failed_checks == ["postgres orders-db/row-count: Failed: Count: 3 (outside 100-1000)"]
    assert payload["timestamp"] == "2026-01-10T04:10:00+00:00"


def test_webhook_document() -> None:
    document = webhook_document(FAILED, "onFailure", cluster="prod")
    assert document["kind"] == "RestoreTestResult" and document["event"] == "onFailure"
    assert document["test"] == {"namespace": "team-a", "name": "shop-test"}
    assert (document["success"], document["reason"], document["rtoSeconds"]) == (False, "HealthChecksFailed", 600.0)
    assert document["objectives"] == {"rtoSeconds": 300.0, "rpoSeconds": None}
    assert document["completionTime"] == "2026-01-10T04:10:00Z"
    assert document["failedChecks"] == [{"type": "postgres", "group": "orders-db", "name": "row-count",
                                         "status": "Failed", "result": "Count: 3 (outside 100-1000)"}]  # fmt: skip


def test_email_message() -> None:
    message = email_message(FAILED, ["ops@example.com", "dba@example.com"], "lazarus@example.com")
    assert message["Subject"] == "[Lazarus] FAILED: restore test of backup shop-20260101 (schedule/shop-daily)"
    assert message["To"] == "ops@example.com, dba@example.com"
    body = message.get_content()
    assert "Result: Failed (HealthChecksFailed)" in body and "- postgres orders-db/row-count: Failed" in body


def test_scrub_removes_secret_values_and_the_secret_parts_of_urls() -> None:
    data = {"url": "https://hooks.example.com/services/T000/B000/XXXXSECRET?token=abc123", "key": "R0UTINGKEY"}
    reader = SecretReader(lambda _ns, _name: data)
    reader.value(SecretRef("ns", "s", "url"))
    reader.value(SecretRef("ns", "s", "key"))
    text = (
        "HTTPSConnectionPool(host='hooks.example.com'): Max retries exceeded with url: "
        "/services/T000/B000/XXXXSECRET?token=abc123 (key R0UTINGKEY)"
    )
    scrubbed = reader.scrub(text)
    assert "XXXXSECRET" not in scrubbed and "abc123" not in scrubbed and "R0UTINGKEY" not in scrubbed
    assert "hooks.example.com" in scrubbed
