"""The backup-trigger and policy controllers, sample-controller style: preload the informer
caches, call ``sync`` directly, assert the exact API writes. Cron time comes from an injected
``now`` and the queue runs on a ``FakeClock``, so nothing waits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from lazarus.controllers.backuptrigger import BackupTriggerReconciler, group_key
from lazarus.controllers.base import PermanentError
from lazarus.controllers.context import Context
from lazarus.controllers.policy import PolicyReconciler
from lazarus.informers import (
    BACKUP_TEST_POLICIES,
    BACKUPS,
    LAZARUS_RESTORE_TESTS,
    SCHEDULES,
    SharedInformerFactory,
)
from lazarus.informers.informer import _deliver
from lazarus.kube.client import ApiError
from lazarus.settings import Settings
from tests.fakeclock import FakeClock

NOW = datetime(2026, 1, 10, 4, 7, 30, tzinfo=UTC)
TESTS_PATH = "/apis/lazarus.io/v1alpha1/namespaces/{}/lazarusrestoretests"


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeRest:
    """Records every request; POSTs of a name in ``existing`` answer 409."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, Any] | None]] = []
        self.existing: set[str] = set()

    def request(self, method: str, path: str, *, body: dict[str, Any] | None = None, **_: Any) -> dict[str, Any]:
        self.requests.append((method, path, body))
        if method == "POST" and body and body.get("kind") == "LazarusRestoreTest":
            if body["metadata"]["name"] in self.existing:
                raise ApiError(409, "AlreadyExists")
            self.existing.add(body["metadata"]["name"])
        return body or {}

    def writes(self, method: str, path_part: str = "") -> list[dict[str, Any]]:
        return [body or {} for m, path, body in self.requests if m == method and path_part in path]

    def created_tests(self) -> list[tuple[str, str]]:
        return [(b["metadata"]["namespace"], b["metadata"]["name"]) for b in self.writes("POST", "lazarusrestoretests")]

    def events(self) -> list[tuple[str, str, str]]:
        """(involved object name, type, reason) of the recorded Events."""
        return [(b["involvedObject"]["name"], b["type"], b["reason"]) for b in self.writes("POST", "/events")]


def holds_the_lease() -> bool:
    """The ``Context.leading`` of these tests: the only replica, always leading (these controllers
    do not ask it; the restore-test fixture tests a replica that loses the lease)."""
    return True


def make_context(rest: FakeRest) -> Context:
    settings = Settings(namespace="lazarus-system", identity="unit", velero_namespace="velero")
    informers = SharedInformerFactory(lister_watcher=None)  # type: ignore[arg-type]  # never started
    return Context(settings, rest, informers, leading=holds_the_lease)  # type: ignore[arg-type]


def preload(context: Context, resource: Any, *objects: dict[str, Any]) -> None:
    namespace = "velero" if resource in (BACKUPS, SCHEDULES) else None
    store = context.informers.informer_for(resource, namespace=namespace).store
    for obj in objects:
        store.add(obj)


def backup(name: str, minute: int, phase: str = "Completed", schedule: str | None = "daily", **extra: Any) -> dict:
    """A Backup that finished ``minute`` minutes after 03:00 on NOW's day."""
    done = stamp(datetime(2026, 1, 10, 3, 0, tzinfo=UTC) + timedelta(minutes=minute))
    labels = {"velero.io/schedule-name": schedule} if schedule else {}
    labels.update(extra.pop("labels", {}))
    return {
        "apiVersion": "velero.io/v1", "kind": "Backup",
        "metadata": {"name": name, "namespace": "velero", "uid": f"uid-{name}", "creationTimestamp": done,
                     "labels": labels, "annotations": extra.pop("annotations", {})},
        "spec": {"includedNamespaces": ["shop"], **extra},
        "status": {"phase": phase, "completionTimestamp": done, "startTimestamp": done},
    }  # fmt: skip


def schedule(name: str = "daily", **annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": "velero.io/v1", "kind": "Schedule",
        "metadata": {"name": name, "namespace": "velero", "uid": f"uid-{name}", "annotations": annotations},
        "spec": {"schedule": "0 3 * * *", "template": {"includedNamespaces": ["shop"]}},
    }  # fmt: skip


OPTED_IN = {"lazarus.io/validate": "true"}


