"""Timezone helpers in the shape of Airflow's `airflow.utils.timezone` and `days_ago`.

Every value returned is an aware stdlib `datetime` (a `pendulum.DateTime` is one too and is
accepted wherever these are). `timezone` arguments take a tzinfo or an IANA name; left out, they
mean UTC, Airflow's default zone.
"""

from __future__ import annotations

import datetime as dt
from datetime import UTC, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "coerce_datetime",
    "convert_to_utc",
    "datetime",
    "days_ago",
    "is_localized",
    "is_naive",
    "make_aware",
    "make_naive",
    "parse",
    "utc",
    "utcnow",
]

utc: tzinfo = UTC


def _zone(timezone: tzinfo | str | None) -> tzinfo:
    if timezone is None:
        return UTC
    return ZoneInfo(timezone) if isinstance(timezone, str) else timezone


def utcnow() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(UTC)


def is_localized(value: dt.datetime) -> bool:
    return value.utcoffset() is not None


def is_naive(value: dt.datetime) -> bool:
    return value.utcoffset() is None


def datetime(*args: Any, **kwargs: Any) -> dt.datetime:
    """`datetime.datetime(...)`, aware: in `tzinfo=` when given, else UTC."""
    kwargs.setdefault("tzinfo", UTC)
    if kwargs["tzinfo"] is None:
        kwargs["tzinfo"] = UTC
    return dt.datetime(*args, **kwargs)


def make_aware(value: dt.datetime, timezone: tzinfo | str | None = None) -> dt.datetime:
    """A naive `value` read as wall time in `timezone` (UTC by default)."""
    if is_localized(value):
        raise ValueError(f"make_aware expects a naive datetime, got {value!r}")
    return value.replace(tzinfo=_zone(timezone))


def make_naive(value: dt.datetime, timezone: tzinfo | str | None = None) -> dt.datetime:
    """An aware `value` as naive wall time in `timezone` (UTC by default)."""
    if is_naive(value):
        raise ValueError(f"make_naive expects an aware datetime, got {value!r}")
    return value.astimezone(_zone(timezone)).replace(tzinfo=None)


def convert_to_utc(value: dt.datetime | None) -> dt.datetime | None:
    """`value` in UTC; a naive value is taken as UTC."""
    if value is None:
        return None
    if is_naive(value):
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def coerce_datetime(
    value: dt.datetime | None, tz: tzinfo | str | None = None
) -> dt.datetime | None:
    """`value` made aware: a naive value is read in `tz` (UTC by default)."""
    if value is None:
        return None
    return value if is_localized(value) else value.replace(tzinfo=_zone(tz))


def parse(string: str, timezone: tzinfo | str | None = None) -> dt.datetime:
    """An ISO 8601 string as an aware datetime; without an offset it is read in `timezone`."""
    value = dt.datetime.fromisoformat(string.strip().replace("Z", "+00:00"))
    return coerce_datetime(value, timezone)  # type: ignore[return-value]


def days_ago(
    n: int, hour: int = 0, minute: int = 0, second: int = 0, microsecond: int = 0
) -> dt.datetime:
    """Midnight UTC (or the given time of day) `n` days before today, as Airflow 2's
    `airflow.utils.dates.days_ago`. It moves with every parse: prefer a fixed start_date."""
    today = utcnow().replace(hour=hour, minute=minute, second=second, microsecond=microsecond)
    return today - timedelta(days=n)
