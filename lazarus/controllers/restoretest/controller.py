"""The restore-test controller: informers, indexes, handlers → keys, and the sync that acts.

Handlers only compute keys and enqueue them (sample-controller's shape). ``sync`` reads the test
and what it made from the caches, asks the phase modules (``admission``, ``restoring``,
``verifying``, ``checking``, ``cleanup``, ``retention``) what to do, and does it: this module and
the actuators it owns (``writing``, ``creating``, ``deleting``, ``finishing``, ``reading``,
``reporting``, ``checkruns``) are the only code of the package doing I/O. Time
is read through the injected ``now`` (wall clock) and the queue's clock, so unit tests run on fakes.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from datetime import datetime
from typing import Any

import structlog

from lazarus.api.v1alpha1 import ACTIVE_PHASES, FailureReason, Phase, TransitionReason
from lazarus.baseline import BASELINE_DRIFT, BaselineStore, compare_with_baseline
from lazarus.checks import run_health_checks
from lazarus.checks.runner import HealthCheckReport
from lazarus.clock import Clock, RealClock
from lazarus.controllers.base import Controller
from lazarus.controllers.context import Context
from lazarus.controllers.restoretest import admission, checking, reporting, restoring, verifying
from lazarus.controllers.restoretest.checkruns import CheckRuns
from lazarus.controllers.restoretest.creating import Creator
from lazarus.controllers.restoretest.decisions import Advance, Fail
from lazarus.controllers.restoretest.deleting import FINALIZER, Deleter
from lazarus.controllers.restoretest.finishing import Finisher
from lazarus.controllers.restoretest.informers import Informers
from lazarus.controllers.restoretest.reading import Reader
from lazarus.controllers.restoretest.sandboxkey import SandboxKey
from lazarus.controllers.restoretest.slots import Slots
from lazarus.controllers.restoretest.view import TestView
from lazarus.controllers.restoretest.writing import Writer
from lazarus.controllers.workqueue import RateLimitingQueue
from lazarus.cost import GUARD_INTERVAL, CostGuard, planned_requests, prices_of
from lazarus.daemonpool import DaemonPool
from lazarus.kube.events import WARNING, EventRecorder
from lazarus.lifecycle.diagnostics import collect as collect_diagnostics
from lazarus.lifecycle.durations import format_time, parse_time
from lazarus.lifecycle.status import StatusWriter, utc_now
from lazarus.metrics import register_cache_metrics
from lazarus.sources import source_of

log = structlog.get_logger(__name__)

# Seconds a just-created Restore is trusted to exist before the informer shows it.
CREATED_EXPECTATION = 30.0


class RestoreTestReconciler:
    """Owns the informers, the queue and the sync function of restore tests."""

    def __init__(
        self,
        context: Context,
        *,
        now: Callable[[], datetime] = utc_now,
        clock: Clock | None = None,
        check_executor: Executor | None = None,
    ) -> None:
        """``now``: wall-clock time; ``clock``: the queue's; ``check_executor``: where health checks
        run (default: a pool of ``settings.workers`` threads). All three for tests."""
        settings = self.settings = context.settings
        self._clock: Clock = clock or RealClock()
        self.rest = context.rest
        self._now = now
        self.status = StatusWriter(context.rest, EventRecorder(context.rest, settings.identity), now)
        self.cache = Informers(context.informers, settings.velero_namespace)
        queue: RateLimitingQueue[str] = RateLimitingQueue("restoretest", clock=self._clock)
        self.writer = Writer(self.status, queue, self.cache.tests.store.get_by_key)
        self.controller = Controller("restoretest", self.sync, workers=settings.workers, queue=queue,
                                     on_forbidden=self.writer.forbidden,
                                     on_programming_error=self.writer.failing)  # fmt: skip
        self.slots = Slots(settings.max_concurrent_tests)
        self._clock_now = self._clock.now
        self._restores_created: dict[str, float] = {}  # test key → when this process created its Restore
        pool = check_executor or DaemonPool(settings.workers, "restoretest-checks")
        self._leading = context.leading
        self.check_runs = CheckRuns(pool, self.controller.queue.add, context.leading)
        key = SandboxKey(context.rest, settings.namespace)
        self.creator = Creator(context.rest, settings.velero_namespace, settings.namespace,
                               self.cache.sandboxes.store.get_by_key, key)  # fmt: skip
        self.deleter = Deleter(context.rest, settings.velero_namespace, key)
        self.reader = Reader(context.rest, settings.velero_namespace)
        self.finisher = Finisher(context.rest, self.cache, self.deleter, self.status, queue,
                                 settings.failure_retention, now)  # fmt: skip
        self.baselines = BaselineStore(context.rest, settings.namespace)
        prices = prices_of(settings)
        self.cost_guard = CostGuard(context.rest, prices, settings.test_timeout)
        self.reporter = reporting.Reporter(settings, context.rest, self.status, self.baselines, prices)
        register_cache_metrics(self.cache.tests.store.list, self.cache.sandboxes.store.list, self.cache.backup)
        self.cache.wire(self.controller.queue.add, on_slot_freed=self._wake_waiting, on_test_deleted=self._forget)

    # ----------------------------------------------------------------- handler callbacks

    def _wake_waiting(self) -> None:
        """A slot was freed: let waiting tests try again."""
        for key in self.cache.waiting_keys():
            self.controller.queue.add(key)

    def _forget(self, key: str) -> bool:
        """The test ``key`` is gone: drop what this process remembers of it; True if it held a slot."""
        self.check_runs.forget(key)
        self._restores_created.pop(key, None)
        self.controller.forget(key)
        return self.slots.release(key)

    # ----------------------------------------------------------------- sync

    def sync(self, key: str) -> None:
        """Advance the test ``key`` by one step (see the package docstring)."""
        test = self.cache.tests.store.get_by_key(key)
        self.finisher.delete_orphans(key, test)
        if test is None:
            self._forget(key)
            return
        view = TestView.of(test)
        if view.phase != Phase.PENDING:
            self.slots.observed(key)
        with structlog.contextvars.bound_contextvars(test=key, backup=view.spec.backup_name, phase=view.phase):
            self._advance(view)

    def _advance(self, view: TestView) -> None:
        metadata = view.obj["metadata"]
        if metadata.get("deletionTimestamp"):
            if self.deleter.test_objects(view, self.cache.owned(view.key)):
                self.deleter.set_finalizers(view.obj, [f for f in metadata.get("finalizers") or [] if f != FINALIZER])
            return
        if FINALIZER not in (metadata.get("finalizers") or []):
            # Go on with the object the PATCH returned: waiting for its watch event would add a
            # round trip to every test's start.
            view = TestView.of(self.deleter.set_finalizers(view.obj, [*(metadata.get("finalizers") or []), FINALIZER]))
        if view.phase in (Phase.SUCCEEDED, Phase.FAILED):
            if not reporting.reported(view):
                if not self._leading():
                    return  # notifications go out under a held lease only: the next leader reports
                view = TestView.of(self.reporter.report(view, self.cache.backup(view.spec.backup_name), self._now()))
            self.finisher.clean_up(view)
            self.finisher.retain(view)
        elif view.phase in ACTIVE_PHASES:
            self._run_active(view)
        else:
            self._admit(view)

    def _run_active(self, view: TestView) -> None:
        left = self.settings.test_timeout - view.elapsed("startTime", self._now())
        if left <= 0:
            late = f"the test did not finish within {self.settings.test_timeout:.0f}s"
            self.writer.apply(view, Fail(FailureReason.TIMEOUT, late))
            return
        self.controller.queue.add_after(view.key, left)  # nothing else may bring the key back in time
        if view.spec.cost.max_cost is not None:
            limit = self.cost_guard.exceeded(dict(view.obj), planned_requests(self.cache.restored_workloads(view)),
                                            now=self._now())
            if limit is not None:
                self.writer.apply(view, Fail(FailureReason.COST_LIMIT_EXCEEDED, limit.message,
                                             {"cost": limit.cost.to_status()}))  # fmt: skip
                return
            self.controller.queue.add_after(view.key, GUARD_INTERVAL)  # the guard looks again
        {Phase.RESTORING: self._restore, Phase.VERIFYING: self._verify, Phase.CHECKING: self._check}[view.phase](view)

    # ----------------------------------------------------------------- Pending → Restoring

    def _admit(self, view: TestView) -> None:
        backup = self.cache.backup(view.spec.backup_name)
        blocked = admission.check_backup(view, backup, self.settings.velero_namespace, self._now())
        if blocked is not None or backup is None:
            self.writer.apply(view, blocked)
            return
        active = self.cache.active_keys()
        if not self.slots.take(view.key, active):
            self.writer.apply(view, admission.waiting_for_slot(self.slots.running(active), self.slots.limit))
            return
        started = False
        try:
            started = self._start(view, backup)
        finally:
            if not started:  # failed, or raised: the slot is free again
                self.slots.release(view.key)

    def _start(self, view: TestView, backup: dict[str, Any]) -> bool:
        """Create the test's sandboxes and Restore; True once it is Restoring (it keeps its slot)."""
        velero = self.settings.velero_namespace
        contents = self.reader.backup_contents(view) if admission.needs_contents(backup) else None
        planned = contents if isinstance(contents, Fail) else admission.plan(view, backup, velero, contents)
        if isinstance(planned, Fail):
            self.writer.apply(view, planned)
            return False
        # Sandboxes and the Restore are created in this same sync (one status write and one watch
        # round trip less than a separate step); a crash before the status write recomputes the
        # same names next time and finds them created.
        made = self.creator.sandboxes_and_restore(view, planned.mapping)
        if isinstance(made, Fail):
            self.writer.apply(view, made)
            return False
        self._restores_created[view.key] = self._clock_now()
        mapping = ", ".join(f"{s} → {t}" for s, t in planned.mapping.items())
        self.writer.apply(view, Advance(
            Phase.RESTORING, TransitionReason.RESTORE_CREATED,
            f"created Velero restore {velero}/{view.restore_name} of backup {view.spec.backup_name}: {mapping}",
            extra={"startTime": format_time(self._now()), "sandboxUIDs": made, **planned.status},
        ))  # fmt: skip
        return True

    # ----------------------------------------------------------------- Restoring → Verifying

    def _restore(self, view: TestView) -> None:
        restore = self.cache.restore(view.restore_name)
        if restore is not None:
            self._restores_created.pop(view.key, None)
        created = self._restores_created.get(view.key)
        just_created = created is not None and self._clock_now() - created < CREATED_EXPECTATION
        step = restoring.progress(view, restore, self._now(), just_created=just_created)
        if isinstance(step, restoring.Recreate):
            made = self.creator.sandboxes_and_restore(view, view.mapping)
            if isinstance(made, Fail):
                self.writer.apply(view, made)
            else:
                self._restores_created[view.key] = self._clock_now()
            return
        if not isinstance(step, restoring.Ended):
            self.writer.apply(view, step)
            return
        details = self.reader.restore_details(step.restore)
        failed = restoring.failed(view, details)
        if failed is not None:
            self.writer.apply(view, failed)
            return
        if "expected" not in view.section("parity"):
            # The backup listed its namespaces, so the Restore was created without reading its
            # contents (the fast path); they are needed now, for parity and the workloads to wait for.
            contents = self.reader.backup_contents(view)
            if isinstance(contents, Fail):
                self.writer.apply(view, contents)
                return
            if not set(contents.namespaces) & set(view.mapping):
                self.writer.apply(view, admission.nothing_to_restore(view))
                return
            expected = admission.expectations(view, contents, view.mapping)
            view = TestView(view.obj, view.spec, {**view.status, **expected})
        checked = self.reader.parity(view, step.restore, self._now())
        self.writer.apply(view, restoring.verdict(view, details, checked, self._now()))

    # ----------------------------------------------------------------- Verifying → Checking

    def _verify(self, view: TestView) -> None:
        seen = self.cache.restored_workloads(view, view.spec.workloads.wait_for)
        step = verifying.verify(view, seen, self._now())
        if isinstance(step, verifying.NotReady):
            diagnostics = collect_diagnostics(self.rest, view.sandbox_namespaces)
            extra = {**step.fail.extra, "diagnostics": diagnostics}
            self.writer.apply(view, Fail(step.fail.reason, step.fail.message, extra))
            return
        self.writer.apply(view, step)

    # ----------------------------------------------------------------- Checking → result

    def _check(self, view: TestView) -> None:
        """Take the health checks' report (they run off the workers: ``checkruns``), measure RTO
        and RPO, and decide the result."""
        backup = self.cache.backup(view.spec.backup_name) or {}
        backup_start = (backup.get("status") or {}).get("startTimestamp")
        backup_time = parse_time(backup_start) if backup_start else None
        test = dict(view.obj)

        def run() -> HealthCheckReport:
            return run_health_checks(self.rest, test, view.mapping, backup_time=backup_time)

        report = self.check_runs.result(view.key, view.uid, run)
        if report is None:
            return  # running; its completion brings the key back
        finished = self._now()  # after the checks: RTO includes them
        measures = checking.Measures.of(view, report, backup_time, finished)
        baseline = compare_with_baseline(self.baselines, test, source_of(test, backup or None),
                                         health_checks=report.status, rto=measures.rto)  # fmt: skip
        drift = checking.drift_warning(baseline)
        if drift is not None:
            self.status.event(test, WARNING, BASELINE_DRIFT, drift)
        self.writer.apply(view, checking.verdict(view, report, measures, baseline, finished))
        self.check_runs.forget(view.key)


def restore_test_controller(context: Context) -> Controller:
    """Controller factory for ``lazarus run``."""
    return RestoreTestReconciler(context).controller