def policy(name: str = "shop", namespace: str = "team-a", status: dict | None = None, **spec: Any) -> dict:
    return {
        "apiVersion": "lazarus.io/v1alpha1", "kind": "BackupTestPolicy",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "resourceVersion": "5",
                     "generation": 1, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"template": {"metadata": {"labels": {"team": "shop"}}, "spec": {"ttl": "1h"}}, **spec},
        "status": status or {},
    }  # fmt: skip


def lrt(name: str, namespace: str, backup_name: str, phase: str = "", *, owner: dict | None = None,
        created_by: str = "backup-trigger", completed: str | None = None) -> dict:  # fmt: skip
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "uid": f"uid-{name}",
                                "creationTimestamp": "2026-01-10T00:00:00Z",
                                "labels": {"lazarus.io/created-by": created_by}}  # fmt: skip
    if owner is not None:
        metadata["ownerReferences"] = [{"kind": "BackupTestPolicy", "name": owner["metadata"]["name"],
                                        "uid": owner["metadata"]["uid"], "controller": True}]  # fmt: skip
    status = {"phase": phase} if phase else {}
    if completed:
        status["completionTime"] = completed
    return {"metadata": metadata, "spec": {"backupName": backup_name, "backupNamespace": "velero"}, "status": status}


# =================================================================================== backup trigger


@pytest.fixture
def trigger() -> Iterator[tuple[BackupTriggerReconciler, FakeRest, Context]]:
    rest = FakeRest()
    context = make_context(rest)
    reconciler = BackupTriggerReconciler(context)
    yield reconciler, rest, context
    reconciler.controller.shutdown()


def test_opted_in_schedule_gets_one_test_per_new_backup(trigger: Any) -> None:
    reconciler, rest, context = trigger
    preload(context, SCHEDULES, schedule(**OPTED_IN))
    preload(context, BACKUPS, backup("daily-1", 1))
    reconciler.sync("schedule:velero/daily")
    assert rest.created_tests() == [("lazarus-system", "daily-1")]
    (body,) = rest.writes("POST", "lazarusrestoretests")
    assert body["spec"] == {"backupName": "daily-1", "backupNamespace": "velero"}  # the default template
    assert body["metadata"]["labels"]["lazarus.io/created-by"] == "backup-trigger"
    assert rest.events() == [("daily", "Normal", "TestCreated")]

    preload(context, LAZARUS_RESTORE_TESTS, lrt("daily-1", "lazarus-system", "daily-1"))
    preload(context, BACKUPS, backup("daily-2", 2, "InProgress"))
    reconciler.sync("schedule:velero/daily")
    assert rest.created_tests() == [("lazarus-system", "daily-1")]  # a running backup waits
    preload(context, BACKUPS, backup("daily-2", 2), backup("daily-3", 3))
    reconciler.sync("schedule:velero/daily")
    reconciler.sync("schedule:velero/daily")  # again, before the cache shows the new tests
    assert rest.created_tests() == [("lazarus-system", "daily-1"), ("lazarus-system", "daily-2"),
                                    ("lazarus-system", "daily-3")]  # fmt: skip


def test_first_opt_in_tests_the_newest_backup_only(trigger: Any) -> None:
    reconciler, rest, context = trigger
    preload(context, SCHEDULES, schedule(**OPTED_IN))
    preload(context, BACKUPS, *(backup(f"daily-{i}", i) for i in range(1, 6)))
    reconciler.sync("schedule:velero/daily")
    assert rest.created_tests() == [("lazarus-system", "daily-5")]


def test_an_existing_test_is_success_not_a_second_test(trigger: Any) -> None:
    reconciler, rest, context = trigger
    rest.existing.add("daily-1")  # made by a previous leader; not in this cache yet
    preload(context, SCHEDULES, schedule(**OPTED_IN))
    preload(context, BACKUPS, backup("daily-1", 1))
    reconciler.sync("schedule:velero/daily")
    assert len(rest.writes("POST", "lazarusrestoretests")) == 1
    assert rest.events() == []


