"""Automatic tests against the test bed: real ``lazarus run`` processes, real API objects.

Backups are created the way Velero writes them (the Backup CRD has no status subresource):
labelled ``velero.io/schedule-name``, with phase and timestamps in status, and without the
storage-location label (Velero's sync would delete them as orphans). Schedules are paused, so a
running Velero never makes backups of its own for them. The restore-test controller also acts
on the tests created here (without the backups' contents in object storage it cannot restore
them); these tests assert only what the backup-trigger and policy controllers do.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.integration.kube import VELERO_NAMESPACE, unique_name, wait_until
from tests.integration.operator_process import OperatorProcess, start_operator

pytestmark = pytest.mark.integration

GROUP, VERSION, TESTS, POLICIES = "lazarus.io", "v1alpha1", "lazarusrestoretests", "backuptestpolicies"
LEASE = ("--lease-duration", "6", "--renew-deadline", "4", "--retry-period", "1")
TIMEOUT = 120.0


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Bed:
    """Velero objects, operators and lookups for one test; ``close`` removes what it made."""

    def __init__(self, custom: client.CustomObjectsApi, core: client.CoreV1Api, namespace: str, logs: Path) -> None:
        self.custom, self.core, self.namespace, self.logs = custom, core, namespace, logs
        self.operators: list[OperatorProcess] = []
        self.velero: list[tuple[str, str]] = []
        self.base = datetime.now(UTC).replace(microsecond=0)

    # ------------------------------------------------------------------ Velero objects

    def schedule(self, name: str, **annotations: str) -> None:
        body = {
            "apiVersion": "velero.io/v1", "kind": "Schedule",
            "metadata": {"name": name, "namespace": VELERO_NAMESPACE, "annotations": annotations},
            "spec": {"schedule": "0 0 1 1 *", "paused": True,
                     "template": {"includedNamespaces": [self.namespace], "ttl": "24h0m0s"}},
        }  # fmt: skip
        self.custom.create_namespaced_custom_object("velero.io", "v1", VELERO_NAMESPACE, "schedules", body)
        self.velero.append(("schedules", name))

    def backup(
        self, name: str, second: int, *, schedule: str | None = None, phase: str = "Completed", **labels: str
    ) -> None:
        """A Backup as Velero leaves it, finished ``second`` seconds after the test began."""
        if schedule:
            labels["velero.io/schedule-name"] = schedule
        finished = self.base + timedelta(seconds=second)
        status: dict[str, Any] = {"phase": phase, "startTimestamp": stamp(finished - timedelta(seconds=1)),
                                  "expiration": stamp(finished + timedelta(days=1)), "version": 1}  # fmt: skip
        if phase not in ("New", "InProgress"):
            status["completionTimestamp"] = stamp(finished)
        body = {
            "apiVersion": "velero.io/v1", "kind": "Backup",
            "metadata": {"name": name, "namespace": VELERO_NAMESPACE, "labels": labels},
            "spec": {"includedNamespaces": [self.namespace], "ttl": "24h0m0s"},
            "status": status,
        }  # fmt: skip
        self.custom.create_namespaced_custom_object("velero.io", "v1", VELERO_NAMESPACE, "backups", body)
        self.velero.append(("backups", name))

    def set_backup_phase(self, name: str, phase: str) -> None:
        patch = {"status": {"phase": phase, "completionTimestamp": stamp(datetime.now(UTC))}}
        self.custom.patch_namespaced_custom_object("velero.io", "v1", VELERO_NAMESPACE, "backups", name, patch)

    # ------------------------------------------------------------------ Lazarus objects

    def policy(self, name: str, **spec: Any) -> dict[str, Any]:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "BackupTestPolicy",
                "metadata": {"name": name, "namespace": self.namespace},
                "spec": {"template": {"spec": {}}, **spec}}  # fmt: skip
        created: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, POLICIES, body
        )
        return created

    def get_policy(self, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, POLICIES, name)
        return obj

    def owned_test(self, name: str, owner: dict[str, Any], backup: str, **status: Any) -> None:
        """A test as a policy run makes it, with ``status`` written through /status."""
        reference = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "BackupTestPolicy", "controller": True,
                     "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"]}  # fmt: skip
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "LazarusRestoreTest",
                "metadata": {"name": name, "namespace": self.namespace, "ownerReferences": [reference]},
                "spec": {"backupName": backup}}  # fmt: skip
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, TESTS, body)
        if status:
            self.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, self.namespace, TESTS, name, {"status": status}
            )

    def tests(self, **labels: str) -> dict[str, dict[str, Any]]:
        """The tests in the test's namespace, by name (filtered by labels)."""
        selector = ",".join(f"{k}={v}" for k, v in labels.items()) or None
        items = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, TESTS, label_selector=selector
        )
        return {t["metadata"]["name"]: t for t in items["items"]}

    def tests_of_backups(self, backups: set[str]) -> list[tuple[str, str]]:
        """Every test of these backups anywhere in the cluster, as (namespace, name)."""
        items = self.custom.list_cluster_custom_object(GROUP, VERSION, TESTS)["items"]
        return sorted(
            (t["metadata"]["namespace"], t["metadata"]["name"]) for t in items if t["spec"]["backupName"] in backups
        )

    def event_reasons(self, namespace: str, name: str) -> list[str]:
        events = self.core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
        return [e.reason for e in events]

    # ------------------------------------------------------------------ operators

    def start(self, identity: str) -> OperatorProcess:
        operator = start_operator(identity, self.logs, "--namespace", self.namespace, *LEASE)
        self.operators.append(operator)
        return operator

    def leader(self, *candidates: OperatorProcess) -> OperatorProcess:
        return wait_until(
            "a leader", lambda: next((o for o in candidates if o.process.poll() is None and o.is_leader()), None), 30
        )

    def close(self) -> None:
        for operator in self.operators:
            operator.stop()
        for plural, name in self.velero:
            try:
                self.custom.delete_namespaced_custom_object("velero.io", "v1", VELERO_NAMESPACE, plural, name)
            except client.ApiException as exc:
                if exc.status != 404:
                    raise
        # No operator is left to remove the restore-test finalizers: let the namespace go.
        for name in self.tests():
            self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, TESTS, name, {"metadata": {"finalizers": None}}
            )


