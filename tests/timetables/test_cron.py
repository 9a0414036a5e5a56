"""CronSchedule: next/prev fire times in a zone, across both DST nights."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from asyncflow.exceptions import InvalidScheduleError
from asyncflow.timetables._cron import CronExhausted, CronSchedule, parse_cron

BERLIN = "Europe/Berlin"


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def fires_between(cron: CronSchedule, start: datetime, end: datetime) -> list[datetime]:
    """Every fire time in (start, end), walking forward with next_after."""
    out: list[datetime] = []
    t = cron.next_after(start)
    while t < end:
        out.append(t)
        t = cron.next_after(t)
    return out


def fires_backwards(cron: CronSchedule, start: datetime, end: datetime) -> list[datetime]:
    """The same fire times, found walking backward with prev_before."""
    out: list[datetime] = []
    t = cron.prev_before(end)
    while t > start:
        out.append(t)
        t = cron.prev_before(t)
    return out[::-1]


def test_next_and_prev_are_strict_and_aligns_are_inclusive() -> None:
    cron = CronSchedule("0 0 * * *")
    assert cron.next_after(utc(2024, 1, 1)) == utc(2024, 1, 2)
    assert cron.prev_before(utc(2024, 1, 2)) == utc(2024, 1, 1)
    assert cron.align_next(utc(2024, 1, 1)) == utc(2024, 1, 1)
    assert cron.align_prev(utc(2024, 1, 1)) == utc(2024, 1, 1)
    assert cron.align_next(utc(2024, 1, 1, 0, 0, 1)) == utc(2024, 1, 2)
    assert cron.align_prev(utc(2024, 1, 1, 23, 59)) == utc(2024, 1, 1)


def test_results_are_utc_even_when_computed_in_a_zone() -> None:
    fire = CronSchedule("0 9 * * *", BERLIN).next_after(utc(2024, 1, 1))
    assert fire == utc(2024, 1, 1, 8)  # 09:00 CET
    assert fire.tzinfo is UTC


def test_zone_follows_summer_time() -> None:
    cron = CronSchedule("0 9 * * *", BERLIN)
    assert cron.next_after(utc(2024, 7, 1)) == utc(2024, 7, 1, 7)  # 09:00 CEST


def test_fixed_offset_tzinfo_works() -> None:
    cron = CronSchedule("0 9 * * *", timezone(timedelta(hours=-5)))
    assert cron.next_after(utc(2024, 7, 1)) == utc(2024, 7, 1, 14)


def test_daily_cron_fires_once_on_the_fall_back_night_at_the_first_occurrence() -> None:
    cron = CronSchedule("30 2 * * *", BERLIN)
    fires = fires_between(cron, utc(2024, 10, 25, 12), utc(2024, 10, 28, 12))
    # 02:30 CEST, then (02:30 CET never), 02:30 CET the next day
    assert fires == [utc(2024, 10, 26, 0, 30), utc(2024, 10, 27, 0, 30), utc(2024, 10, 28, 1, 30)]
    assert fires_backwards(cron, utc(2024, 10, 25, 12), utc(2024, 10, 28, 12)) == fires


def test_daily_cron_fires_once_on_the_spring_forward_night_an_hour_later() -> None:
    cron = CronSchedule("30 2 * * *", BERLIN)
    fires = fires_between(cron, utc(2024, 3, 29, 12), utc(2024, 4, 1, 12))
    # 02:30 does not exist on 03-31: it fires at 03:30 CEST = 01:30 UTC
    assert fires == [utc(2024, 3, 30, 1, 30), utc(2024, 3, 31, 1, 30), utc(2024, 4, 1, 0, 30)]
    assert fires_backwards(cron, utc(2024, 3, 29, 12), utc(2024, 4, 1, 12)) == fires


def test_hourly_cron_fires_every_real_hour_once_on_the_fall_back_night() -> None:
    cron = CronSchedule("0 * * * *", BERLIN)
    start, end = utc(2024, 10, 26, 21, 30), utc(2024, 10, 27, 4, 30)
    fires = fires_between(cron, start, end)
    # 02:00 local happens twice: at 00:00 UTC (CEST) and 01:00 UTC (CET); both fire
    assert fires == [utc(2024, 10, 26, 22), utc(2024, 10, 26, 23)] + [
        utc(2024, 10, 27, hour) for hour in range(5)
    ]
    assert fires_backwards(cron, start, end) == fires


def test_hourly_cron_fires_every_real_hour_once_on_the_spring_forward_night() -> None:
    cron = CronSchedule("0 * * * *", BERLIN)
    start, end = utc(2024, 3, 30, 21, 30), utc(2024, 3, 31, 4, 30)
    fires = fires_between(cron, start, end)
    # 02:00 local does not exist; it maps onto 03:00 CEST, which fires once
    assert fires == [utc(2024, 3, 30, 22), utc(2024, 3, 30, 23)] + [
        utc(2024, 3, 31, hour) for hour in range(5)
    ]
    assert fires_backwards(cron, start, end) == fires


def test_half_hourly_cron_covers_the_repeated_hour_on_the_fall_back_night() -> None:
    cron = CronSchedule("*/30 * * * *", BERLIN)
    fires = fires_between(cron, utc(2024, 10, 26, 23, 45), utc(2024, 10, 27, 2, 15))
    assert fires == [
        utc(2024, 10, 27, 0, 0),
        utc(2024, 10, 27, 0, 30),
        utc(2024, 10, 27, 1, 0),
        utc(2024, 10, 27, 1, 30),
        utc(2024, 10, 27, 2, 0),
    ]


def test_gap_times_moved_forward_are_sorted_and_not_duplicated() -> None:
    # 02:00 and 02:30 do not exist on 2024-03-31 and move onto 03:00 and 03:30 CEST, which
    # the cron fires at anyway: two fire times that night, in order.
    cron = CronSchedule("0,30 2,3 * * *", BERLIN)
    fires = fires_between(cron, utc(2024, 3, 30, 12), utc(2024, 4, 1, 12))
    assert fires == [
        utc(2024, 3, 31, 1, 0),
        utc(2024, 3, 31, 1, 30),
        utc(2024, 4, 1, 0, 0),
        utc(2024, 4, 1, 0, 30),
        utc(2024, 4, 1, 1, 0),
        utc(2024, 4, 1, 1, 30),
    ]
    assert fires_backwards(cron, utc(2024, 3, 30, 12), utc(2024, 4, 1, 12)) == fires


def test_gap_time_later_than_a_real_time_is_ordered_after_it() -> None:
    # Lord Howe springs forward by 30 minutes, 02:00 -> 02:30, on 2024-10-06: 02:15 moves to
    # 02:45 and so fires after 02:30, which exists.
    cron = CronSchedule("15,30 2 * * *", "Australia/Lord_Howe")
    fires = fires_between(cron, utc(2024, 10, 5, 12), utc(2024, 10, 5, 18))
    assert fires == [utc(2024, 10, 5, 15, 30), utc(2024, 10, 5, 15, 45)]  # 02:30, 02:45 +11


def test_a_cron_whose_years_have_passed_is_exhausted() -> None:
    cron = CronSchedule("0 0 1 1 * 0 2030", allow_seconds=True)
    assert cron.next_after(utc(2029, 6, 1)) == utc(2030, 1, 1)
    with pytest.raises(CronExhausted):
        cron.next_after(utc(2030, 6, 1))


def test_parse_cron_expands_presets_and_accepts_five_fields() -> None:
    assert parse_cron("@daily") == "0 0 * * *"
    assert parse_cron(" 30 2 * * * ") == "30 2 * * *"


@pytest.mark.parametrize("expression", ["0 0 * * * *", "0 0 * * * * 2030"])
def test_six_and_seven_fields_need_allow_seconds(expression: str) -> None:
    with pytest.raises(InvalidScheduleError, match="seconds"):
        parse_cron(expression)
    assert parse_cron(expression, allow_seconds=True) == expression


def test_a_cron_that_never_fires_is_rejected() -> None:
    with pytest.raises(InvalidScheduleError, match="never fires"):
        CronSchedule("0 0 31 2 *")