def test_every_nth_backup(trigger: Any) -> None:
    reconciler, rest, context = trigger
    preload(context, SCHEDULES, schedule(**OPTED_IN, **{"lazarus.io/test-every": "2"}))
    preload(context, LAZARUS_RESTORE_TESTS, lrt("daily-1", "lazarus-system", "daily-1"))
    preload(context, BACKUPS, *(backup(f"daily-{i}", i) for i in range(1, 7)))
    reconciler.sync("schedule:velero/daily")
    assert [name for _, name in rest.created_tests()] == ["daily-3", "daily-5"]


def test_unannotated_schedule_tests_only_labelled_backups(trigger: Any) -> None:
    reconciler, rest, context = trigger
    preload(context, SCHEDULES, schedule())
    labelled = backup("daily-2", 2, labels={"backup-type": "validation"})
    preload(context, BACKUPS, backup("daily-1", 1), labelled, backup("daily-3", 3))
    reconciler.sync("schedule:velero/daily")
    assert rest.created_tests() == [("lazarus-system", "daily-2")]


def test_labelled_backup_without_schedule_uses_its_own_policy(trigger: Any) -> None:
    reconciler, rest, context = trigger
    preload(context, BACKUP_TEST_POLICIES, policy())
    manual = backup("manual", 1, schedule=None, labels={"backup-type": "validation"},
                    annotations={"lazarus.io/test-policy": "team-a/shop"})  # fmt: skip
    preload(context, BACKUPS, manual)
    assert group_key(manual) == "backup:velero/manual"
    reconciler.sync("backup:velero/manual")
    (body,) = rest.writes("POST", "lazarusrestoretests")
    assert (body["metadata"]["namespace"], body["metadata"]["name"]) == ("team-a", "manual")
    assert body["spec"]["ttl"] == "1h" and body["metadata"]["labels"]["team"] == "shop"
    assert "ownerReferences" not in body["metadata"]  # not a run of the policy: no pruning, no GC


def test_missing_policy_is_reported_once_and_nothing_is_created(trigger: Any) -> None:
    reconciler, rest, context = trigger
    preload(context, SCHEDULES, schedule(**OPTED_IN, **{"lazarus.io/test-policy": "nope"}))
    preload(context, BACKUPS, backup("daily-1", 1))
    for _ in range(2):
        with pytest.raises(PermanentError, match="lazarus-system/nope does not exist"):
            reconciler.sync("schedule:velero/daily")
    assert rest.created_tests() == []
    assert rest.events() == [("daily", "Warning", "PolicyNotFound")]
    # The policy appearing brings the Schedule's key back.
    preload(context, BACKUP_TEST_POLICIES, policy("nope", "lazarus-system"))
    assert reconciler._keys_naming_policy(policy("nope", "lazarus-system")) == ["schedule:velero/daily"]
    reconciler.sync("schedule:velero/daily")
    assert rest.created_tests() == [("lazarus-system", "daily-1")]


@pytest.mark.parametrize(
    ("annotations", "reason"),
    [({"lazarus.io/test-every": "-1"}, "InvalidAnnotation"), ({"lazarus.io/test-policy": "bad"}, "InvalidTemplate")],
)
def test_bad_input_is_an_event_on_the_schedule(trigger: Any, annotations: dict[str, str], reason: str) -> None:
    reconciler, rest, context = trigger
    unsafe = policy("bad", "lazarus-system", template={"spec": {"restore": {"includedResources": ["ingresses"]}}})
    preload(context, BACKUP_TEST_POLICIES, unsafe)
    preload(context, SCHEDULES, schedule(**OPTED_IN, **annotations))
    preload(context, BACKUPS, backup("daily-1", 1))
    with pytest.raises(PermanentError):
        reconciler.sync("schedule:velero/daily")
    assert rest.created_tests() == []
    assert rest.events() == [("daily", "Warning", reason)]


