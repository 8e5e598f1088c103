"""The pure rules of automatic testing: names, opt-in, backup selection, cron, templates."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from lazarus.automation.backups import (
    cluster_wide,
    fresh_backups,
    matches_selector,
    policy_selection,
    schedule_selection,
    velero_findings,
)
from lazarus.automation.cron import CronSchedule, InvalidSchedule, due_run, too_late
from lazarus.automation.names import backup_test_name, bounded_name, policy_run_name
from lazarus.automation.optin import OptInError, ScheduleOptIn, policy_key, schedule_opt_in
from lazarus.automation.template import InvalidTemplate, RestoreTestTemplate

T0 = datetime(2026, 1, 10, 3, 0, tzinfo=UTC)


def backup(name: str, minute: int, phase: str = "Completed", **spec: Any) -> dict[str, Any]:
    """A Backup of Schedule ``daily`` that finished ``minute`` minutes after T0."""
    done = (T0 + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "metadata": {"name": name, "namespace": "velero", "uid": f"uid-{name}", "creationTimestamp": done,
                     "labels": {"velero.io/schedule-name": "daily"}},
        "spec": {"includedNamespaces": ["shop"], **spec},
        "status": {"phase": phase, "completionTimestamp": done} if phase else {},
    }  # fmt: skip


def names(backups: list[dict[str, Any]]) -> list[str]:
    return [b["metadata"]["name"] for b in backups]


def completed(b: dict[str, Any]) -> bool:
    return b["status"].get("phase") == "Completed"


# ----------------------------------------------------------------------------------- names


def test_names_are_dns_labels_of_at_most_63_characters_and_distinct() -> None:
    assert backup_test_name("daily-20260110030000") == "daily-20260110030000"
    long_a, long_b = "a" * 70 + "-x", "a" * 70 + "-y"
    assert len(bounded_name(long_a)) <= 63 and bounded_name(long_a) != bounded_name(long_b)
    dotted = bounded_name("shop.daily")
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", dotted) and dotted != bounded_name("shop-daily")
    assert policy_run_name("nightly", datetime(2026, 1, 10, 4, 30, tzinfo=UTC)) == "nightly-202601100430"
    berlin = datetime(2026, 1, 10, 5, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    assert policy_run_name("nightly", berlin) == "nightly-202601100430"  # the name is the UTC time


# ----------------------------------------------------------------------------------- opt-in


def annotated(**annotations: str) -> dict[str, Any]:
    return {"metadata": {"name": "daily", "namespace": "velero", "annotations": annotations}}


def test_schedule_opt_in_reads_the_annotations() -> None:
    assert schedule_opt_in(annotated(), "lazarus-system") == ScheduleOptIn(enabled=False)
    assert not schedule_opt_in(annotated(**{"lazarus.io/validate": "false"}), "lazarus-system").enabled
    opt_in = schedule_opt_in(
        annotated(**{"lazarus.io/validate": "true", "lazarus.io/test-every": "3", "lazarus.io/test-policy": "shop"}),
        "lazarus-system",
    )
    assert opt_in == ScheduleOptIn(enabled=True, every=3, policy="lazarus-system/shop")
    assert policy_key("team-a/shop", "lazarus-system") == "team-a/shop"


@pytest.mark.parametrize(
    "annotations",
    [
        {"lazarus.io/test-every": "0"},
        {"lazarus.io/test-every": "two"},
        {"lazarus.io/test-policy": "Not_A_Name"},
        {"lazarus.io/test-policy": "a/b/c"},
    ],
)
def test_malformed_opt_in_annotations_are_errors(annotations: dict[str, str]) -> None:
    with pytest.raises(OptInError):
        schedule_opt_in(annotated(**{"lazarus.io/validate": "true", **annotations}), "lazarus-system")


# ----------------------------------------------------------------------------------- schedule selection


def test_first_opt_in_tests_only_the_newest_backup() -> None:
    backups = [backup("b1", 1), backup("b2", 2), backup("b3", 3, "Failed"), backup("b4", 4, "InProgress")]
    assert names(schedule_selection(backups, set(), completed, every=1)) == ["b2"]
    assert names(fresh_backups(backups, set(), completed)) == ["b2", "b3"]


def test_every_backup_after_the_last_tested_one_is_tested() -> None:
    backups = [backup("b1", 1), backup("b2", 2), backup("b3", 3), backup("b4", 4, "InProgress")]
    assert names(schedule_selection(backups, {"b1"}, completed, every=1)) == ["b2", "b3"]
    assert schedule_selection(backups, {"b3"}, completed, every=1) == []
    # A test deleted by hand (b1 here) is not made again: only backups after the last tested one count.
    assert schedule_selection(backups, {"b2", "b3"}, completed, every=1) == []


def test_backups_are_ordered_by_when_they_finished() -> None:
    long_running = backup("a-started-first", 10)  # finished after the newer, shorter one
    backups = [backup("b1", 1), backup("b2", 5), long_running]
    assert names(schedule_selection(backups, {"b2"}, completed, every=1)) == ["a-started-first"]


def test_every_nth_counts_testable_backups_after_the_last_tested_one() -> None:
    backups = [backup(f"b{i}", i) for i in range(1, 8)] + [backup("bad", 4, "Failed")]
    assert names(schedule_selection(backups, {"b1"}, completed, every=3)) == ["b4", "b7"]
    assert names(schedule_selection(backups, {"b4"}, completed, every=3)) == ["b7"]
    assert schedule_selection(backups, {"b7"}, completed, every=3) == []


def test_cluster_wide_backups_are_named() -> None:
    assert cluster_wide({"includedNamespaces": ["shop"]}) is None
    assert "every namespace" in (cluster_wide({}) or "")
    assert "every namespace" in (cluster_wide({"includedNamespaces": ["*"]}) or "")
    assert "cluster-scoped" in (cluster_wide({"includedNamespaces": ["a"], "includeClusterResources": True}) or "")
    assert cluster_wide({"includedNamespaces": ["a"], "includedClusterScopedResources": ["storageclasses"]})


# ----------------------------------------------------------------------------------- policy selection


def test_label_selector_matching() -> None:
    labels = {"app": "shop", "tier": "db"}
    assert matches_selector(labels, None) and matches_selector(labels, {})
    assert matches_selector(labels, {"matchLabels": {"app": "shop"}})
    assert not matches_selector(labels, {"matchLabels": {"app": "web"}})
    expressions = [
        ({"key": "tier", "operator": "In", "values": ["db", "cache"]}, True),
        ({"key": "tier", "operator": "NotIn", "values": ["db"]}, False),
        ({"key": "app", "operator": "Exists"}, True),
        ({"key": "env", "operator": "Exists"}, False),
        ({"key": "env", "operator": "DoesNotExist"}, True),
        ({"key": "env", "operator": "In", "values": ["prod"]}, False),
    ]
    for requirement, expected in expressions:
        assert matches_selector(labels, {"matchExpressions": [requirement]}) is expected, requirement


def test_latest_and_random_of_last_n_are_deterministic() -> None:
    backups = [backup(f"b{i}", i) for i in range(1, 11)]
    assert names([policy_selection(backups, "Latest", 5, seed="x")])[0] == "b10"  # type: ignore[list-item]
    picks = {policy_selection(backups, "RandomOfLastN", 3, seed=f"uid/{i}")["metadata"]["name"] for i in range(50)}  # type: ignore[index]
    assert picks == {"b8", "b9", "b10"}
    again = policy_selection(backups, "RandomOfLastN", 3, seed="uid/7")
    assert again == policy_selection(list(reversed(backups)), "RandomOfLastN", 3, seed="uid/7")
    assert policy_selection([], "Latest", 5, seed="x") is None


# ----------------------------------------------------------------------------------- cron


def test_due_run_is_the_most_recent_run_after_the_last_one() -> None:
    every_5 = CronSchedule.parse("*/5 * * * *")
    due = due_run(every_5, last=T0, now=T0 + timedelta(minutes=17))
    assert due.run == T0 + timedelta(minutes=15)  # 3 missed runs collapse into the latest
    assert due.next_run == T0 + timedelta(minutes=20)
    assert due_run(every_5, last=T0 + timedelta(minutes=15), now=T0 + timedelta(minutes=17)).run is None
    exactly = due_run(every_5, last=T0, now=T0 + timedelta(minutes=5))
    assert exactly.run == T0 + timedelta(minutes=5)  # a run at exactly now is due
    assert exactly.next_run == T0 + timedelta(minutes=10)


def test_time_zone_and_macros() -> None:
    berlin = CronSchedule.parse("30 4 * * *", "Europe/Berlin")
    assert berlin.next_after(T0) == datetime(2026, 1, 10, 3, 30, tzinfo=UTC)  # 04:30 CET
    assert berlin.next_after(datetime(2026, 7, 1, tzinfo=UTC)) == datetime(2026, 7, 1, 2, 30, tzinfo=UTC)  # CEST
    assert CronSchedule.parse("@hourly").next_after(T0) == T0 + timedelta(hours=1)
    assert CronSchedule.parse("  0  4 * * 1-5 ").expression == "0 4 * * 1-5"


@pytest.mark.parametrize(
    ("expression", "zone"),
    [
        ("* * * *", None),
        ("0 * * * * *", None),
        ("61 * * * *", None),
        ("@reboot", None),
        ("0 0 30 2 *", None),
        ("0 4 * * *", "Mars/Base"),
    ],
)
def test_invalid_schedules_are_refused(expression: str, zone: str | None) -> None:
    with pytest.raises(InvalidSchedule):
        CronSchedule.parse(expression, zone)


def test_starting_deadline() -> None:
    assert not too_late(T0, T0 + timedelta(hours=5), None)
    assert not too_late(T0, T0 + timedelta(seconds=60), 60)
    assert too_late(T0, T0 + timedelta(seconds=61), 60)


# ----------------------------------------------------------------------------------- templates


def policy(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "lazarus.io/v1alpha1",
        "kind": "BackupTestPolicy",
        "metadata": {"name": "shop", "namespace": "team-a", "uid": "policy-uid"},
        "spec": {"template": {"metadata": {"labels": {"team": "shop", "lazarus.io/created-by": "me"}},
                              "spec": {"ttl": "1h"}}, **spec},
    }  # fmt: skip


def test_template_makes_the_test_and_lazarus_labels_win() -> None:
    template = RestoreTestTemplate.from_policy(policy())
    body = template.test_body("b1", backup("b1", 1), created_by="policy", owned_by_policy=True)
    assert body["metadata"]["namespace"] == "team-a"
    assert body["metadata"]["labels"] == {
        "team": "shop",
        "lazarus.io/created-by": "policy",
        "lazarus.io/backup-name": "b1",
        "lazarus.io/schedule-name": "daily",
        "lazarus.io/policy-name": "shop",
    }
    assert body["spec"] == {"ttl": "1h", "backupName": "b1", "backupNamespace": "velero"}
    (owner,) = body["metadata"]["ownerReferences"]
    assert owner["uid"] == "policy-uid" and owner["controller"] is True
    default = RestoreTestTemplate(namespace="lazarus-system").test_body("b1", backup("b1", 1), created_by="x")
    assert default["spec"] == {"backupName": "b1", "backupNamespace": "velero"}
    assert "ownerReferences" not in default["metadata"]


def test_template_phases_and_cluster_wide_opt_in() -> None:
    default = RestoreTestTemplate(namespace="lazarus-system")
    assert default.tests_phase("Completed")
    assert not any(default.tests_phase(p) for p in ("PartiallyFailed", "Failed", "FailedValidation", "InProgress"))
    lenient = RestoreTestTemplate.from_policy(
        policy(testFailedBackups=True, allowClusterWideBackups=True, template={"spec": {"allowPartiallyFailed": True}})
    )
    assert all(lenient.tests_phase(p) for p in ("Completed", "PartiallyFailed", "Failed"))
    whole_cluster = backup("all", 1, includedNamespaces=["*"])
    assert "allowClusterWideBackups" in (default.refusal(whole_cluster) or "")
    assert lenient.refusal(whole_cluster) is None and default.refusal(backup("b1", 1)) is None


def test_an_unsafe_template_is_invalid() -> None:
    bad = policy(template={"spec": {"restore": {"includedResources": ["ingresses"]}}})
    with pytest.raises(InvalidTemplate, match="ingresses"):
        RestoreTestTemplate.from_policy(bad)


def test_a_backup_that_did_not_complete_is_explained_by_what_velero_said() -> None:
    def backup(**status: object) -> dict[str, object]:
        return {"metadata": {"name": "nightly-1"}, "status": status}

    assert velero_findings(backup(phase="Failed")) == ""
    assert velero_findings(backup(phase="PartiallyFailed", errors=2)) == (
        " with 2 errors and 0 warnings (velero backup logs nightly-1)"
    )
    invalid = backup(phase="FailedValidation", validationErrors=["location 'x' not found", "bad selector"])
    assert velero_findings(invalid) == ": location 'x' not found; bad selector"
