"""A policy's cron schedule in its time zone, and which run is due (the CronJob controller's rules).

``CronSchedule.parse`` accepts what a Kubernetes CronJob accepts: five fields (minute, hour,
day of month, month, day of week) or a macro such as ``@daily``, in an IANA time zone (default
UTC). Seconds and year fields are refused: runs are named by the minute.

``due_run`` answers, for a policy last run at ``last`` (or created then), at wall-clock ``now``:
the most recent run time in ``(last, now]`` — only the most recent: after downtime the missed
runs collapse into one, as with a CronJob — and the next run time after ``now``. Whether a due
run is still within ``startingDeadlineSeconds`` is the caller's decision (``too_late``).

All times are aware datetimes; results are in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

MACROS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
# croniter looks back from just after ``now``, so a run exactly at ``now`` counts as due.
_JUST_AFTER = timedelta(microseconds=1)
_REFERENCE = datetime(2000, 1, 1, tzinfo=UTC)


class InvalidSchedule(ValueError):
    """The cron expression or time zone cannot be used; the message says which and why."""


@dataclass(frozen=True)
class DueRun:
    """The outcome of ``due_run``."""

    run: datetime | None
    """The most recent run time after the last run and not after now; None: nothing is due."""
    next_run: datetime
    """The first run time after now."""


@dataclass(frozen=True)
class CronSchedule:
    """A validated cron expression in a time zone."""

    expression: str
    zone: ZoneInfo

    @classmethod
    def parse(cls, expression: str, time_zone: str | None = None) -> CronSchedule:
        """Validate ``expression`` and ``time_zone`` (None or empty: UTC); raise ``InvalidSchedule``."""
        text = " ".join(expression.split())
        fields = text.split(" ")
        if not (len(fields) == 5 or (len(fields) == 1 and text.lower() in MACROS)):
            raise InvalidSchedule(
                f"schedule {expression!r}: need five fields (minute hour day-of-month month day-of-week) "
                f"or one of {', '.join(sorted(MACROS))}"
            )
        if not croniter.is_valid(text):
            raise InvalidSchedule(f"schedule {expression!r} is not a valid cron expression")
        try:
            zone = ZoneInfo(time_zone or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidSchedule(f"timeZone {time_zone!r} is not an IANA time zone") from None
        schedule = cls(text, zone)
        try:  # a valid expression may name a date that never comes, e.g. "0 0 30 2 *"
            schedule.next_after(_REFERENCE)
        except CroniterError:
            raise InvalidSchedule(f"schedule {expression!r} never fires") from None
        return schedule

    def previous_or_at(self, moment: datetime) -> datetime:
        """The latest run time not after ``moment``."""
        at: datetime = croniter(self.expression, (moment + _JUST_AFTER).astimezone(self.zone)).get_prev(datetime)
        return at.astimezone(UTC)

    def next_after(self, moment: datetime) -> datetime:
        """The first run time after ``moment``."""
        at: datetime = croniter(self.expression, moment.astimezone(self.zone)).get_next(datetime)
        return at.astimezone(UTC)


def due_run(schedule: CronSchedule, last: datetime, now: datetime) -> DueRun:
    """The run due at ``now`` for a policy last run (or created) at ``last`` (module docstring)."""
    latest = schedule.previous_or_at(now)
    return DueRun(run=latest if latest > last else None, next_run=schedule.next_after(now))


def too_late(run: datetime, now: datetime, starting_deadline: float | None) -> bool:
    """Whether a run is missed by more than ``starting_deadline`` seconds (None: never too late)."""
    return starting_deadline is not None and (now - run).total_seconds() > starting_deadline
