"""Turn what a user wrote as `schedule=` into a `Timetable`.

    None                      NullTimetable: runs only when triggered
    "@once"                   OnceTimetable
    "@daily", "30 2 * * *"    CronDataIntervalTimetable in the DAG's time zone
    timedelta(hours=6)        DeltaDataIntervalTimetable
    a Timetable instance      itself, once its validate() passes
    Asset(...), [a, b], a | b AssetTriggeredTimetable: runs when the assets are updated

Anything else raises `InvalidScheduleError` naming the DAG, the value and what to write instead.
"""

from __future__ import annotations

from datetime import timedelta, tzinfo

from asyncflow.exceptions import InvalidScheduleError
from asyncflow.models.asset import as_condition
from asyncflow.timetables._cron import PRESETS, resolve_timezone
from asyncflow.timetables.assets import AssetTriggeredTimetable
from asyncflow.timetables.base import Timetable
from asyncflow.timetables.interval import CronDataIntervalTimetable, DeltaDataIntervalTimetable
from asyncflow.timetables.simple import NullTimetable, OnceTimetable

__all__ = ["PRESETS", "create_timetable"]

_KINDS = (
    f"a cron string, a preset (@once, {', '.join(PRESETS)}), a timedelta, None, a Timetable, "
    "or assets (Asset(...), a list of them, a | b, a & b)"
)


def create_timetable(
    schedule: object,
    *,
    timezone: str | tzinfo = "UTC",
    dag_id: str | None = None,
    fileloc: str | None = None,
    allow_seconds: bool = False,
) -> Timetable:
    """The timetable for `schedule`; cron strings are evaluated in `timezone`.

    `allow_seconds=True` accepts croniter's 6- and 7-field crons (seconds last, then year).
    """
    try:
        return _create(schedule, resolve_timezone(timezone), allow_seconds)
    except InvalidScheduleError as err:
        raise InvalidScheduleError(err.detail, dag_id=dag_id, fileloc=fileloc) from None


def _create(schedule: object, timezone: tzinfo, allow_seconds: bool) -> Timetable:
    if schedule is None:
        return NullTimetable()
    if isinstance(schedule, Timetable):
        return _validated(schedule)
    if isinstance(schedule, str):
        if schedule.strip().lower() == "none":
            raise InvalidScheduleError(
                f"schedule={schedule!r} is the string {schedule!r}; use schedule=None "
                "(no quotes) for a DAG that only runs when triggered"
            )
        if schedule.strip() == "@once":
            return OnceTimetable()
        return CronDataIntervalTimetable(schedule, timezone, allow_seconds=allow_seconds)
    if isinstance(schedule, timedelta):
        return DeltaDataIntervalTimetable(schedule)
    condition = as_condition(schedule)
    if condition is not None:
        return AssetTriggeredTimetable(condition)
    if isinstance(schedule, type) and issubclass(schedule, Timetable):
        raise InvalidScheduleError(
            f"schedule={schedule.__name__} is a Timetable class: pass an instance, "
            f"schedule={schedule.__name__}(...)"
        )
    raise InvalidScheduleError(
        f"schedule={schedule!r} is a {type(schedule).__name__}: use {_KINDS}"
    )


def _validated(timetable: Timetable) -> Timetable:
    try:
        timetable.validate()
    except InvalidScheduleError:
        raise
    except ValueError as err:
        raise InvalidScheduleError(
            f"{type(timetable).__name__}.validate() failed: {err}; fix the timetable's arguments"
        ) from err
    return timetable
