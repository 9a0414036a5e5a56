"""Checks of the values a DAG file passes to `DAG(...)` and to operators.

Each function takes the value and where it was given (DAG, file, task), and returns the value in
the form the engine relies on, or raises `DagDefinitionError` naming the argument, the value
and what to write instead. So a bad value fails its DAG's import, not the scheduler later.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from asyncflow.exceptions import DagDefinitionError
from asyncflow.timeutil import MAX_DURATION, as_timedelta, normalize_datetime, normalize_zone

#: counts (retries, slots, limits) fit a 32-bit signed integer, as Airflow's columns do
MAX_COUNT = 2**31 - 1
#: dag_id and task_id, as Airflow allows them
KEY = re.compile(r"[\w.-]{1,250}")
_INTEGER = re.compile(r"\s*[+-]?\d{1,30}\s*")


#: the dates a DAG or task may start or end at: far enough inside datetime's range that the
#: engine's date arithmetic (intervals up to MAX_DURATION long) cannot leave it
EARLIEST = datetime(1000, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def show(value: object) -> str:
    """`repr(value)` for a message: shortened, and never raising."""
    try:
        text = repr(value)
    except Exception:  # a user object whose __repr__ fails
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= 80 else f"{text[:77]}..."


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
    """An integer argument within [minimum, maximum]."""
    number = _whole(where, name, value, minimum)
    if not minimum <= number <= maximum:
        raise where.error(f"{name}={show(value)} is out of range: give {minimum} to {maximum}")
    return number


def clamp_count(where: Where, name: str, value: object) -> int:
    """A whole number clamped to the 32-bit range (Airflow's `priority_weight` rule)."""
    return max(-MAX_COUNT - 1, min(MAX_COUNT, _whole(where, name, value, 1)))


def _whole(where: Where, name: str, value: object, example: int) -> int:
    """A string of digits is read as Airflow does (`retries="3"`); a float must be whole."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise where.error(f"{name}={show(value)} is not a whole number: give an int, e.g. {example}")


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
        raise where.error(f"{name}={show(value)} must be longer than zero (or None for no limit)")
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
        raise where.error(f"{name}={show(value)} is not a datetime: write e.g. {example}")
    try:
        plain = normalize_datetime(value)
        instant = plain.replace(tzinfo=UTC) if plain.tzinfo is None else plain
        in_range = EARLIEST <= instant <= LATEST
    except ValueError as exc:
        raise where.error(f"{name}: {exc}") from None
    except Exception as exc:  # a tzinfo whose methods raise
        raise where.error(
            f"{name}={show(value)} cannot be read: its tzinfo raised {type(exc).__name__}: "
            f"{exc}; use zoneinfo.ZoneInfo or pendulum time zones"
        ) from None
    if not in_range:
        raise where.error(
            f"{name}={show(value)} is outside the years {EARLIEST.year} to {LATEST.year}: "
            f"give a real date{', or None for no end' if 'end' in name else ''}"
        )
    return plain


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
    if isinstance(value, Sequence) and not isinstance(value, str) and all(map(callable, value)):
        return list(value)
    raise where.error(f"{name}={show(value)} is not a callable or a list of callables")


def mapping(where: Where, name: str, value: object) -> dict[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise where.error(f"{name}={show(value)} is not a dict")
    return dict(value)


def strings(where: Where, name: str, value: object) -> list[str]:
    """None, one string, or a list of strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence | set | frozenset) and all(isinstance(v, str) for v in value):
        return list(value)
    raise where.error(f"{name}={show(value)} is not a string or a list of strings")


def exit_codes(where: Where, value: object) -> tuple[int, ...]:
    """`skip_on_exit_code`: None, one exit code, or a list of them."""
    if value is None:
        return ()
    items = list(value) if isinstance(value, list | tuple | set | frozenset) else [value]
    return tuple(count(where, "skip_on_exit_code", v, minimum=0, maximum=255) for v in items)


def encoding(where: Where, name: str, value: object) -> str:
    import codecs

    if isinstance(value, str):
        try:
            codecs.lookup(value)
            return value
        except (LookupError, ValueError):
            pass
    raise where.error(f"{name}={show(value)} is not a known text encoding: e.g. 'utf-8'")


def optional_string(where: Where, name: str, value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise where.error(f"{name}={show(value)} is not a string")


__all__ = [
    "EARLIEST",
    "KEY",
    "LATEST",
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
    "show",
    "strings",
    "zone",
]
