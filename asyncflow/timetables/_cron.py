"""Cron expressions: validated once, then evaluated in a time zone, correct across DST.

croniter walks naive wall-clock times in the schedule's zone; each wall time it yields becomes
one UTC instant (sometimes two) by this rule:

- A wall time that does not exist (the spring-forward gap) moves forward by the gap:
  `30 2 * * *` in Europe/Berlin fires at 03:30 CEST (01:30 UTC) on 2024-03-31. When that lands
  on an instant the cron fires at anyway (`0 * * * *`: 02:00 -> 03:00), it fires once.
- A wall time that happens twice (the fall-back night) fires at its first occurrence only:
  `30 2 * * *` fires at 02:30 CEST (00:30 UTC) on 2024-10-27, not again an hour later.
- Except when the hour field covers every hour (`*`, `*/1`, `0-23`): such a cron fires at both
  occurrences, so `0 * * * *` fires at 00:00 and 01:00 UTC on that night, once per real hour.

The fire times form one sorted set of UTC instants; `next_after` and `prev_before` search it.
Near a transition the mapping is not monotonic (02:30 -> 01:30 UTC but 03:00 -> 01:00 UTC), so
the search scans a few hours of wall times around the asked instant and keeps the best; away
from transitions it takes croniter's first answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

from asyncflow.exceptions import InvalidScheduleError
from asyncflow.timeutil import normalize_zone

PRESETS: dict[str, str] = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}

_PRESET_LIST = ", ".join(["@once", *PRESETS])
_TICK = timedelta(microseconds=1)
# UTC offsets are sampled this far around an instant to size the scan window.
_PROBES = tuple(timedelta(hours=hours) for hours in range(-26, 27, 2))
_VALIDATION_BASE = datetime(2000, 1, 1)


class CronExhausted(Exception):
    """A cron with a year field has no fire time in the direction asked."""


def resolve_timezone(timezone: str | tzinfo) -> tzinfo:
    """A stdlib tzinfo for an IANA name or any tzinfo (pendulum, pytz, dateutil: see
    `normalize_zone`); `InvalidScheduleError` if it cannot be known."""
    if isinstance(timezone, tzinfo):
        try:
            return normalize_zone(timezone)
        except ValueError as exc:
            raise InvalidScheduleError(str(exc)) from None
    if not isinstance(timezone, str):
        raise InvalidScheduleError(
            f"timezone={timezone!r:.80} is not a time zone: give an IANA name such as "
            "'Europe/Berlin' or a tzinfo"
        )
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidScheduleError(
            f"timezone {timezone!r:.80} is not a known IANA time zone name: "
            "use a name like 'UTC' or 'Europe/Berlin' (see zoneinfo.available_timezones())"
        ) from None


def parse_cron(expression: str, *, allow_seconds: bool = False) -> str:
    """The cron fields of `expression` (presets expanded), checked to be valid and to fire."""
    text = expression.strip()
    if text.startswith("@"):
        if text == "@once":
            raise InvalidScheduleError(
                "'@once' is not a cron expression: use schedule='@once' (OnceTimetable)"
            )
        text = PRESETS.get(text, text)
    fields = len(text.split())
    if fields in (6, 7) and not allow_seconds:
        raise InvalidScheduleError(
            f"cron {expression!r} has {fields} fields: croniter reads a 6th field as seconds, "
            "placed last (so '0 0 * * * *' fires every second of 00:00), and a 7th as the "
            "year; write 5 fields, or pass allow_seconds_in_cron=True to the DAG "
            "(allow_seconds=True to a timetable) if you mean seconds"
        )
    if fields not in (5, 6, 7) or not croniter.is_valid(text):
        raise InvalidScheduleError(
            f"schedule={expression!r} is not a valid 5-field cron expression or preset: write "
            "'minute hour day-of-month month day-of-week' (e.g. '30 2 * * *') "
            f"or use one of {_PRESET_LIST}"
        )
    try:
        croniter(text, _VALIDATION_BASE).get_next(datetime)
    except CroniterBadDateError:
        raise InvalidScheduleError(
            f"cron {expression!r} never fires (no date matches it, e.g. 31 February): "
            "fix its day-of-month and month fields"
        ) from None
    return text


class CronSchedule:
    """A valid cron expression evaluated in one time zone. Instants in and out are UTC."""

    __slots__ = ("_every_hour", "expression", "timezone")

    def __init__(
        self, expression: str, timezone: str | tzinfo = "UTC", *, allow_seconds: bool = False
    ) -> None:
        self.expression = parse_cron(expression, allow_seconds=allow_seconds)
        self.timezone = resolve_timezone(timezone)
        self._every_hour = croniter(self.expression).expanded[1] == ["*"]

    def next_after(self, after: datetime) -> datetime:
        """The first fire time strictly after `after`. `CronExhausted` if there is none."""
        shift = _max_shift(self.timezone, after)
        best: datetime | None = None
        widened = False
        for wall in self._walk(_wall(after, self.timezone) - 3 * shift, backwards=False):
            instants = self._instants(wall)
            for instant in instants:
                if instant > after and (best is None or instant < best):
                    best = instant
            if best is None:
                continue
            if not widened:
                shift, widened = max(shift, _max_shift(self.timezone, best)), True
            # A later wall time maps at most `shift` earlier than this one: none can beat `best`.
            if instants[0] - shift >= best:
                return best
        raise AssertionError("unreachable: _walk() ends only by raising")

    def prev_before(self, before: datetime) -> datetime:
        """The last fire time strictly before `before`. `CronExhausted` if there is none."""
        shift = _max_shift(self.timezone, before)
        best: datetime | None = None
        widened = False
        for wall in self._walk(_wall(before, self.timezone) + 3 * shift, backwards=True):
            instants = self._instants(wall)
            for instant in instants:
                if instant < before and (best is None or instant > best):
                    best = instant
            if best is None:
                continue
            if not widened:
                shift, widened = max(shift, _max_shift(self.timezone, best)), True
            # An earlier wall time maps at most a gap plus a fold later than this one.
            if instants[0] + 2 * shift <= best:
                return best
        raise AssertionError("unreachable: _walk() ends only by raising")

    def align_next(self, at: datetime) -> datetime:
        """`at` if it is a fire time, else the next one."""
        return self.next_after(at - _TICK)

    def align_prev(self, at: datetime) -> datetime:
        """`at` if it is a fire time, else the previous one."""
        return self.prev_before(at + _TICK)

    def _walk(self, start: datetime, *, backwards: bool) -> Iterator[datetime]:
        cron = croniter(self.expression, start)
        step = cron.get_prev if backwards else cron.get_next
        while True:
            try:
                wall = step(datetime)
            except CroniterBadDateError:
                raise CronExhausted(self.expression) from None
            yield wall

    def _instants(self, wall: datetime) -> tuple[datetime, ...]:
        """The UTC instants a naive wall time fires at, earliest first (see the module doc)."""
        local = wall.replace(tzinfo=self.timezone)  # fold=0: first occurrence; gaps move forward
        first = local.astimezone(UTC)
        if self._every_hour:
            repeat = local.replace(fold=1).astimezone(UTC)
            if repeat > first:  # the wall time happens twice: fire at both
                return first, repeat
        return (first,)


def _wall(instant: datetime, timezone: tzinfo) -> datetime:
    return instant.astimezone(timezone).replace(tzinfo=None)


def _max_shift(timezone: tzinfo, around: datetime) -> timedelta:
    """How far the zone's UTC offset moves within a day of `around` (zero far from DST)."""
    offsets = [
        (around + probe).astimezone(timezone).utcoffset() or timedelta() for probe in _PROBES
    ]
    return max(offsets) - min(offsets)