@pytest.fixture
def bed(
    lazarus_crds: list[str], custom: client.CustomObjectsApi, core: client.CoreV1Api, namespace: str, tmp_path: Path
) -> Iterator[Bed]:
    made = Bed(custom, core, namespace, tmp_path)
    yield made
    made.close()


# ======================================================================== Schedules and Backups


def test_opted_in_schedule_gets_one_test_per_completed_backup_and_others_none(bed: Bed) -> None:
    opted, plain = unique_name("opted"), unique_name("plain")
    bed.schedule(opted, **{"lazarus.io/validate": "true"})
    bed.schedule(plain)
    bed.start("solo")
    bed.backup(f"{opted}-01", 1, schedule=opted, phase="InProgress")
    bed.backup(f"{plain}-01", 1, schedule=plain)
    bed.backup(f"{plain}-02", 2, schedule=plain)
    bed.set_backup_phase(f"{opted}-01", "Completed")
    wait_until("the first test", lambda: f"{opted}-01" in bed.tests(), TIMEOUT)
    for i in (2, 3):
        bed.backup(f"{opted}-0{i}", i, schedule=opted)
    bed.backup(f"{opted}-04", 4, schedule=opted, phase="Failed")
    # A labelled backup of the plain Schedule is tested; when its test exists, the plain
    # Schedule's other backups have been decided on too (same key, same sync).
    bed.backup(f"{plain}-03", 3, schedule=plain, **{"backup-type": "validation"})
    wait_until("the tests", lambda: {f"{opted}-02", f"{opted}-03", f"{plain}-03"} <= set(bed.tests()), TIMEOUT)

    made = bed.tests(**{"lazarus.io/created-by": "backup-trigger"})
    assert sorted(made) == sorted([f"{opted}-01", f"{opted}-02", f"{opted}-03", f"{plain}-03"])
    assert made[f"{opted}-02"]["spec"]["backupName"] == f"{opted}-02"
    assert made[f"{opted}-02"]["metadata"]["labels"]["lazarus.io/schedule-name"] == opted
    wait_until("three events", lambda: bed.event_reasons(VELERO_NAMESPACE, opted).count("TestCreated") == 3, TIMEOUT)
    wait_until("the failed backup's report", lambda: "BackupUnsuccessful" in bed.event_reasons(
        VELERO_NAMESPACE, f"{opted}-04"), TIMEOUT)  # fmt: skip
    assert f"{opted}-04" not in bed.tests()


