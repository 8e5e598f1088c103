"""The backup-trigger controller: a ``LazarusRestoreTest`` for every opted-in Velero Backup.

Opt-in (``lazarus.automation.optin``): a Schedule annotated ``lazarus.io/validate: "true"``
(every Nth of its backups, ``lazarus.io/test-every``), or a Backup labelled
``backup-type: validation``. Which of a Schedule's backups are tested is
``lazarus.automation.backups.schedule_selection``: those that finish after the last one tested.

Keys are per group, so one worker decides for all backups of a Schedule at once (the workqueue
never hands one key to two workers, so two backups finishing together cannot both count as
"the next one"): ``schedule:<namespace>/<schedule>`` for backups a Schedule made,
``backup:<namespace>/<backup>`` for other labelled backups. Handlers map Backup, Schedule and
policy events to those keys.

Exactly one test per backup: its name is the backup's (``names.backup_test_name``), so a
restart, a resync or a new leader that decides again gets 409 from the create, which counts as
done. Tests land in the namespace of the policy named by ``lazarus.io/test-policy`` (its
template is the test's spec), else in the operator's namespace with the default template.

Bad input — a malformed annotation, a policy that does not exist or whose template is invalid —
is a Warning Event on the Schedule (or Backup) and a ``PermanentError``: nothing is created, and
the key comes back when the Schedule, Backup or policy changes. Backups that end
PartiallyFailed/Failed are reported (Warning Event on the Backup, ``lazarus_backups_unsuccessful_total``)
and tested only where the template says so; backups of the whole cluster or with cluster-scoped
resources only under a policy with ``allowClusterWideBackups``. Each report is made once per
process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog

from lazarus.automation.backups import (
    UNSUCCESSFUL_PHASES,
    fresh_backups,
    is_expired,
    is_terminal,
    phase,
    schedule_selection,
    velero_findings,
)
from lazarus.automation.metrics import BACKUPS_UNSUCCESSFUL, TESTS_CREATED
from lazarus.automation.names import backup_test_name
from lazarus.automation.optin import (
    POLICY_ANNOTATION,
    OptInError,
    ScheduleOptIn,
    backup_labelled,
    backup_policy,
    policy_key,
    schedule_of,
    schedule_opt_in,
)
from lazarus.automation.template import (
    CREATED_BY_LABEL,
    CREATED_BY_TRIGGER,
    InvalidTemplate,
    RestoreTestTemplate,
    create_test,
)
from lazarus.controllers.base import Controller, PermanentError
from lazarus.controllers.context import Context
from lazarus.informers import (
    BACKUP_TEST_POLICIES,
    BACKUPS,
    LAZARUS_RESTORE_TESTS,
    SCHEDULES,
    DeletedFinalStateUnknown,
    SharedInformer,
    final_object,
    label_index,
    object_key,
)
from lazarus.kube.client import Rest
from lazarus.kube.events import NORMAL, WARNING, EventRecorder

log = structlog.get_logger(__name__)

SCHEDULE_KEY, BACKUP_KEY = "schedule", "backup"
# Index names on shared informers: unique across controllers.
BACKUPS_BY_SCHEDULE = "trigger-schedule"
BY_POLICY = "trigger-policy"
TESTS_BY_BACKUP = "trigger-backup"
# Seconds a test this process created counts as existing before the informer shows it.
CREATED_EXPECTATION = 30.0

# Event reasons.
TEST_CREATED = "TestCreated"
INVALID_ANNOTATION = "InvalidAnnotation"
POLICY_NOT_FOUND = "PolicyNotFound"
INVALID_TEMPLATE = "InvalidTemplate"
BACKUP_UNSUCCESSFUL = "BackupUnsuccessful"
BACKUP_NOT_TESTED = "BackupNotTested"


class _BadInput(Exception):
    """Bad input on a Schedule or Backup: reported as an Event with ``reason``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _triggered_backup(test: dict[str, Any]) -> list[str]:
    """Index: ``namespace/name`` of the backup a trigger-made test tests."""
    if (test["metadata"].get("labels") or {}).get(CREATED_BY_LABEL) != CREATED_BY_TRIGGER:
        return []
    spec = test.get("spec") or {}
    return [f"{spec.get('backupNamespace', 'velero')}/{spec.get('backupName')}"]


def group_key(backup: dict[str, Any]) -> str:
    """The key that decides for ``backup``: its Schedule's, else its own."""
    namespace = backup["metadata"]["namespace"]
    schedule = schedule_of(backup)
    if schedule:
        return f"{SCHEDULE_KEY}:{namespace}/{schedule}"
    return f"{BACKUP_KEY}:{namespace}/{backup['metadata']['name']}"


