"""Checks of the values a DAG file passes to `DAG(...)` and to operators.

Each function takes the value and where it was given (DAG, file, task), and returns the value in
the form the engine relies on, or raises `DagDefinitionError` naming the argument, the value
and what to write instead. So a bad value fails its DAG's import, not the scheduler later.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from asyncflow.exceptions import DagDefinitionError
from asyncflow.timeutil import MAX_DURATION, as_timedelta, normalize_datetime, normalize_zone

#: counts (retries, slots, limits) fit a 32-bit signed integer, as Airflow's columns do
MAX_COUNT = 2**31 - 1
#: dag_id and task_id, as Airflow allows them
KEY = re.compile(r"[\w.-]{1,250}")
_INTEGER = re.compile(r"\s*[+-]?\d{1,30}\s*")


class Where:
    """The DAG, file and task an argument belongs to, for error messages."""

    __slots__ = ("dag_id", "fileloc", "task_id")

    def __init__(
        self, dag_id: str | None, fileloc: str | None = None, task_id: str | None = None
    ) -> None:
        self.dag_id = dag_id
        self.fileloc = fileloc
        self.task_id = task_id

    def error(self, message: str) -> DagDefinitionError:
        return DagDefinitionError(
            message, dag_id=self.dag_id, fileloc=self.fileloc, task_id=self.task_id
        )


def count(
    where: Where, name: str, value: object, *, minimum: int = 0, maximum: int = MAX_COUNT
) -> int:
    """An integer argument within [minimum, maximum]. A string of digits is read as Airflow
    does (`retries="3"`); a float must be whole."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _INTEGER.fullmatch(value):
        number = int(value)
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    if number is None:
        raise where.error(f"{name}={value!r} is not a whole number: give an int, e.g. {minimum}")
    if not minimum <= number <= maximum:
        raise where.error(f"{name}={value!r} is out of range: give {minimum} to {maximum}")
    return number


def clamp_count(where: Where, name: str, value: object) -> int:
    """A whole number clamped to the 32-bit range (Airflow's `priority_weight` rule)."""
    number = count(where, name, value, minimum=-(2**64), maximum=2**64)
    return max(-(2**31), min(MAX_COUNT, number))


def optional_count(where: Where, name: str, value: object, *, minimum: int = 1) -> int | None:
    return None if value is None else count(where, name, value, minimum=minimum)


def duration(where: Where, name: str, value: object, *, positive: bool = False) -> timedelta:
    """A duration (`timedelta` or seconds); over `MAX_DURATION` (about 100 years, e.g.
    `timedelta.max` for "never") it is clamped so that adding it to a date cannot overflow."""
    try:
        delta = as_timedelta(value)
    except (TypeError, ValueError) as exc:
        raise where.error(f"{name}: {exc}") from None
    if positive and delta <= timedelta(0):
        raise where.error(f"{name}={value!r} must be longer than zero (or None for no limit)")
    return delta


def optional_duration(
    where: Where, name: str, value: object, *, positive: bool = False
) -> timedelta | None:
    return None if value is None else duration(where, name, value, positive=positive)


def moment(where: Where, name: str, value: object) -> datetime | None:
    """A user datetime (stdlib, pendulum, pytz, dateutil) as a plain `datetime`; naive stays
    naive (the DAG's time zone applies)."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        example = "datetime(2024, 1, 1, tzinfo=UTC)"
        if isinstance(value, date):
            example = f"datetime({value.year}, {value.month}, {value.day}, tzinfo=UTC)"
        raise where.error(f"{name}={value!r} is not a datetime: write e.g. {example}")
    try:
        return normalize_datetime(value)
    except ValueError as exc:
        raise where.error(f"{name}: {exc}") from None


def zone(where: Where, value: tzinfo) -> tzinfo:
    try:
        return normalize_zone(value)
    except ValueError as exc:
        raise where.error(f"timezone: {exc}") from None


def callbacks(where: Where, name: str, value: object) -> list[Callable[..., Any]]:
    """None, one callable, or a list of callables."""
    if value is None:
        return []
    if callable(value):
        return [value]
    if isinstance(value, Sequence) and not isinstance(value, str):
        if all(callable(item) for item in value):
            return list(value)
    raise where.error(f"{name}={value!r:.80} is not a callable or a list of callables")


def mapping(where: Where, name: str, value: object) -> dict[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise where.error(f"{name}={value!r:.80} is not a dict")
    return dict(value)


def strings(where: Where, name: str, value: object) -> list[str]:
    """None, one string, or a list of strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence | set | frozenset) and all(isinstance(v, str) for v in value):
        return list(value)
    raise where.error(f"{name}={value!r:.80} is not a string or a list of strings")


def optional_string(where: Where, name: str, value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise where.error(f"{name}={value!r:.80} is not a string")


__all__ = [
    "KEY",
    "MAX_COUNT",
    "MAX_DURATION",
    "Where",
    "callbacks",
    "clamp_count",
    "count",
    "duration",
    "mapping",
    "moment",
    "optional_count",
    "optional_duration",
    "optional_string",
    "strings",
    "zone",
]
