"""Trigger timetables (Airflow 3 style): a run fires at the cron or delta time itself.

A run that fires at T is due at T (`run_after`), covers [T - interval, T) (`interval` defaults to
zero: an empty data interval), and is named after T: for these timetables the engine uses
`run_after` as the logical date, through `Timetable.logical_date_of()`.

`catchup=True` fires at every trigger time from the start date; `catchup=False` fires at the
latest trigger time that has passed (or the next one) and then at each following one.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo

from asyncflow.exceptions import InvalidScheduleError
from asyncflow.timetables._cron import CronExhausted, CronSchedule
from asyncflow.timetables.base import (
    DagRunInfo,
    DataInterval,
    TimeRestriction,
    Timetable,
    as_utc,
    resolve,
)
from asyncflow.timetables.interval import positive_delta
from asyncflow.timeutil import MAX_DURATION


def _interval(interval: timedelta) -> timedelta:
    if not isinstance(interval, timedelta) or interval < timedelta(0):
        raise InvalidScheduleError(
            f"interval={interval!r} is not a timedelta of zero or more: it is how far back "
            "from the trigger time a run's data interval starts, e.g. timedelta(hours=1)"
        )
    if interval > MAX_DURATION:
        raise InvalidScheduleError(
            f"interval={interval!r} is longer than {MAX_DURATION.days} days: give a shorter one"
        )
    return interval


class _TriggerTimetable(Timetable):
    """The trigger algorithm, over three steps subclasses define."""

    def __init__(self, interval: timedelta) -> None:
        self._interval = _interval(interval)

    @property
    def interval(self) -> timedelta:
        return self._interval

    def _get_next(self, current: datetime) -> datetime:
        raise NotImplementedError

    def _align_to_next(self, current: datetime) -> datetime:
        raise NotImplementedError

    def _align_to_prev(self, current: datetime) -> datetime:
        raise NotImplementedError

    def logical_date_of(self, info: DagRunInfo) -> datetime:
        return info.run_after

    def infer_manual_data_interval(self, *, run_after: datetime) -> DataInterval:
        run_after = as_utc(run_after, "run_after")
        return DataInterval(run_after - self._interval, run_after)

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
    ) -> DagRunInfo | None:
        restriction, now = resolve(restriction)
        last = last_automated_data_interval
        try:
            trigger = self._next_trigger(last, restriction, now)
        except CronExhausted:
            return None
        if trigger is None:
            return None
        if restriction.latest is not None and restriction.latest < trigger:
            return None
        return DagRunInfo.interval(trigger - self._interval, trigger)

    def _next_trigger(
        self, last: DataInterval | None, restriction: TimeRestriction, now: datetime
    ) -> datetime | None:
        # last.end is the previous trigger time: a run's data interval ends where it fired.
        if restriction.catchup:
            if last is not None:
                return self._get_next(as_utc(last.end, "last data interval end"))
            if restriction.earliest is None:
                return None  # nowhere to catch up from
            return self._align_to_next(restriction.earliest)
        candidates = [self._align_to_prev(now)]
        if last is not None:
            candidates.append(self._get_next(as_utc(last.end, "last data interval end")))
        if restriction.earliest is not None:
            candidates.append(self._align_to_next(restriction.earliest))
        return max(candidates)


class CronTriggerTimetable(_TriggerTimetable):
    """Fires at each fire time of a cron expression (or preset), evaluated in `timezone`."""

    def __init__(
        self,
        cron: str,
        *,
        timezone: str | tzinfo,
        interval: timedelta = timedelta(0),
        allow_seconds: bool = False,
    ) -> None:
        super().__init__(interval)
        self._cron = CronSchedule(cron, timezone, allow_seconds=allow_seconds)
        self._expression = cron
        self.description = f"at each fire time of {cron!r} ({self._cron.timezone})"

    @property
    def summary(self) -> str:
        return self._expression

    @property
    def timezone(self) -> tzinfo:
        return self._cron.timezone

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self._expression!r}, "
            f"timezone={str(self._cron.timezone)!r}, interval={self._interval!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CronTriggerTimetable):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[object, ...]:
        return (self._cron.expression, self._cron.timezone, self._interval)

    def _get_next(self, current: datetime) -> datetime:
        return self._cron.next_after(current)

    def _align_to_next(self, current: datetime) -> datetime:
        return self._cron.align_next(current)

    def _align_to_prev(self, current: datetime) -> datetime:
        return self._cron.align_prev(current)


class DeltaTriggerTimetable(_TriggerTimetable):
    """Fires at the start date, then every `delta` after the previous trigger (UTC arithmetic)."""

    def __init__(self, delta: timedelta, *, interval: timedelta = timedelta(0)) -> None:
        super().__init__(interval)
        self._delta = positive_delta(delta)
        self.description = f"every {delta} from the start date"

    @property
    def summary(self) -> str:
        return str(self._delta)

    @property
    def delta(self) -> timedelta:
        return self._delta

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._delta!r}, interval={self._interval!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DeltaTriggerTimetable):
            return NotImplemented
        return (self._delta, self._interval) == (other._delta, other._interval)

    def __hash__(self) -> int:
        return hash((self._delta, self._interval))

    def _get_next(self, current: datetime) -> datetime:
        return current + self._delta

    def _align_to_next(self, current: datetime) -> datetime:
        return current

    def _align_to_prev(self, current: datetime) -> datetime:
        return current
