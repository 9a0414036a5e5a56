"""Data-interval timetables (Airflow 2's default): a run covers [start, end) and is due at `end`.

With `start_date=2018-11-01` and `@daily`, the run with logical date 2018-11-01 covers
[11-01, 11-02) and is due at 2018-11-02 00:00. `catchup=True` walks every interval from the
start date; `catchup=False` starts at the latest interval that has already ended.
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
from asyncflow.timeutil import MAX_DURATION


def positive_delta(delta: timedelta) -> timedelta:
    """`delta` if it is a timedelta longer than zero, else `InvalidScheduleError`."""
    if not isinstance(delta, timedelta) or delta <= timedelta(0):
        raise InvalidScheduleError(
            f"schedule={delta!r} is not a positive timedelta: "
            "use a duration longer than zero, e.g. timedelta(hours=1)"
        )
    if delta > MAX_DURATION:
        raise InvalidScheduleError(
            f"schedule={delta!r} is longer than {MAX_DURATION.days} days: "
            "use schedule=None for a DAG that runs only when triggered, or '@once'"
        )
    return delta


class _DataIntervalTimetable(Timetable):
    """Airflow's `_DataIntervalTimetable`: the algorithm, over four steps subclasses define."""

    def _get_next(self, current: datetime) -> datetime:
        raise NotImplementedError

    def _align_to_next(self, current: datetime) -> datetime:
        raise NotImplementedError

    def _align_to_prev(self, current: datetime) -> datetime:
        raise NotImplementedError

    def _skip_to_latest(self, earliest: datetime | None, now: datetime) -> datetime:
        """The start of the latest interval that has ended by `now`, not before `earliest`."""
        raise NotImplementedError

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
    ) -> DagRunInfo | None:
        restriction, now = resolve(restriction)
        try:
            return self._next(last_automated_data_interval, restriction, now)
        except CronExhausted:
            return None

    def _next(
        self, last: DataInterval | None, restriction: TimeRestriction, now: datetime
    ) -> DagRunInfo | None:
        earliest = restriction.earliest
        if not restriction.catchup:
            earliest = self._skip_to_latest(earliest, now)
        elif earliest is not None:
            earliest = self._align_to_next(earliest)
        if last is None:
            if earliest is None:
                return None
            start = earliest
        else:
            aligned_end = self._align_to_prev(as_utc(last.end, "last data interval end"))
            start = aligned_end if earliest is None else max(aligned_end, earliest)
        if restriction.latest is not None and start > restriction.latest:
            return None
        return DagRunInfo.interval(start, self._get_next(start))


class CronDataIntervalTimetable(_DataIntervalTimetable):
    """Runs between two fire times of a cron expression (or preset), evaluated in `timezone`."""

    def __init__(
        self, cron: str, timezone: str | tzinfo = "UTC", *, allow_seconds: bool = False
    ) -> None:
        self._cron = CronSchedule(cron, timezone, allow_seconds=allow_seconds)
        self._expression = cron
        self.description = (
            f"every interval between two fire times of {cron!r} ({self._cron.timezone}); "
            "a run is due when its interval ends"
        )

    @property
    def summary(self) -> str:
        return self._expression

    @property
    def timezone(self) -> tzinfo:
        return self._cron.timezone

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._expression!r}, {str(self._cron.timezone)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CronDataIntervalTimetable):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[object, ...]:
        return (self._cron.expression, self._cron.timezone)

    def infer_manual_data_interval(self, *, run_after: datetime) -> DataInterval:
        try:
            end = self._cron.align_prev(as_utc(run_after, "run_after"))
            return DataInterval(self._cron.prev_before(end), end)
        except CronExhausted:
            return DataInterval.exact(as_utc(run_after, "run_after"))

    def _get_next(self, current: datetime) -> datetime:
        return self._cron.next_after(current)

    def _align_to_next(self, current: datetime) -> datetime:
        return self._cron.align_next(current)

    def _align_to_prev(self, current: datetime) -> datetime:
        return self._cron.align_prev(current)

    def _skip_to_latest(self, earliest: datetime | None, now: datetime) -> datetime:
        last_start = self._cron.prev_before(now)
        if self._get_next(last_start) == now:  # now is on a boundary: [last_start, now) ended
            new_start = last_start
        else:  # now is inside [last_start, next): the latest ended interval is the one before
            new_start = self._cron.prev_before(last_start)
        if earliest is None:
            return new_start
        return max(new_start, self._align_to_next(earliest))


class DeltaDataIntervalTimetable(_DataIntervalTimetable):
    """Runs every `delta` from the start date, in fixed durations (UTC arithmetic)."""

    def __init__(self, delta: timedelta) -> None:
        self._delta = positive_delta(delta)
        self.description = f"every {delta} from the start date; a run is due when it ends"

    @property
    def summary(self) -> str:
        return str(self._delta)

    @property
    def delta(self) -> timedelta:
        return self._delta

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._delta!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DeltaDataIntervalTimetable):
            return NotImplemented
        return self._delta == other._delta

    def __hash__(self) -> int:
        return hash(self._delta)

    def infer_manual_data_interval(self, *, run_after: datetime) -> DataInterval:
        run_after = as_utc(run_after, "run_after")
        return DataInterval(run_after - self._delta, run_after)

    def _get_next(self, current: datetime) -> datetime:
        return current + self._delta

    def _align_to_next(self, current: datetime) -> datetime:
        return current

    def _align_to_prev(self, current: datetime) -> datetime:
        return current

    def _skip_to_latest(self, earliest: datetime | None, now: datetime) -> datetime:
        new_start = now - self._delta
        return new_start if earliest is None else max(new_start, earliest)
