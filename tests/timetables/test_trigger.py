"""Trigger timetables: a run fires at the cron or delta time and is named after it."""

from datetime import UTC, datetime, timedelta

import pytest

from asyncflow.exceptions import InvalidScheduleError
from asyncflow.timetables import (
    CronTriggerTimetable,
    DagRunInfo,
    DataInterval,
    DeltaTriggerTimetable,
    TimeRestriction,
    Timetable,
)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def restrict(
    earliest: datetime | None,
    *,
    catchup: bool,
    now: datetime,
    latest: datetime | None = None,
) -> TimeRestriction:
    return TimeRestriction(earliest=earliest, latest=latest, catchup=catchup, now=now)


def triggers(
    timetable: Timetable,
    restriction: TimeRestriction,
    count: int,
    last: DataInterval | None = None,
) -> list[datetime]:
    """The run_after of `count` successive runs, feeding each data interval back."""
    out: list[datetime] = []
    for _ in range(count):
        info = timetable.next_dagrun_info(
            last_automated_data_interval=last, restriction=restriction
        )
        if info is None:
            break
        out.append(info.run_after)
        last = info.data_interval
    return out


def next_info(
    timetable: Timetable, restriction: TimeRestriction, last: DataInterval | None = None
) -> DagRunInfo | None:
    return timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)


NINE = CronTriggerTimetable("0 9 * * *", timezone="UTC")
NOW = utc(2024, 1, 5, 12)


def test_cron_trigger_fires_at_the_cron_time_with_an_empty_interval() -> None:
    info = next_info(NINE, restrict(utc(2024, 1, 1), catchup=True, now=NOW))
    assert info == DagRunInfo.exact(utc(2024, 1, 1, 9))
    assert NINE.logical_date_of(info) == utc(2024, 1, 1, 9)


def test_cron_trigger_catchup_fires_at_every_time_from_the_start_date() -> None:
    restriction = restrict(utc(2024, 1, 1, 9), catchup=True, now=NOW)
    assert triggers(NINE, restriction, 3) == [utc(2024, 1, day, 9) for day in (1, 2, 3)]


def test_cron_trigger_catchup_without_start_date_has_no_run() -> None:
    assert next_info(NINE, restrict(None, catchup=True, now=NOW)) is None


def test_cron_trigger_no_catchup_fires_at_the_latest_passed_time() -> None:
    info = next_info(NINE, restrict(utc(2024, 1, 1), catchup=False, now=NOW))
    assert info is not None and info.run_after == utc(2024, 1, 5, 9)


def test_cron_trigger_no_catchup_without_start_date_uses_now() -> None:
    info = next_info(NINE, restrict(None, catchup=False, now=NOW))
    assert info is not None and info.run_after == utc(2024, 1, 5, 9)


def test_cron_trigger_no_catchup_continues_after_the_last_run() -> None:
    last = DataInterval.exact(utc(2024, 1, 5, 9))
    info = next_info(NINE, restrict(utc(2024, 1, 1), catchup=False, now=NOW), last)
    assert info is not None and info.run_after == utc(2024, 1, 6, 9)


def test_cron_trigger_no_catchup_skips_missed_times() -> None:
    last = DataInterval.exact(utc(2024, 1, 2, 9))
    info = next_info(NINE, restrict(utc(2024, 1, 1), catchup=False, now=NOW), last)
    assert info is not None and info.run_after == utc(2024, 1, 5, 9)


def test_cron_trigger_no_catchup_waits_for_a_future_start_date() -> None:
    info = next_info(NINE, restrict(utc(2024, 1, 10, 10), catchup=False, now=NOW))
    assert info is not None and info.run_after == utc(2024, 1, 11, 9)


def test_cron_trigger_end_date_bounds_the_runs() -> None:
    restriction = restrict(utc(2024, 1, 1), catchup=True, now=NOW, latest=utc(2024, 1, 2, 9))
    assert triggers(NINE, restriction, 10) == [utc(2024, 1, 1, 9), utc(2024, 1, 2, 9)]


def test_cron_trigger_interval_reaches_back_but_the_run_is_named_after_the_trigger() -> None:
    timetable = CronTriggerTimetable("0 9 * * *", timezone="UTC", interval=timedelta(hours=1))
    info = next_info(timetable, restrict(utc(2024, 1, 1), catchup=True, now=NOW))
    assert info is not None
    assert info.run_after == utc(2024, 1, 1, 9)
    assert info.data_interval == DataInterval(utc(2024, 1, 1, 8), utc(2024, 1, 1, 9))
    assert timetable.logical_date_of(info) == utc(2024, 1, 1, 9)
    assert info.logical_date == utc(2024, 1, 1, 8)  # the record's own view: interval start
    second = next_info(timetable, restrict(utc(2024, 1, 1), catchup=True, now=NOW), info[1])
    assert second is not None and second.run_after == utc(2024, 1, 2, 9)