def test_failed_backups_are_reported_and_tested_only_when_the_policy_says_so(trigger: Any) -> None:
    def failed_count() -> float:
        labels = {"phase": "Failed", "schedule": "daily"}
        return REGISTRY.get_sample_value("lazarus_backups_unsuccessful_total", labels) or 0.0

    before = failed_count()
    reconciler, rest, context = trigger
    preload(context, SCHEDULES, schedule(**OPTED_IN))
    preload(context, LAZARUS_RESTORE_TESTS, lrt("daily-1", "lazarus-system", "daily-1"))
    partially_failed = backup("daily-3", 3, "PartiallyFailed")
    partially_failed["status"]["errors"] = 2
    preload(context, BACKUPS, backup("daily-1", 1), backup("daily-2", 2, "Failed"), partially_failed)
    reconciler.sync("schedule:velero/daily")
    reconciler.sync("schedule:velero/daily")
    assert rest.created_tests() == []
    assert rest.events() == [("daily-2", "Warning", "BackupUnsuccessful"), ("daily-3", "Warning", "BackupUnsuccessful")]
    assert rest.writes("POST", "/events")[1]["message"] == (
        "backup daily-3 ended PartiallyFailed with 2 errors and 0 warnings (velero backup logs daily-3); "
        "it is not tested (the default template)"
    )
    assert failed_count() == before + 1

    lenient = policy("lenient", "lazarus-system", testFailedBackups=True,
                     template={"spec": {"allowPartiallyFailed": True}})  # fmt: skip
    preload(context, BACKUP_TEST_POLICIES, lenient)
    preload(context, SCHEDULES, schedule(**OPTED_IN, **{"lazarus.io/test-policy": "lenient"}))
    reconciler.sync("schedule:velero/daily")
    assert [name for _, name in rest.created_tests()] == ["daily-2", "daily-3"]
    partial = rest.writes("POST", "lazarusrestoretests")[1]
    assert partial["spec"]["allowPartiallyFailed"] is True


def test_whole_cluster_backups_need_a_policy_that_allows_them(trigger: Any) -> None:
    reconciler, rest, context = trigger
    preload(context, SCHEDULES, schedule(**OPTED_IN))
    preload(context, BACKUPS, backup("daily-1", 1, includedNamespaces=["*"]))
    reconciler.sync("schedule:velero/daily")
    assert rest.created_tests() == []
    assert rest.events() == [("daily", "Warning", "BackupNotTested")]
    preload(context, BACKUP_TEST_POLICIES, policy("wide", "lazarus-system", allowClusterWideBackups=True))
    preload(context, SCHEDULES, schedule(**OPTED_IN, **{"lazarus.io/test-policy": "wide"}))
    reconciler.sync("schedule:velero/daily")
    assert rest.created_tests() == [("lazarus-system", "daily-1")]


def test_long_backup_names_get_bounded_test_names(trigger: Any) -> None:
    reconciler, rest, context = trigger
    long_name = "a-very-long-schedule-name-that-velero-accepts-" + "x" * 30 + "-20260110030000"
    preload(context, BACKUPS, backup(long_name, 1, schedule=None, labels={"backup-type": "validation"}))
    reconciler.sync(f"backup:velero/{long_name}")
    ((_, name),) = rest.created_tests()
    assert len(name) <= 63 and name != long_name
    (body,) = rest.writes("POST", "lazarusrestoretests")
    assert body["metadata"]["annotations"]["lazarus.io/backup"] == long_name


# =================================================================================== policy


@pytest.fixture
def policies() -> Iterator[Any]:
    rest, clock = FakeRest(), FakeClock()
    context = make_context(rest)
    now = {"value": NOW}
    reconciler = PolicyReconciler(context, now=lambda: now["value"], clock=clock)
    yield reconciler, rest, context, clock, now
    reconciler.controller.shutdown()


def status_writes(rest: FakeRest) -> list[dict[str, Any]]:
    return [b["status"] for b in rest.writes("PATCH", "/status")]


def condition(status: dict[str, Any]) -> tuple[str, str]:
    (ready,) = status["conditions"]
    return ready["status"], ready["reason"]


def wait_for_key(reconciler: PolicyReconciler, clock: FakeClock, seconds: float) -> bool:
    """Step the queue's clock; True if the key came back. The queue's delay thread, woken by the
    step, adds every key that is due before it parks on the clock again: then the queue is final."""
    clock.wait_for_waiters()
    clock.step(seconds)
    clock.wait_for_waiters()
    return reconciler.controller.queue.len() == 1


