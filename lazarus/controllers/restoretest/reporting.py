"""Reporting a finished test: metrics, an Event on its Backup, notifications; done once.

``status.notifications`` (written here, ``[]`` when none are configured) marks it done. A crash
or a conflict before that write repeats it (a notification may then be sent twice; PagerDuty
deduplicates). Tests that finished more than ``REPORT_WINDOW`` ago (e.g. before an upgrade that
added this step) are only marked: no flood of stale notifications.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lazarus.api.v1alpha1 import Phase
from lazarus.baseline import BaselineStore, record_baseline
from lazarus.controllers.restoretest.view import TestView
from lazarus.cost import Prices, measure_cost
from lazarus.informers import object_key
from lazarus.kube.client import Rest
from lazarus.kube.events import NORMAL, WARNING
from lazarus.lifecycle.status import StatusWriter
from lazarus.metrics import observe_finished_test
from lazarus.notify import send_notifications
from lazarus.settings import Settings
from lazarus.sources import source_of

# Seconds after its completion within which a finished test is still reported.
REPORT_WINDOW = 3600.0
# Event reasons on the Backup.
TEST_SUCCEEDED, TEST_FAILED = "RestoreTestSucceeded", "RestoreTestFailed"


def reported(view: TestView) -> bool:
    return "notifications" in view.status


def due(view: TestView, now: datetime) -> bool:
    """Whether the finished test is recent enough to be reported (else only marked)."""
    return view.elapsed("completionTime", now) < REPORT_WINDOW


class Reporter:
    """Reports finished tests (see the module docstring)."""

    def __init__(
        self, settings: Settings, rest: Rest, status: StatusWriter, baselines: BaselineStore, prices: Prices
    ) -> None:
        self._settings = settings
        self._rest = rest
        self._status = status
        self._baselines = baselines
        self._prices = prices

    def report(self, view: TestView, backup: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
        """Report ``view`` if ``due``, mark it reported; the updated test."""
        test, status, rest = dict(view.obj), dict(view.status), self._rest
        entries: list[dict[str, Any]] = []
        written: dict[str, Any] = {}
        if due(view, now):
            source = source_of(test, backup)
            # Both read the API and may raise: before anything is sent, so a retry repeats nothing.
            written["cost"] = measure_cost(rest, test, self._prices, now).to_status()
            written.update(record_baseline(self._baselines, test, source))
            observe_finished_test({**test, "status": {**status, "cost": written["cost"]}}, backup)
            if backup is not None:
                succeeded = view.phase == Phase.SUCCEEDED
                self._status.event(
                    backup,
                    NORMAL if succeeded else WARNING,
                    TEST_SUCCEEDED if succeeded else TEST_FAILED,
                    f"restore test {object_key(test)}: {status.get('message', '')}"[:1024],
                )
            entries = send_notifications(rest, test, self._settings, backup)
        return self._status.patch(test, {**written, "notifications": entries})