def test_trigger_manual_interval_reaches_back_by_interval() -> None:
    timetable = CronTriggerTimetable("0 9 * * *", timezone="UTC", interval=timedelta(hours=2))
    assert timetable.infer_manual_data_interval(run_after=utc(2024, 1, 1, 13)) == DataInterval(
        utc(2024, 1, 1, 11), utc(2024, 1, 1, 13)
    )
    assert NINE.infer_manual_data_interval(run_after=NOW) == DataInterval.exact(NOW)


def test_cron_trigger_fires_once_on_each_dst_night_in_berlin() -> None:
    timetable = CronTriggerTimetable("30 2 * * *", timezone="Europe/Berlin")
    fall = triggers(timetable, restrict(utc(2024, 10, 26), catchup=True, now=NOW), 3)
    assert fall == [utc(2024, 10, 26, 0, 30), utc(2024, 10, 27, 0, 30), utc(2024, 10, 28, 1, 30)]
    spring = triggers(timetable, restrict(utc(2024, 3, 30), catchup=True, now=NOW), 3)
    assert spring == [utc(2024, 3, 30, 1, 30), utc(2024, 3, 31, 1, 30), utc(2024, 4, 1, 0, 30)]


def test_hourly_cron_trigger_fires_at_both_repeated_hours() -> None:
    timetable = CronTriggerTimetable("0 * * * *", timezone="Europe/Berlin")
    fires = triggers(timetable, restrict(utc(2024, 10, 26, 23), catchup=True, now=NOW), 4)
    assert fires == [utc(2024, 10, 26, 23)] + [utc(2024, 10, 27, hour) for hour in range(3)]


def test_cron_trigger_summary_and_equality() -> None:
    assert NINE.summary == "0 9 * * *"
    assert CronTriggerTimetable("0 9 * * *", timezone="UTC") == NINE
    assert CronTriggerTimetable("0 9 * * *", timezone="UTC", interval=timedelta(1)) != NINE


def test_trigger_interval_must_not_be_negative() -> None:
    with pytest.raises(InvalidScheduleError, match="interval="):
        CronTriggerTimetable("0 9 * * *", timezone="UTC", interval=timedelta(hours=-1))
    with pytest.raises(InvalidScheduleError, match="interval="):
        DeltaTriggerTimetable(timedelta(hours=1), interval=timedelta(hours=-1))


SIX_HOURS = DeltaTriggerTimetable(timedelta(hours=6))


def test_delta_trigger_fires_at_the_start_date_then_every_delta() -> None:
    restriction = restrict(utc(2024, 1, 1, 1, 15), catchup=True, now=NOW)
    assert triggers(SIX_HOURS, restriction, 3) == [
        utc(2024, 1, 1, 1, 15),
        utc(2024, 1, 1, 7, 15),
        utc(2024, 1, 1, 13, 15),
    ]


def test_delta_trigger_no_catchup_fires_now_then_delta_after_the_last_trigger() -> None:
    restriction = restrict(utc(2024, 1, 1), catchup=False, now=NOW)
    first = next_info(SIX_HOURS, restriction)
    assert first == DagRunInfo.exact(NOW)
    later = restrict(utc(2024, 1, 1), catchup=False, now=NOW + timedelta(minutes=5))
    second = next_info(SIX_HOURS, later, DataInterval.exact(NOW))
    assert second == DagRunInfo.exact(NOW + timedelta(hours=6))


def test_delta_trigger_no_catchup_waits_for_a_future_start_date() -> None:
    info = next_info(SIX_HOURS, restrict(utc(2024, 2, 1), catchup=False, now=NOW))
    assert info == DagRunInfo.exact(utc(2024, 2, 1))


def test_delta_trigger_interval_and_end_date() -> None:
    timetable = DeltaTriggerTimetable(timedelta(hours=6), interval=timedelta(hours=6))
    restriction = restrict(utc(2024, 1, 1), catchup=True, now=NOW, latest=utc(2024, 1, 1, 6))
    infos: list[DagRunInfo] = []
    last = None
    for _ in range(10):
        info = next_info(timetable, restriction, last)
        if info is None:
            break
        infos.append(info)
        last = info.data_interval
    assert [timetable.logical_date_of(info) for info in infos] == [
        utc(2024, 1, 1),
        utc(2024, 1, 1, 6),
    ]
    assert infos[1].data_interval == DataInterval(utc(2024, 1, 1), utc(2024, 1, 1, 6))


def test_delta_trigger_summary_and_validation() -> None:
    assert SIX_HOURS.summary == "6:00:00"
    assert DeltaTriggerTimetable(timedelta(hours=6)) == SIX_HOURS
    with pytest.raises(InvalidScheduleError, match="not a positive timedelta"):
        DeltaTriggerTimetable(timedelta(0))


def test_cron_trigger_with_a_year_field_stops_after_its_last_year() -> None:
    timetable = CronTriggerTimetable("0 0 1 * * 0 2030", timezone="UTC", allow_seconds=True)
    restriction = restrict(utc(2030, 11, 15), catchup=True, now=NOW)
    assert triggers(timetable, restriction, 5) == [utc(2030, 12, 1)]