def test_due_run_creates_one_owned_test_and_schedules_the_next(policies: Any) -> None:
    reconciler, rest, context, clock, _ = policies
    last = stamp(datetime(2026, 1, 10, 3, 30, tzinfo=UTC))
    preload(context, BACKUP_TEST_POLICIES, policy(schedule="0 * * * *", status={"lastScheduleTime": last}))
    preload(context, BACKUPS, backup("daily-1", 1), backup("daily-2", 2), backup("other-9", 9, schedule="other"))
    reconciler.sync("team-a/shop")
    (body,) = rest.writes("POST", "lazarusrestoretests")
    assert (body["metadata"]["namespace"], body["metadata"]["name"]) == ("team-a", "shop-202601100400")
    assert body["spec"]["backupName"] == "other-9"  # Latest, no selector
    assert body["metadata"]["ownerReferences"][0]["uid"] == "uid-shop"
    assert body["metadata"]["annotations"]["lazarus.io/scheduled-time"] == "2026-01-10T04:00:00Z"
    (status,) = status_writes(rest)
    assert status["lastScheduleTime"] == "2026-01-10T04:00:00Z"
    assert status["nextScheduleTime"] == "2026-01-10T05:00:00Z"
    assert status["active"] == [{"name": "shop-202601100400"}]
    assert condition(status) == ("True", "Scheduled")
    assert ("shop", "Normal", "TestCreated") in rest.events()
    # The next run is 52.5 minutes away: the key comes back then (add_after), not before.
    assert not wait_for_key(reconciler, clock, 52 * 60)
    assert wait_for_key(reconciler, clock, 31)


def test_a_restarted_operator_finds_the_run_done(policies: Any) -> None:
    reconciler, rest, context, _, _ = policies
    shop = policy(schedule="0 * * * *", status={"lastScheduleTime": "2026-01-10T03:00:00Z"})
    preload(context, BACKUP_TEST_POLICIES, shop)
    preload(context, BACKUPS, backup("daily-1", 1))
    preload(context, LAZARUS_RESTORE_TESTS, lrt("shop-202601100400", "team-a", "daily-1", owner=shop))
    reconciler.sync("team-a/shop")
    assert rest.writes("POST", "lazarusrestoretests") == []
    (status,) = status_writes(rest)
    assert status["lastScheduleTime"] == "2026-01-10T04:00:00Z"


def test_missed_runs_collapse_into_one_within_the_starting_deadline(policies: Any) -> None:
    reconciler, rest, context, _, now = policies
    down_since = {"lastScheduleTime": "2026-01-09T22:00:00Z"}  # 6 hourly runs missed
    preload(context, BACKUP_TEST_POLICIES, policy(schedule="0 * * * *", startingDeadlineSeconds=600, status=down_since))
    preload(context, BACKUPS, backup("daily-1", 1))
    reconciler.sync("team-a/shop")
    assert rest.created_tests() == [("team-a", "shop-202601100400")]  # 7.5 min late: within 600 s

    rest.requests.clear()
    now["value"] = NOW + timedelta(minutes=5)  # the 04:00 run is now 12.5 min late
    preload(context, BACKUP_TEST_POLICIES, policy("late", schedule="0 * * * *", startingDeadlineSeconds=600,
                                                  status=down_since))  # fmt: skip
    reconciler.sync("team-a/late")
    assert rest.created_tests() == []
    assert rest.events() == [("late", "Warning", "MissedSchedule")]
    (status,) = status_writes(rest)
    assert status["lastScheduleTime"] == "2026-01-09T22:00:00Z"


def test_new_policy_does_not_run_for_times_before_it_existed(policies: Any) -> None:
    reconciler, rest, context, _, _ = policies
    fresh = policy(schedule="0 4 * * *")
    fresh["metadata"]["creationTimestamp"] = "2026-01-10T04:05:00Z"
    preload(context, BACKUP_TEST_POLICIES, fresh)
    preload(context, BACKUPS, backup("daily-1", 1))
    reconciler.sync("team-a/shop")
    assert rest.created_tests() == []
    (status,) = status_writes(rest)
    assert "lastScheduleTime" not in status or status["lastScheduleTime"] is None
    assert status["nextScheduleTime"] == "2026-01-11T04:00:00Z"


