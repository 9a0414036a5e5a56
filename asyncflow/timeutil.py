"""Time values from user code, made plain, and time arithmetic that cannot overflow.

DAG files bring datetimes and zones of every kind: pendulum's `DateTime` and `Timezone`, pytz,
dateutil, stdlib. Where they enter (a DAG, an operator, a timetable) they become plain stdlib
values, so that nothing deeper ever compares two kinds of datetime:

- `normalize_zone(tz)`: a `ZoneInfo` when the zone can be identified by name (and has
  the same offsets), else a fixed-offset `datetime.timezone` when its offset never changes;
  `ValueError` for a zone that changes offset and cannot be identified (name it instead).
- `normalize_datetime(value)`: a plain `datetime` for the same instant; naive stays naive;
  its zone normalised, or a fixed offset when the zone cannot be identified.
- `as_timedelta(value)`: a duration given as `timedelta` or seconds, checked (no NaN, no
  negative) and clamped to `MAX_DURATION`, so that adding it to a date stays in range.

The scheduler adds user durations to the clock: `add_clamped(at, delta)` gives `at + delta`, or
`FAR_FUTURE` / `FAR_PAST` where the sum would leave datetime's range, never `OverflowError`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "FAR_FUTURE",
    "FAR_PAST",
    "MAX_DURATION",
    "add_clamped",
    "as_timedelta",
    "normalize_datetime",
    "normalize_zone",
]

#: a moment later than any schedule: what `add_clamped` gives instead of overflowing. A year
#: short of datetime.max, so that it can still be shown in any zone and compared safely.
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)
FAR_PAST = datetime(2, 1, 1, tzinfo=UTC)
#: the longest duration a DAG may ask for (timeouts, retry delays): about 100 years.
MAX_DURATION = timedelta(days=36_525)

# Instants at which a zone's offset is compared with the zone its name points to: winter and
# summer of years across the zone database's history.
_PROBES = tuple(
    datetime(year, month, 15, 12, tzinfo=UTC)
    for year in (1975, 1996, 2010, 2021, 2024, 2030)
    for month in (1, 4, 7, 10)
)


def normalize_zone(tz: tzinfo) -> tzinfo:
    """The stdlib equivalent of `tz`: `UTC`, a `ZoneInfo`, or a fixed `timezone`."""
    if tz is UTC:
        return UTC
    if type(tz) is ZoneInfo:
        return tz
    if type(tz) is timezone:
        return UTC if not tz.utcoffset(None) else tz
    name = _zone_name(tz)
    if name is not None:
        named = _zoneinfo("UTC" if name == "Z" else name)
        if named is not None and _offsets(named) == _offsets(tz):
            return named
    offsets = set(_offsets(tz))
    if len(offsets) == 1:
        offset = offsets.pop()
        if offset is not None:
            return UTC if not offset else timezone(offset)
    raise ValueError(
        f"cannot tell which time zone {tz!r} is: its UTC offset changes and it has no IANA "
        "name; give the zone by name instead, e.g. timezone='Europe/Berlin' or "
        "pendulum.timezone('Europe/Berlin')"
    )


def normalize_datetime(value: datetime) -> datetime:
    """A plain `datetime` for the same instant as `value` (pendulum, pytz, dateutil...).

    A naive value stays naive. The zone becomes `normalize_zone`'s answer, or the fixed offset
    `value` has when its zone cannot be identified. `ValueError` when the instant is outside
    datetime's range."""
    zone = value.tzinfo
    if type(value) is datetime and (zone is None or zone is UTC or type(zone) is ZoneInfo):
        return value
    plain = datetime(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        fold=value.fold,
    )
    if zone is None:
        return plain
    offset = value.utcoffset()
    if offset is None:
        return plain
    try:
        instant = (plain - offset).replace(tzinfo=UTC)
    except OverflowError:
        raise ValueError(f"{value!r} is outside the range of dates asyncflow can keep") from None
    try:
        target = normalize_zone(zone)
    except ValueError:
        target = UTC if not offset else timezone(offset)
    try:
        return instant.astimezone(target)
    except OverflowError:
        raise ValueError(f"{value!r} is outside the range of dates asyncflow can keep") from None


def as_timedelta(value: object) -> timedelta:
    """A duration given as a `timedelta` or a number of seconds, clamped to `MAX_DURATION`.

    `TypeError` for anything else (a bool, a string), `ValueError` for NaN or a negative
    duration. Infinity and anything too large for a `timedelta` become `MAX_DURATION`."""
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise ValueError(f"{value!r} is negative: give a duration of zero or more")
        return min(value, MAX_DURATION)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(
            f"{value!r} is not a duration: give a timedelta (e.g. timedelta(minutes=5)) "
            "or a number of seconds"
        )
    seconds = float(value)
    if math.isnan(seconds):
        raise ValueError("NaN is not a duration: give a timedelta or a number of seconds")
    if seconds < 0:
        raise ValueError(f"{value!r} seconds is negative: give a duration of zero or more")
    if seconds >= MAX_DURATION.total_seconds():
        return MAX_DURATION
    return timedelta(seconds=seconds)


def add_clamped(at: datetime, delta: timedelta) -> datetime:
    """`at + delta`, or `FAR_FUTURE` / `FAR_PAST` when the sum would leave datetime's range
    or pass them. `at` is an aware datetime (the clock's UTC time)."""
    try:
        result = at + delta
    except OverflowError:
        return FAR_FUTURE if delta > timedelta(0) else FAR_PAST
    if result > FAR_FUTURE:
        return FAR_FUTURE
    if result < FAR_PAST:
        return FAR_PAST
    return result


def _zone_name(tz: tzinfo) -> str | None:
    """The IANA name a tzinfo of a known library carries: ZoneInfo's (and pendulum's) `key`,
    pytz's `zone`, dateutil's file name."""
    for attribute in ("key", "zone", "_filename"):
        name = getattr(tz, attribute, None)
        if isinstance(name, str) and name:
            marker = "zoneinfo/"
            if marker in name:
                name = name.rsplit(marker, 1)[1]
            return name
    return None


def _zoneinfo(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _offsets(tz: tzinfo) -> list[timedelta | None]:
    offsets: list[timedelta | None] = []
    for probe in _PROBES:
        try:
            offsets.append(probe.astimezone(tz).utcoffset())
        except Exception:  # a user tzinfo that cannot answer: no offset known
            offsets.append(None)
    return offsets