class BackupTriggerReconciler:
    """Owns the informers, the queue and the sync function of the backup trigger."""

    def __init__(self, context: Context) -> None:
        self.settings = context.settings
        self.rest: Rest = context.rest
        self.events = EventRecorder(context.rest, self.settings.identity)
        factory, velero = context.informers, self.settings.velero_namespace
        self.backups = factory.informer_for(BACKUPS, namespace=velero)
        self.backups.add_indexers(
            {BACKUPS_BY_SCHEDULE: label_index("velero.io/schedule-name"), BY_POLICY: self._policy_index}
        )
        self.schedules = factory.informer_for(SCHEDULES, namespace=velero)
        self.schedules.add_indexers({BY_POLICY: self._policy_index})
        self.policies = factory.informer_for(BACKUP_TEST_POLICIES)
        self.tests = factory.informer_for(LAZARUS_RESTORE_TESTS)
        self.tests.add_indexers({TESTS_BY_BACKUP: _triggered_backup})
        self.controller = Controller("backuptrigger", self.sync, workers=self.settings.workers)
        self._created: dict[str, float] = {}
        self._reported: dict[tuple[str, str], str] = {}
        self._wire_handlers()

    # ----------------------------------------------------------------- event handlers → keys

    def _policy_index(self, obj: dict[str, Any]) -> list[str]:
        """Index: the policy a Schedule or Backup names (malformed names index nothing)."""
        ref = (obj["metadata"].get("annotations") or {}).get(POLICY_ANNOTATION)
        try:
            return [policy_key(ref, self.settings.namespace)] if ref else []
        except OptInError:
            return []

    def _wire_handlers(self) -> None:
        def on_any(informer: SharedInformer, keys: Callable[[dict[str, Any]], list[str]]) -> None:
            def deliver(obj: dict[str, Any] | DeletedFinalStateUnknown) -> None:
                for key in keys(final_object(obj)):
                    self.controller.queue.add(key)

            def deleted(obj: dict[str, Any] | DeletedFinalStateUnknown) -> None:
                self._forget(final_object(obj))
                deliver(obj)

            informer.add_event_handler(deliver, lambda _old, new: deliver(new), deleted)

        on_any(self.backups, lambda b: [group_key(b)])
        on_any(self.schedules, lambda s: [f"{SCHEDULE_KEY}:{object_key(s)}"])
        on_any(self.policies, self._keys_naming_policy)

    def _keys_naming_policy(self, policy: dict[str, Any]) -> list[str]:
        key = object_key(policy)
        schedules = [f"{SCHEDULE_KEY}:{object_key(s)}" for s in self.schedules.store.by_index(BY_POLICY, key)]
        return schedules + [group_key(b) for b in self.backups.store.by_index(BY_POLICY, key)]

    # ----------------------------------------------------------------- sync

    def sync(self, key: str) -> None:
        """Create the missing tests of one group of backups (see the module docstring)."""
        kind, _, object_ref = key.partition(":")
        if kind == SCHEDULE_KEY:
            schedule = self.schedules.store.get_by_key(object_ref)
            namespace, _, name = object_ref.partition("/")
            backups = [b for b in self.backups.store.by_index(BACKUPS_BY_SCHEDULE, name)
                       if b["metadata"]["namespace"] == namespace]  # fmt: skip
        else:
            schedule = None
            backup = self.backups.store.get_by_key(object_ref)
            backups = [backup] if backup is not None else []
        try:
            self._sync_group(schedule, backups)
        except _BadInput as exc:
            raise PermanentError(str(exc)) from None

    def _sync_group(self, schedule: dict[str, Any] | None, backups: Sequence[dict[str, Any]]) -> None:
        opt_in = ScheduleOptIn(enabled=False)
        if schedule is not None:
            try:
                opt_in = schedule_opt_in(schedule, self.settings.namespace)
            except OptInError as exc:
                raise self._bad_input(schedule, _BadInput(INVALID_ANNOTATION, str(exc))) from None
        labelled = [b for b in backups if backup_labelled(b) and is_terminal(b)]
        if not opt_in.enabled and not labelled:
            return
        now = datetime.now(UTC)
        if opt_in.enabled and schedule is not None:
            self._sync_schedule(schedule, opt_in, backups, now)
        tested = self._tested(backups)
        problems = []
        for backup in labelled:
            if backup["metadata"]["name"] in tested:
                continue
            try:
                template = self._template(backup_policy(backup, self.settings.namespace) or opt_in.policy)
            except OptInError as exc:
                problems.append(self._bad_input(backup, _BadInput(INVALID_ANNOTATION, str(exc))))
                continue
            except _BadInput as exc:
                problems.append(self._bad_input(backup, exc))
                continue
            self._report(backup, schedule or backup, template)
            if self._testable(backup, template, now):
                self._create(backup, template, schedule or backup, source=BACKUP_KEY)
        if problems:
            raise problems[0]

    def _sync_schedule(
        self, schedule: dict[str, Any], opt_in: ScheduleOptIn, backups: Sequence[dict[str, Any]], now: datetime
    ) -> None:
        try:
            template = self._template(opt_in.policy)
        except _BadInput as exc:
            raise self._bad_input(schedule, exc) from None
        tested = self._tested(backups)

        def testable(backup: dict[str, Any]) -> bool:
            return self._testable(backup, template, now)

        for backup in fresh_backups(backups, tested, testable):
            self._report(backup, schedule, template)
        for backup in schedule_selection(backups, tested, testable, opt_in.every):
            self._create(backup, template, schedule, source=SCHEDULE_KEY)

    # ----------------------------------------------------------------- pieces

    def _template(self, policy: str | None) -> RestoreTestTemplate:
        """The template of ``policy`` (``namespace/name``), or the default; raises ``_BadInput``."""
        if policy is None:
            return RestoreTestTemplate(namespace=self.settings.namespace)
        found = self.policies.store.get_by_key(policy)
        if found is None:
            raise _BadInput(POLICY_NOT_FOUND, f"BackupTestPolicy {policy} does not exist; no test is created")
        try:
            return RestoreTestTemplate.from_policy(found)
        except InvalidTemplate as exc:
            raise _BadInput(INVALID_TEMPLATE, f"BackupTestPolicy {policy}: {exc}; no test is created") from None

    @staticmethod
    def _testable(backup: dict[str, Any], template: RestoreTestTemplate, now: datetime) -> bool:
        return template.tests_phase(phase(backup)) and template.refusal(backup) is None and not is_expired(backup, now)

    def _tested(self, backups: Sequence[dict[str, Any]]) -> set[str]:
        """Names of the backups that have a trigger-made test (cached, or created just now)."""
        horizon = time.monotonic() - CREATED_EXPECTATION
        for key in [k for k, at in self._created.items() if at < horizon]:
            self._created.pop(key, None)
        return {
            b["metadata"]["name"]
            for b in backups
            if object_key(b) in self._created or self.tests.store.index_keys(TESTS_BY_BACKUP, object_key(b))
        }

    def _create(
        self, backup: dict[str, Any], template: RestoreTestTemplate, about: dict[str, Any], *, source: str
    ) -> None:
        name = backup_test_name(backup["metadata"]["name"])
        created = create_test(self.rest, template.test_body(name, backup, created_by=CREATED_BY_TRIGGER))
        self._created[object_key(backup)] = time.monotonic()
        if created:
            TESTS_CREATED.labels(source).inc()
            message = (
                f"created LazarusRestoreTest {template.namespace}/{name} for backup "
                f"{backup['metadata']['name']} from {template.source}"
            )
            log.info("test created", test=f"{template.namespace}/{name}", backup=object_key(backup))
            self.events.record(about, NORMAL, TEST_CREATED, message)

    def _report(self, backup: dict[str, Any], about: dict[str, Any], template: RestoreTestTemplate) -> None:
        """Report an unsuccessful backup (on the Backup) and a refused one (on ``about``), once."""
        ended = phase(backup)
        if ended in UNSUCCESSFUL_PHASES:
            tested = "it is tested anyway" if template.tests_phase(ended) else "it is not tested"
            name = backup["metadata"]["name"]
            message = f"backup {name} ended {ended}{velero_findings(backup)}; {tested} ({template.source})"
            if self._once(backup, BACKUP_UNSUCCESSFUL, ended):  # once per backup, whatever the template
                BACKUPS_UNSUCCESSFUL.labels(ended, schedule_of(backup) or "").inc()
                self.events.record(backup, WARNING, BACKUP_UNSUCCESSFUL, message)
        refusal = template.refusal(backup) if template.tests_phase(ended) else None
        if refusal and self._once(backup, BACKUP_NOT_TESTED, refusal):
            self.events.record(about, WARNING, BACKUP_NOT_TESTED, refusal)

    def _bad_input(self, obj: dict[str, Any], problem: _BadInput) -> _BadInput:
        """Report bad input on ``obj`` (once per distinct message); return it for the caller to raise."""
        if self._once(obj, problem.reason, str(problem)):
            log.warning("bad opt-in input", object=object_key(obj), reason=problem.reason, error=str(problem))
            self.events.record(obj, WARNING, problem.reason, str(problem))
        return problem

    @staticmethod
    def _identity(obj: dict[str, Any]) -> str:
        return str(obj["metadata"].get("uid") or object_key(obj))

    def _forget(self, obj: dict[str, Any]) -> None:
        """``obj`` was deleted: drop what was reported of it (the dict stays as large as the cache)."""
        identity = self._identity(obj)
        for mark in [m for m in self._reported if m[0] == identity]:
            self._reported.pop(mark, None)

    def _once(self, obj: dict[str, Any], reason: str, what: str) -> bool:
        """Whether ``what`` is new for this object and reason in this process; remembers it."""
        mark = (self._identity(obj), reason)
        if self._reported.get(mark) == what:
            return False
        self._reported[mark] = what
        return True


def backup_trigger_controller(context: Context) -> Controller:
    """Controller factory for ``lazarus run``."""
    return BackupTriggerReconciler(context).controller