@pytest.mark.parametrize("concurrency", ["Forbid", "Allow", "Replace"])
def test_concurrency_policy(policies: Any, concurrency: str) -> None:
    reconciler, rest, context, _, _ = policies
    shop = policy(schedule="0 * * * *", concurrencyPolicy=concurrency,
                  status={"lastScheduleTime": "2026-01-10T03:00:00Z"})  # fmt: skip
    preload(context, BACKUP_TEST_POLICIES, shop)
    preload(context, BACKUPS, backup("daily-1", 1))
    preload(context, LAZARUS_RESTORE_TESTS, lrt("shop-202601100300", "team-a", "daily-1", "Restoring", owner=shop))
    reconciler.sync("team-a/shop")
    created = rest.created_tests()
    deleted = [path.rsplit("/", 1)[-1] for m, path, _ in rest.requests if m == "DELETE"]
    (status,) = status_writes(rest)
    if concurrency == "Forbid":
        assert created == [] and deleted == []
        assert ("shop", "Warning", "ConcurrencyForbidden") in rest.events()
        assert status["active"] == [{"name": "shop-202601100300"}]
        assert status["lastScheduleTime"] == "2026-01-10T03:00:00Z"
    elif concurrency == "Allow":
        assert created == [("team-a", "shop-202601100400")] and deleted == []
        assert status["active"] == [{"name": "shop-202601100300"}, {"name": "shop-202601100400"}]
    else:
        assert created == [("team-a", "shop-202601100400")] and deleted == ["shop-202601100300"]
        assert status["active"] == [{"name": "shop-202601100400"}]


def test_suspended_policy_starts_nothing_and_waits_for_no_run(policies: Any) -> None:
    reconciler, rest, context, clock, _ = policies
    preload(context, BACKUP_TEST_POLICIES, policy(schedule="* * * * *", suspend=True))
    preload(context, BACKUPS, backup("daily-1", 1))
    reconciler.sync("team-a/shop")
    assert rest.created_tests() == []
    (status,) = status_writes(rest)
    assert condition(status) == ("True", "Suspended") and status["nextScheduleTime"] is None
    assert not wait_for_key(reconciler, clock, 3600)


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"schedule": "every day"}, "InvalidSchedule"),
        ({"schedule": "0 4 * * *", "timeZone": "Mars/Base"}, "InvalidSchedule"),
        ({"schedule": "0 4 * * *", "template": {"spec": {"restore": {"includedResources": ["ingress"]}}}},
         "InvalidTemplate"),
        ({"schedule": "0 4 * * *", "backupNamespace": "other"}, "InvalidSpec"),
    ],
)  # fmt: skip
def test_invalid_policy_gets_a_condition_and_an_event_and_creates_nothing(
    policies: Any, spec: dict[str, Any], reason: str
) -> None:
    reconciler, rest, context, _, _ = policies
    preload(context, BACKUP_TEST_POLICIES, policy(**spec))
    preload(context, BACKUPS, backup("daily-1", 1))
    with pytest.raises(PermanentError):
        reconciler.sync("team-a/shop")
    assert rest.created_tests() == []
    (status,) = status_writes(rest)
    assert condition(status) == ("False", reason)
    assert rest.events() == [("shop", "Warning", reason)]


def test_history_limits_prune_the_oldest_finished_tests(policies: Any) -> None:
    reconciler, rest, context, _, _ = policies
    shop = policy(schedule="0 4 * * *", successfulTestsHistoryLimit=2, failedTestsHistoryLimit=1,
                  status={"lastScheduleTime": "2026-01-10T04:00:00Z"})  # fmt: skip
    preload(context, BACKUP_TEST_POLICIES, shop)
    tests = [lrt(f"ok-{d}", "team-a", "b", "Succeeded", owner=shop, completed=f"2026-01-0{d}T05:00:00Z")
             for d in range(1, 5)]  # fmt: skip
    tests += [lrt(f"bad-{d}", "team-a", "b", "Failed", owner=shop, completed=f"2026-01-0{d}T05:00:00Z")
              for d in range(1, 4)]  # fmt: skip
    tests.append(lrt("running", "team-a", "b", "Checking", owner=shop))
    tests.append(lrt("not-ours", "team-a", "b", "Succeeded", completed="2026-01-01T00:00:00Z"))
    preload(context, LAZARUS_RESTORE_TESTS, *tests)
    reconciler.sync("team-a/shop")
    deletes = [(path.rsplit("/", 1)[-1], body) for m, path, body in rest.requests if m == "DELETE"]
    assert sorted(name for name, _ in deletes) == ["bad-1", "bad-2", "ok-1", "ok-2"]
    assert all(body and body["preconditions"]["uid"] == f"uid-{name}" for name, body in deletes)
    (status,) = status_writes(rest)
    assert status["lastSuccessfulTime"] == "2026-01-04T05:00:00Z"
    assert status["active"] == [{"name": "running"}]


