"""The timetable contract: the records a timetable speaks in, and the class users subclass.

A timetable answers two questions, as in Airflow 2:

- `next_dagrun_info`: given the data interval of the last automated run (or None) and the DAG's
  `TimeRestriction` (start_date, end_date, catchup, now), when is the next run due and which data
  interval does it cover? None means "no run": never, or not with these bounds.
- `infer_manual_data_interval`: a run triggered by hand at `run_after` covers which interval?

Every datetime going in and out is timezone-aware UTC; a timetable may compute in its own zone.
Built-in timetables read the current time from `restriction.now` only (the engine fills it from
its injected clock); `datetime.now(UTC)` is the fallback when it is None.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import NamedTuple

from asyncflow.timeutil import normalize_datetime


class DataInterval(NamedTuple):
    """The span of data a run covers: [start, end)."""

    start: datetime
    end: datetime

    @classmethod
    def exact(cls, at: datetime) -> DataInterval:
        """An empty interval at one point in time (manual runs, `@once`)."""
        return cls(at, at)


class TimeRestriction(NamedTuple):
    """The bounds a DAG puts on its timetable."""

    earliest: datetime | None  # the DAG's start_date
    latest: datetime | None  # the DAG's end_date
    catchup: bool
    now: datetime | None = None  # asyncflow: the injected clock's time; None -> the wall clock


class DagRunInfo(NamedTuple):
    """When the next run is due (`run_after`) and the data interval it covers."""

    run_after: datetime
    data_interval: DataInterval

    @property
    def logical_date(self) -> datetime:
        return self.data_interval.start

    @classmethod
    def exact(cls, at: datetime) -> DagRunInfo:
        """A run due at `at` covering the empty interval at `at`."""
        return cls(run_after=at, data_interval=DataInterval.exact(at))

    @classmethod
    def interval(cls, start: datetime, end: datetime) -> DagRunInfo:
        """A run covering [start, end), due once the interval has ended."""
        return cls(run_after=end, data_interval=DataInterval(start, end))


class Timetable:
    """What decides when a DAG runs. Subclass it and override `next_dagrun_info`.

    `periodic` is False for timetables that run a bounded number of times (`@once`);
    `can_be_scheduled` is False for DAGs that only run when triggered (`schedule=None`);
    `run_ordering` names the run fields that order a DAG's runs in listings.
    """

    periodic: bool = True
    can_be_scheduled: bool = True
    run_ordering: Sequence[str] = ("data_interval_end", "logical_date")
    description: str = ""

    @property
    def summary(self) -> str:
        """A short label for listings: the cron string, "@once", "None", a timedelta."""
        return type(self).__name__

    def validate(self) -> None:
        """Raise `InvalidScheduleError` (or `ValueError`) if the timetable cannot work."""

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
    ) -> DagRunInfo | None:
        """The next scheduled run after `last_automated_data_interval`, or None for none."""
        raise NotImplementedError(f"{type(self).__name__} must implement next_dagrun_info()")

    def infer_manual_data_interval(self, *, run_after: datetime) -> DataInterval:
        """The data interval of a run triggered by hand at `run_after`.

        The default is the empty interval at `run_after`; periodic timetables override it.
        """
        return DataInterval.exact(run_after)

    def logical_date_of(self, info: DagRunInfo) -> datetime:
        """The logical date the engine gives a run this timetable scheduled.

        The start of the data interval, as in Airflow 2. Trigger timetables return
        `info.run_after`: their runs are named after the time they fire.
        """
        return info.data_interval.start


def resolve(restriction: TimeRestriction) -> tuple[TimeRestriction, datetime]:
    """`restriction` with every datetime in UTC, and the current time it states.

    The current time is `restriction.now`, or the wall clock when that is None.
    """
    now = as_utc(restriction.now, "now") if restriction.now is not None else datetime.now(UTC)
    resolved = TimeRestriction(
        earliest=None if restriction.earliest is None else as_utc(restriction.earliest, "earliest"),
        latest=None if restriction.latest is None else as_utc(restriction.latest, "latest"),
        catchup=restriction.catchup,
        now=now,
    )
    return resolved, now


def as_utc(value: datetime, what: str = "datetime") -> datetime:
    """`value` as a plain stdlib datetime in UTC, whatever its kind (pendulum, pytz...); a
    naive datetime is a caller bug and raises `ValueError`."""
    if value.utcoffset() is None:
        raise ValueError(f"{what}={value.isoformat()} is naive: timetables take aware datetimes")
    return normalize_datetime(value).astimezone(UTC)
