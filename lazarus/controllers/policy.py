"""The BackupTestPolicy controller: cron runs that test a selected backup, like a CronJob's Jobs.

Each sync of a policy, in order:

1. Validate: the cron expression and time zone (``automation.cron``), the template
   (``automation.template``), the backup namespace. Invalid → condition ``Ready=False`` with the
   reason (``InvalidSchedule``, ``InvalidTemplate``, ``InvalidSpec``), a Warning Event, nothing
   created, ``PermanentError`` (a spec change brings the key back).
2. Prune: finished tests of the policy beyond ``successfulTestsHistoryLimit`` /
   ``failedTestsHistoryLimit`` are deleted, oldest first (their finalizer cleans up).
3. Run: unless suspended, the most recent run time after ``lastScheduleTime`` (or the policy's
   creation) is due. After downtime the missed runs collapse into that one; it starts only
   within ``startingDeadlineSeconds``. ``concurrencyPolicy``: Allow starts it beside running
   tests, Forbid skips it while one runs (it starts late if the running test ends before the
   next run and the deadline allows, as with a CronJob), Replace deletes the running tests
   first. The backup is picked by ``automation.backups.policy_selection``.
4. Status through ``/status`` (only when it changed): ``lastScheduleTime``,
   ``lastSuccessfulTime``, ``nextScheduleTime``, ``active``, ``Ready``.
5. The key is added back at the next run time with the workqueue's ``add_after``: no polling.

No duplicates: a run's test is named ``<policy>-<run time>`` (``names.policy_run_name``) and is
owned by the policy, so a restart or a new leader finds the run done (in the cache, or by the
409 of its create) before it would start it again. Times come from an injectable ``now`` so the
cron logic can be tested without waiting.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from lazarus.api.v1alpha1 import TERMINAL_PHASES, BackupTestPolicySpec, ConcurrencyPolicy, Phase
from lazarus.automation.backups import (
    COMPLETED,
    PARTIALLY_FAILED,
    is_expired,
    is_terminal,
    matches_selector,
    phase,
    policy_selection,
)
from lazarus.automation.cron import CronSchedule, InvalidSchedule, due_run, too_late
from lazarus.automation.metrics import POLICY_RUNS_SKIPPED, TESTS_CREATED
from lazarus.automation.names import policy_run_name
from lazarus.automation.optin import schedule_of
from lazarus.automation.template import (
    CREATED_BY_POLICY,
    SCHEDULED_TIME_ANNOTATION,
    InvalidTemplate,
    RestoreTestTemplate,
    create_test,
)
from lazarus.clock import Clock
from lazarus.controllers.base import Controller, PermanentError
from lazarus.controllers.context import Context
from lazarus.controllers.workqueue import RateLimitingQueue
from lazarus.informers import (
    BACKUP_TEST_POLICIES,
    BACKUPS,
    LAZARUS_RESTORE_TESTS,
    DeletedFinalStateUnknown,
    final_object,
    object_key,
)
from lazarus.kube.client import Rest
from lazarus.kube.conditions import FALSE, TRUE, set_condition
from lazarus.kube.events import NORMAL, WARNING, EventRecorder
from lazarus.lifecycle.durations import format_time, parse_time
from lazarus.lifecycle.history import beyond_limits, delete_test

log = structlog.get_logger(__name__)

TESTS_BY_POLICY = "policy-owner"
READY = "Ready"
# Seconds added to the wait for the next run: the key must not come back a hair before the run
# is due (it would only schedule itself again, but that costs a sync).
NEXT_RUN_SLACK = 0.5

# Condition and Event reasons.
SCHEDULED, SUSPENDED, NO_SCHEDULE = "Scheduled", "Suspended", "NoSchedule"
INVALID_SCHEDULE, INVALID_TEMPLATE, INVALID_SPEC = "InvalidSchedule", "InvalidTemplate", "InvalidSpec"
TEST_CREATED, TEST_REPLACED = "TestCreated", "TestReplaced"
CONCURRENCY_FORBIDDEN, MISSED_SCHEDULE, NO_BACKUP_FOUND = "ConcurrencyForbidden", "MissedSchedule", "NoBackupFound"


class _InvalidPolicy(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class _RunOutcome:
    """What a due run did: the test it started (or found started), the tests it replaced."""

    started: str | None = None
    replaced: tuple[str, ...] = ()


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _owner_uid(test: dict[str, Any]) -> list[str]:
    """Index: UID of the BackupTestPolicy that controls a test."""
    return [
        ref["uid"]
        for ref in test["metadata"].get("ownerReferences") or []
        if ref.get("kind") == BACKUP_TEST_POLICIES.kind and ref.get("controller")
    ]


def _test_phase(test: dict[str, Any]) -> str:
    return str((test.get("status") or {}).get("phase") or "")


class PolicyReconciler:
    """Owns the informers, the queue and the sync function of BackupTestPolicies."""

    def __init__(self, context: Context, *, now: Callable[[], datetime] = _utc_now, clock: Clock | None = None) -> None:
        """``now``: wall-clock time for the cron logic; ``clock``: the queue's clock (both for tests)."""
        self.settings = context.settings
        self.rest: Rest = context.rest
        self.events = EventRecorder(context.rest, self.settings.identity)
        self._now = now
        factory = context.informers
        self.policies = factory.informer_for(BACKUP_TEST_POLICIES)
        self.tests = factory.informer_for(LAZARUS_RESTORE_TESTS)
        self.tests.add_indexers({TESTS_BY_POLICY: _owner_uid})
        self.backups = factory.informer_for(BACKUPS, namespace=self.settings.velero_namespace)
        self.controller = Controller(
            "policy", self.sync, workers=self.settings.workers, queue=RateLimitingQueue("policy", clock=clock)
        )
        self._last_run: dict[str, datetime] = {}
        self._noted: dict[tuple[str, str], str] = {}
        self._wire_handlers()

    def _wire_handlers(self) -> None:
        enqueue = self.controller.enqueue

        def policy_deleted(obj: dict[str, Any] | DeletedFinalStateUnknown) -> None:
            self._forget(str(final_object(obj)["metadata"].get("uid")))
            enqueue(obj)

        self.policies.add_event_handler(enqueue, lambda _old, new: enqueue(new), policy_deleted)

        def test_changed(obj: dict[str, Any] | DeletedFinalStateUnknown) -> None:
            test = final_object(obj)
            for ref in test["metadata"].get("ownerReferences") or []:
                if ref.get("kind") == BACKUP_TEST_POLICIES.kind and ref.get("controller"):
                    self.controller.queue.add(f"{test['metadata']['namespace']}/{ref['name']}")

        self.tests.add_event_handler(test_changed, lambda _old, new: test_changed(new), test_changed)

    # ----------------------------------------------------------------- sync

    def sync(self, key: str) -> None:
        """Validate, prune, run what is due, write status, wait for the next run (module docstring)."""
        policy = self.policies.store.get_by_key(key)
        if policy is None or policy["metadata"].get("deletionTimestamp"):
            return
        uid, spec = policy["metadata"]["uid"], BackupTestPolicySpec.of(policy)
        owned = [
            t for t in self.tests.store.by_index(TESTS_BY_POLICY, uid) if not t["metadata"].get("deletionTimestamp")
        ]
        try:
            schedule, template = self._validate(policy)
        except _InvalidPolicy as exc:
            self._write_status(policy, owned, (FALSE, exc.reason, str(exc)))
            self._note(policy, WARNING, exc.reason, str(exc))
            raise PermanentError(str(exc)) from None
        owned = self._prune(policy, owned)
        if schedule is None:
            self._write_status(policy, owned, (TRUE, NO_SCHEDULE, "no schedule: the policy only supplies a template"))
            return
        if spec.suspend:
            self._write_status(policy, owned, (TRUE, SUSPENDED, "suspended: no new runs start"))
            return
        now = self._now()
        recorded = (policy.get("status") or {}).get("lastScheduleTime")
        last = max(
            parse_time(recorded or policy["metadata"]["creationTimestamp"]),
            self._last_run.get(uid, datetime.min.replace(tzinfo=UTC)),
        )
        due = due_run(schedule, last, now)
        outcome = _RunOutcome()
        if due.run is not None:
            outcome = self._run(policy, template, due.run, owned, now)
            if outcome.started is not None:
                self._last_run[uid] = last = due.run
        owned = [t for t in owned if t["metadata"]["name"] not in outcome.replaced]
        self._write_status(
            policy,
            owned,
            (TRUE, SCHEDULED, f"next run at {format_time(due.next_run)}"),
            last_schedule=last if (recorded or uid in self._last_run) else None,
            next_run=due.next_run,
            started=outcome.started,
        )
        self.controller.queue.add_after(key, (due.next_run - now).total_seconds() + NEXT_RUN_SLACK)

    def _validate(self, policy: dict[str, Any]) -> tuple[CronSchedule | None, RestoreTestTemplate]:
        spec = BackupTestPolicySpec.of(policy)
        if spec.backup_namespace != self.settings.velero_namespace:
            raise _InvalidPolicy(
                INVALID_SPEC,
                f"backupNamespace {spec.backup_namespace!r}: backups are read from the Velero namespace "
                f"{self.settings.velero_namespace!r}",
            )
        try:
            schedule = CronSchedule.parse(spec.schedule, spec.time_zone) if spec.schedule else None
        except InvalidSchedule as exc:
            raise _InvalidPolicy(INVALID_SCHEDULE, f"{exc}; no test is created") from None
        try:
            return schedule, RestoreTestTemplate.from_policy(policy)
        except InvalidTemplate as exc:
            raise _InvalidPolicy(INVALID_TEMPLATE, f"{exc}; no test is created") from None

    # ----------------------------------------------------------------- one run

    def _run(
        self,
        policy: dict[str, Any],
        template: RestoreTestTemplate,
        run: datetime,
        owned: Sequence[dict[str, Any]],
        now: datetime,
    ) -> _RunOutcome:
        spec, name = BackupTestPolicySpec.of(policy), policy_run_name(policy["metadata"]["name"], run)
        if any(t["metadata"]["name"] == name for t in owned):
            return _RunOutcome(started=name)  # started before (a restart, another leader)
        run_text = format_time(run)
        deadline = spec.starting_deadline_seconds
        if too_late(run, now, deadline):
            message = f"run of {run_text} missed by more than startingDeadlineSeconds ({deadline}s): skipped"
            self._skip(policy, MISSED_SCHEDULE, message)
            return _RunOutcome()
        active = [t for t in owned if _test_phase(t) not in TERMINAL_PHASES]
        concurrency = spec.concurrency_policy
        if active and concurrency == ConcurrencyPolicy.FORBID:
            names = ", ".join(sorted(t["metadata"]["name"] for t in active))
            self._skip(policy, CONCURRENCY_FORBIDDEN, f"run of {run_text} skipped: {names} still running (Forbid)")
            return _RunOutcome()
        backup = self._select(policy, template, run)
        if backup is None:
            return _RunOutcome()
        replaced = active if concurrency == ConcurrencyPolicy.REPLACE else []
        for test in replaced:
            delete_test(self.rest, test)
            message = f"deleted running test {test['metadata']['name']} for the run of {run_text} (Replace)"
            self.events.record(policy, NORMAL, TEST_REPLACED, message)
        annotations = {SCHEDULED_TIME_ANNOTATION: run_text}
        body = template.test_body(
            name, backup, created_by=CREATED_BY_POLICY, annotations=annotations, owned_by_policy=True
        )
        if create_test(self.rest, body):
            TESTS_CREATED.labels("policy").inc()
            backup_name = backup["metadata"]["name"]
            log.info("policy run started", policy=object_key(policy), test=name, backup=backup_name)
            message = f"created LazarusRestoreTest {name} for the run of {run_text}: backup {backup_name}"
            self.events.record(policy, NORMAL, TEST_CREATED, message)
        return _RunOutcome(started=name, replaced=tuple(t["metadata"]["name"] for t in replaced))

    def _select(self, policy: dict[str, Any], template: RestoreTestTemplate, run: datetime) -> dict[str, Any] | None:
        """The backup this run tests; None (reported) if no backup qualifies."""
        selector = policy["spec"].get("backupSelector") or {}
        now = self._now()
        phases = (COMPLETED, PARTIALLY_FAILED)  # a cron run never picks a failed backup
        matching = [
            b
            for b in self.backups.store.list()
            if is_terminal(b)
            and phase(b) in phases
            and template.tests_phase(phase(b))
            and not is_expired(b, now)
            and (not selector.get("scheduleName") or schedule_of(b) == selector["scheduleName"])
            and matches_selector(b["metadata"].get("labels") or {}, selector.get("labelSelector"))
        ]
        refused = [why for b in matching if (why := template.refusal(b))]
        usable = [b for b in matching if template.refusal(b) is None]
        chosen = policy_selection(
            usable,
            selector.get("strategy") or "Latest",
            int(selector.get("lastN") or 5),
            seed=f"{policy['metadata']['uid']}/{format_time(run)}",
        )
        if chosen is None:
            detail = f"; {len(refused)} skipped: {refused[0]}" if refused else ""
            self._skip(policy, NO_BACKUP_FOUND, f"run of {format_time(run)}: no usable backup matches{detail}")
        return chosen

    # ----------------------------------------------------------------- history and status

    def _prune(self, policy: dict[str, Any], owned: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Delete finished tests beyond the history limits; return the tests that remain."""
        spec = BackupTestPolicySpec.of(policy)
        limits = {Phase.SUCCEEDED: spec.successful_tests_history_limit, Phase.FAILED: spec.failed_tests_history_limit}
        pruned: set[str] = set()
        for test in beyond_limits(owned, limits):
            delete_test(self.rest, test)
            pruned.add(test["metadata"]["name"])
        if pruned:
            log.info("pruned test history", policy=object_key(policy), tests=sorted(pruned))
        return [t for t in owned if t["metadata"]["name"] not in pruned]

    def _write_status(
        self,
        policy: dict[str, Any],
        owned: Sequence[dict[str, Any]],
        ready: tuple[str, str, str],
        *,
        last_schedule: datetime | None = None,
        next_run: datetime | None = None,
        started: str | None = None,
    ) -> None:
        """Patch the policy's status through /status, if anything in it changed."""
        current = policy.get("status") or {}
        active = {t["metadata"]["name"] for t in owned if _test_phase(t) not in TERMINAL_PHASES}
        if started:
            active.add(started)
        successes = [t["status"].get("completionTime") for t in owned if _test_phase(t) == Phase.SUCCEEDED]
        successes.append(current.get("lastSuccessfulTime"))
        last_success = max(filter(None, successes), key=parse_time, default=None)
        status: dict[str, Any] = {
            "lastScheduleTime": format_time(last_schedule) if last_schedule else current.get("lastScheduleTime"),
            "lastSuccessfulTime": last_success,
            "nextScheduleTime": format_time(next_run) if next_run else None,
            "active": [{"name": n} for n in sorted(active)],
            "observedGeneration": policy["metadata"].get("generation"),
        }
        generation = policy["metadata"].get("generation")
        now = format_time(self._now())
        status["conditions"] = set_condition(current.get("conditions"), READY, *ready, now=now, generation=generation)
        if all(current.get(k) == v for k, v in status.items()):
            return
        metadata = policy["metadata"]
        path = f"{BACKUP_TEST_POLICIES.collection_path(metadata['namespace'])}/{metadata['name']}/status"
        body = {"metadata": {"resourceVersion": metadata["resourceVersion"]}, "status": status}
        self.rest.request("PATCH", path, body=body, content_type="application/merge-patch+json")

    def _skip(self, policy: dict[str, Any], reason: str, message: str) -> None:
        if self._note(policy, WARNING, reason, message):
            POLICY_RUNS_SKIPPED.labels(reason).inc()

    def _forget(self, uid: str) -> None:
        """The policy ``uid`` was deleted: drop its last run and noted Events (bounded memory)."""
        self._last_run.pop(uid, None)
        for mark in [m for m in self._noted if m[0] == uid]:
            self._noted.pop(mark, None)

    def _note(self, policy: dict[str, Any], type_: str, reason: str, message: str) -> bool:
        """Record an Event unless this policy's last one of ``reason`` said the same; True if recorded."""
        mark = (policy["metadata"]["uid"], reason)
        if self._noted.get(mark) == message:
            return False
        self._noted[mark] = message
        log.info("policy event", policy=object_key(policy), reason=reason, detail=message)
        self.events.record(policy, type_, reason, message)
        return True


def policy_controller(context: Context) -> Controller:
    """Controller factory for ``lazarus run``."""
    return PolicyReconciler(context).controller