def test_selection_by_schedule_and_labels_and_cluster_wide_opt_in(policies: Any) -> None:
    reconciler, rest, context, _, _ = policies
    selector = {"scheduleName": "daily", "labelSelector": {"matchLabels": {"tier": "db"}}}
    preload(context, BACKUP_TEST_POLICIES, policy(schedule="0 * * * *", backupSelector=selector,
                                                  status={"lastScheduleTime": "2026-01-10T03:00:00Z"}))  # fmt: skip
    preload(context, BACKUPS,
            backup("daily-1", 1, labels={"tier": "db"}),
            backup("daily-2", 2, labels={"tier": "web"}),
            backup("daily-3", 3, "PartiallyFailed", labels={"tier": "db"}),
            backup("daily-4", 4, labels={"tier": "db"}, includedNamespaces=["*"]),
            backup("other-5", 5, schedule="other", labels={"tier": "db"}))  # fmt: skip
    reconciler.sync("team-a/shop")
    (body,) = rest.writes("POST", "lazarusrestoretests")
    assert body["spec"]["backupName"] == "daily-1"


def test_no_usable_backup_is_reported_once_per_run(policies: Any) -> None:
    reconciler, rest, context, _, _ = policies
    preload(context, BACKUP_TEST_POLICIES, policy(schedule="0 * * * *",
                                                  status={"lastScheduleTime": "2026-01-10T03:00:00Z"}))  # fmt: skip
    preload(context, BACKUPS, backup("all-1", 1, includedNamespaces=[]))
    reconciler.sync("team-a/shop")
    cached = context.informers.informer_for(BACKUP_TEST_POLICIES).store.get_by_key("team-a/shop")
    preload(context, BACKUP_TEST_POLICIES, {**cached, "status": status_writes(rest)[-1]})  # the watch event
    reconciler.sync("team-a/shop")
    assert rest.created_tests() == []
    assert rest.events() == [("shop", "Warning", "NoBackupFound")]
    assert len(status_writes(rest)) == 1  # the second sync changed nothing: no write


def test_a_policy_without_schedule_only_supplies_a_template(policies: Any) -> None:
    reconciler, rest, context, clock, _ = policies
    preload(context, BACKUP_TEST_POLICIES, policy())
    reconciler.sync("team-a/shop")
    (status,) = status_writes(rest)
    assert condition(status) == ("True", "NoSchedule")
    assert rest.created_tests() == []
    assert not wait_for_key(reconciler, clock, 86400)


def deliver_delete(context: Context, resource: Any, obj: dict[str, Any]) -> None:
    """The watch reports ``obj`` deleted: the cache drops it and the handlers hear of it."""
    namespace = "velero" if resource in (BACKUPS, SCHEDULES) else None
    distributor = context.informers.informer_for(resource, namespace=namespace)._distributor
    distributor.delete(obj)
    while not distributor.queue.empty():
        _deliver(distributor.queue.get())


def test_what_was_reported_of_a_deleted_schedule_is_forgotten(trigger: Any) -> None:
    reconciler, rest, context = trigger
    bad = schedule(**OPTED_IN, **{"lazarus.io/test-every": "-1"})
    preload(context, SCHEDULES, bad)
    with pytest.raises(PermanentError):
        reconciler.sync("schedule:velero/daily")
    assert reconciler._reported
    deliver_delete(context, SCHEDULES, bad)
    assert reconciler._reported == {}


def test_what_was_noted_of_a_deleted_policy_is_forgotten(policies: Any) -> None:
    reconciler, rest, context, _, _ = policies
    noted = policy(schedule="0 * * * *", status={"lastScheduleTime": "2026-01-10T03:00:00Z"})
    preload(context, BACKUP_TEST_POLICIES, noted)
    preload(context, BACKUPS, backup("all-1", 1, includedNamespaces=[]))
    reconciler.sync("team-a/shop")
    assert reconciler._noted
    deliver_delete(context, BACKUP_TEST_POLICIES, noted)
    assert reconciler._noted == {} and reconciler._last_run == {}
