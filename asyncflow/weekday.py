"""`WeekDay`: ISO day numbers (Monday = 1 ... Sunday = 7) by name, as in Airflow."""

from __future__ import annotations

import enum
from collections.abc import Iterable


@enum.unique
class WeekDay(enum.IntEnum):
    MONDAY = 1
    TUESDAY = 2
    WEDNESDAY = 3
    THURSDAY = 4
    FRIDAY = 5
    SATURDAY = 6
    SUNDAY = 7

    @classmethod
    def get_weekday_number(cls, week_day_str: str) -> WeekDay:
        """`"Sunday"` (any case) -> `WeekDay.SUNDAY`."""
        name = week_day_str.upper()
        if name not in cls.__members__:
            raise AttributeError(
                f"invalid week day {week_day_str!r}: use one of "
                f"{[day.name.capitalize() for day in cls]}"
            )
        return cls[name]

    @classmethod
    def convert(cls, day: str | WeekDay) -> int:
        return day if isinstance(day, WeekDay) else cls.get_weekday_number(day)

    @classmethod
    def validate_week_day(cls, week_day: str | WeekDay | Iterable[str | WeekDay]) -> set[int]:
        """A day, a day name, or an iterable of them, as a set of ISO day numbers."""
        if isinstance(week_day, str | WeekDay):
            return {cls.convert(week_day)}
        if not isinstance(week_day, Iterable):
            raise TypeError(
                f"week_day must be a day name, a WeekDay or an iterable of them, got {week_day!r}"
            )
        return {cls.convert(day) for day in week_day}