def test_restarts_and_leader_changes_mid_stream_create_no_duplicates(bed: Bed) -> None:
    schedule = unique_name("churn")
    bed.schedule(schedule, **{"lazarus.io/validate": "true"})
    a, b = bed.start("replica-a"), bed.start("replica-b")
    first = bed.leader(a, b)
    bed.backup(f"{schedule}-01", 1, schedule=schedule)
    wait_until("the first test", lambda: f"{schedule}-01" in bed.tests(), TIMEOUT)

    bed.backup(f"{schedule}-02", 2, schedule=schedule)
    bed.backup(f"{schedule}-03", 3, schedule=schedule)
    first.process.send_signal(signal.SIGKILL)  # mid-stream: it may be creating those tests
    bed.backup(f"{schedule}-04", 4, schedule=schedule)
    second = bed.leader(a, b)
    c = bed.start("replica-c")
    bed.backup(f"{schedule}-05", 5, schedule=schedule)
    second.process.send_signal(signal.SIGKILL)
    bed.backup(f"{schedule}-06", 6, schedule=schedule)
    bed.leader(a, b, c)
    expected = {f"{schedule}-0{i}" for i in range(1, 7)}
    wait_until("a test of every backup", lambda: expected <= set(bed.tests()), TIMEOUT)
    # A barrier: once a later backup's test exists, every earlier decision has been made.
    bed.backup(f"{schedule}-07", 7, schedule=schedule)
    wait_until("the barrier's test", lambda: f"{schedule}-07" in bed.tests(), TIMEOUT)
    expected.add(f"{schedule}-07")
    assert bed.tests_of_backups(expected) == sorted((bed.namespace, name) for name in expected)


def test_schedule_naming_a_missing_policy_gets_an_event_and_no_test(bed: Bed) -> None:
    schedule = unique_name("nopolicy")
    bed.schedule(schedule, **{"lazarus.io/validate": "true", "lazarus.io/test-policy": "does-not-exist"})
    bed.start("solo")
    bed.backup(f"{schedule}-01", 1, schedule=schedule)
    wait_until("the PolicyNotFound event", lambda: "PolicyNotFound" in bed.event_reasons(VELERO_NAMESPACE, schedule),
               TIMEOUT)  # fmt: skip
    assert bed.tests_of_backups({f"{schedule}-01"}) == []
    # The policy appearing brings the Schedule back: its backup is tested with the template.
    bed.policy("does-not-exist", template={"metadata": {"labels": {"team": "shop"}}, "spec": {"ttl": "5m"}})
    test = wait_until("the test", lambda: bed.tests().get(f"{schedule}-01"), TIMEOUT)
    assert test["spec"]["ttl"] == "5m" and test["metadata"]["labels"]["team"] == "shop"


# ======================================================================== BackupTestPolicy


def test_policy_fires_on_its_cron_and_prunes_history(bed: Bed) -> None:
    source = unique_name("src")
    bed.backup(f"{source}-01", 1, schedule=source)
    policy = bed.policy("every-minute", schedule="* * * * *", concurrencyPolicy="Allow",
                        failedTestsHistoryLimit=1, backupSelector={"scheduleName": source})  # fmt: skip
    for day in (1, 2, 3):
        bed.owned_test(f"old-{day}", policy, f"{source}-01", phase="Failed", completionTime=f"2026-01-0{day}T00:00:00Z")
    bed.start("solo")
    wait_until("history pruned to one failed test", lambda: not {"old-1", "old-2"} & set(bed.tests()), TIMEOUT)
    fired = wait_until("a run", lambda: [t for n, t in bed.tests().items() if n.startswith("every-minute-")], TIMEOUT)
    run = fired[0]
    assert run["spec"]["backupName"] == f"{source}-01"
    assert run["metadata"]["ownerReferences"][0]["uid"] == policy["metadata"]["uid"]
    assert run["metadata"]["labels"]["lazarus.io/created-by"] == "policy"
    scheduled = run["metadata"]["annotations"]["lazarus.io/scheduled-time"]
    assert run["metadata"]["name"] == "every-minute-" + scheduled[:16].translate(str.maketrans("", "", "-T:"))

    def last_schedule() -> str | None:
        return bed.get_policy("every-minute").get("status", {}).get("lastScheduleTime")

    wait_until("lastScheduleTime", lambda: (last_schedule() or "") >= scheduled, TIMEOUT)
    wait_until("the event", lambda: "TestCreated" in bed.event_reasons(bed.namespace, "every-minute"), TIMEOUT)


def test_forbid_skips_while_a_test_runs_and_starts_once_it_ended(bed: Bed) -> None:
    source = unique_name("src")
    bed.backup(f"{source}-01", 1, schedule=source)
    bed.backup(f"{source}-running", 2, phase="InProgress")  # keeps the running test Pending
    policy = bed.policy("forbid", schedule="* * * * *", concurrencyPolicy="Forbid",
                        backupSelector={"scheduleName": source})  # fmt: skip
    bed.owned_test("running", policy, f"{source}-running")
    bed.start("solo")
    wait_until("a skipped run", lambda: "ConcurrencyForbidden" in bed.event_reasons(bed.namespace, "forbid"), 150)
    assert [n for n in bed.tests() if n.startswith("forbid-")] == []
    assert [a["name"] for a in bed.get_policy("forbid")["status"]["active"]] == ["running"]

    bed.set_backup_phase(f"{source}-running", "Failed")  # the running test fails, ending it
    started = wait_until("the skipped run to start", lambda: [n for n in bed.tests() if n.startswith("forbid-")],
                         TIMEOUT)  # fmt: skip
    assert len(started) == 1


def test_missed_run_within_the_deadline_runs_once_after_restart(bed: Bed) -> None:
    source = unique_name("src")
    bed.backup(f"{source}-01", 1, schedule=source)
    now = datetime.now(UTC)
    run = (now + timedelta(minutes=2 if now.second > 40 else 1)).replace(second=0, microsecond=0)
    hourly = f"{run.minute} * * * *"
    selector = {"scheduleName": source}
    bed.policy("catch-up", schedule=hourly, startingDeadlineSeconds=3600, backupSelector=selector)
    bed.policy("too-late", schedule=hourly, startingDeadlineSeconds=1, backupSelector=selector)
    first = bed.start("first")
    wait_until("the next run scheduled", lambda: bed.get_policy("catch-up").get("status", {}).get("nextScheduleTime")
               == stamp(run), 60)  # fmt: skip
    first.stop()  # down over the run time
    wait_until("the run time to pass", lambda: datetime.now(UTC) > run + timedelta(seconds=5), 200, interval=1)
    assert bed.tests() == {}

    second = bed.start("second")
    name = f"catch-up-{run:%Y%m%d%H%M}"
    wait_until("the missed run", lambda: name in bed.tests(), TIMEOUT)
    wait_until("the too-late run reported", lambda: "MissedSchedule" in bed.event_reasons(bed.namespace, "too-late"),
               TIMEOUT)  # fmt: skip
    second.stop()
    bed.start("third")  # a restart after the run started: nothing runs twice
    wait_until("status", lambda: bed.get_policy("catch-up")["status"].get("lastScheduleTime") == stamp(run), TIMEOUT)
    wait_until("the too-late policy's status", lambda: bed.get_policy("too-late").get("status", {}).get(
        "nextScheduleTime") == stamp(run + timedelta(hours=1)), TIMEOUT)  # fmt: skip
    assert sorted(bed.tests()) == [name]
    assert "lastScheduleTime" not in bed.get_policy("too-late")["status"]
