"""Data-interval timetables: Airflow 2's algorithm, cron and delta."""

from datetime import UTC, datetime, timedelta

import pytest

from asyncflow.exceptions import InvalidScheduleError
from asyncflow.timetables import (
    CronDataIntervalTimetable,
    DagRunInfo,
    DataInterval,
    DeltaDataIntervalTimetable,
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


def runs(
    timetable: Timetable,
    restriction: TimeRestriction,
    count: int,
    last: DataInterval | None = None,
) -> list[DagRunInfo]:
    """`count` successive runs, feeding each data interval back as the last one."""
    out: list[DagRunInfo] = []
    for _ in range(count):
        info = timetable.next_dagrun_info(
            last_automated_data_interval=last, restriction=restriction
        )
        if info is None:
            break
        out.append(info)
        last = info.data_interval
    return out


DAILY = CronDataIntervalTimetable("@daily", "UTC")
NOW = utc(2018, 11, 4, 12)


def test_worked_example_daily_catchup_from_2018_11_01() -> None:
    restriction = restrict(utc(2018, 11, 1), catchup=True, now=NOW)
    infos = runs(DAILY, restriction, 4)
    assert [info.logical_date for info in infos] == [utc(2018, 11, day) for day in (1, 2, 3, 4)]
    assert [info.data_interval for info in infos] == [
        DataInterval(utc(2018, 11, day), utc(2018, 11, day + 1)) for day in (1, 2, 3, 4)
    ]
    assert all(info.run_after == info.data_interval.end for info in infos)
    # A caller whose clock reads 2018-11-04 12:00 creates the runs that are due: 11-01..11-03.
    due = [info.logical_date for info in infos if info.run_after <= NOW]
    assert due == [utc(2018, 11, 1), utc(2018, 11, 2), utc(2018, 11, 3)]


def test_catchup_ignores_now() -> None:
    restriction = restrict(utc(2018, 11, 1), catchup=True, now=utc(2030, 1, 1))
    info = DAILY.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    assert info == DagRunInfo.interval(utc(2018, 11, 1), utc(2018, 11, 2))


def test_start_date_not_on_the_cron_starts_at_the_next_fire_time() -> None:
    restriction = restrict(utc(2018, 11, 1, 10), catchup=True, now=NOW)
    info = DAILY.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    assert info == DagRunInfo.interval(utc(2018, 11, 2), utc(2018, 11, 3))


def test_no_catchup_starts_at_the_latest_interval_that_has_ended() -> None:
    restriction = restrict(utc(2018, 11, 1), catchup=False, now=NOW)
    info = DAILY.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    assert info == DagRunInfo.interval(utc(2018, 11, 3), utc(2018, 11, 4))


def test_no_catchup_with_now_on_a_boundary_takes_the_interval_ending_now() -> None:
    restriction = restrict(utc(2018, 11, 1), catchup=False, now=utc(2018, 11, 4))
    info = DAILY.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    assert info == DagRunInfo.interval(utc(2018, 11, 3), utc(2018, 11, 4))


def test_no_catchup_never_goes_before_the_start_date() -> None:
    restriction = restrict(utc(2018, 11, 10, 6), catchup=False, now=NOW)
    info = DAILY.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    assert info == DagRunInfo.interval(utc(2018, 11, 11), utc(2018, 11, 12))


def test_no_catchup_skips_missed_intervals_after_the_last_run() -> None:
    restriction = restrict(utc(2018, 11, 1), catchup=False, now=NOW)
    last = DataInterval(utc(2018, 10, 20), utc(2018, 10, 21))
    info = DAILY.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
    assert info == DagRunInfo.interval(utc(2018, 11, 3), utc(2018, 11, 4))


def test_no_catchup_continues_from_a_recent_last_run() -> None:
    restriction = restrict(utc(2018, 11, 1), catchup=False, now=NOW)
    last = DataInterval(utc(2018, 11, 3), utc(2018, 11, 4))
    info = DAILY.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
    assert info == DagRunInfo.interval(utc(2018, 11, 4), utc(2018, 11, 5))


def test_no_catchup_and_no_start_date_uses_now() -> None:
    restriction = restrict(None, catchup=False, now=NOW)
    info = DAILY.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    assert info == DagRunInfo.interval(utc(2018, 11, 3), utc(2018, 11, 4))


def test_catchup_without_start_date_or_last_run_has_no_run() -> None:
    restriction = restrict(None, catchup=True, now=NOW)
    assert (
        DAILY.next_dagrun_info(last_automated_data_interval=None, restriction=restriction) is None
    )


def test_subsequent_run_starts_where_the_last_one_ended_without_a_start_date() -> None:
    restriction = restrict(None, catchup=True, now=NOW)
    last = DataInterval(utc(2018, 11, 5), utc(2018, 11, 6))
    info = DAILY.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
    assert info == DagRunInfo.interval(utc(2018, 11, 6), utc(2018, 11, 7))


def test_end_date_bounds_the_runs() -> None:
    restriction = restrict(utc(2018, 11, 1), catchup=True, now=NOW, latest=utc(2018, 11, 3))
    infos = runs(DAILY, restriction, 10)
    # A run whose interval starts on the end date still runs, as in Airflow.
    assert [info.logical_date for info in infos] == [utc(2018, 11, day) for day in (1, 2, 3)]


def test_end_date_before_start_date_has_no_run() -> None:
    restriction = restrict(utc(2018, 11, 5), catchup=True, now=NOW, latest=utc(2018, 11, 3))
    assert (
        DAILY.next_dagrun_info(last_automated_data_interval=None, restriction=restriction) is None
    )


def test_cron_manual_interval_is_the_last_complete_interval() -> None:
    assert DAILY.infer_manual_data_interval(run_after=utc(2018, 11, 4, 12)) == DataInterval(
        utc(2018, 11, 3), utc(2018, 11, 4)
    )
    assert DAILY.infer_manual_data_interval(run_after=utc(2018, 11, 4)) == DataInterval(
        utc(2018, 11, 3), utc(2018, 11, 4)
    )


def test_cron_intervals_follow_the_zone_across_both_dst_nights() -> None:
    timetable = CronDataIntervalTimetable("30 2 * * *", "Europe/Berlin")
    fall = runs(timetable, restrict(utc(2024, 10, 26), catchup=True, now=NOW), 2)
    assert [info.data_interval for info in fall] == [
        DataInterval(utc(2024, 10, 26, 0, 30), utc(2024, 10, 27, 0, 30)),
        DataInterval(utc(2024, 10, 27, 0, 30), utc(2024, 10, 28, 1, 30)),  # 25 hours
    ]
    spring = runs(timetable, restrict(utc(2024, 3, 30), catchup=True, now=NOW), 2)
    assert [info.data_interval for info in spring] == [
        DataInterval(utc(2024, 3, 30, 1, 30), utc(2024, 3, 31, 1, 30)),  # 03:30 CEST
        DataInterval(utc(2024, 3, 31, 1, 30), utc(2024, 4, 1, 0, 30)),
    ]


def test_hourly_intervals_cover_the_repeated_hour_once_each() -> None:
    timetable = CronDataIntervalTimetable("@hourly", "Europe/Berlin")
    infos = runs(timetable, restrict(utc(2024, 10, 26, 23), catchup=True, now=NOW), 4)
    starts = [info.logical_date for info in infos]
    assert starts == [utc(2024, 10, 26, 23)] + [utc(2024, 10, 27, hour) for hour in range(3)]
    assert all(info.data_interval.end - info.logical_date == timedelta(hours=1) for info in infos)


def test_cron_summary_keeps_the_preset_and_equality_uses_the_expansion() -> None:
    assert DAILY.summary == "@daily"
    assert CronDataIntervalTimetable("0 0 * * *", "UTC") == DAILY
    assert CronDataIntervalTimetable("0 0 * * *", "Europe/Berlin") != DAILY


def test_cron_with_a_year_field_has_no_interval_past_its_last_fire_time() -> None:
    timetable = CronDataIntervalTimetable("0 0 1 * * 0 2030", "UTC", allow_seconds=True)
    restriction = restrict(utc(2030, 10, 15), catchup=True, now=NOW)
    # 12-01 is the last fire time: no interval can start there, as none would end.
    assert [info.logical_date for info in runs(timetable, restriction, 5)] == [utc(2030, 11, 1)]


DELTA = DeltaDataIntervalTimetable(timedelta(hours=6))


def test_delta_walks_fixed_steps_from_the_unaligned_start_date() -> None:
    restriction = restrict(utc(2018, 11, 1, 1, 15), catchup=True, now=NOW)
    infos = runs(DELTA, restriction, 3)
    assert [info.data_interval for info in infos] == [
        DataInterval(utc(2018, 11, 1, 1, 15), utc(2018, 11, 1, 7, 15)),
        DataInterval(utc(2018, 11, 1, 7, 15), utc(2018, 11, 1, 13, 15)),
        DataInterval(utc(2018, 11, 1, 13, 15), utc(2018, 11, 1, 19, 15)),
    ]
    assert all(info.run_after == info.data_interval.end for info in infos)


def test_delta_no_catchup_starts_one_delta_before_now() -> None:
    restriction = restrict(utc(2018, 11, 1), catchup=False, now=NOW)
    info = DELTA.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    assert info == DagRunInfo.interval(utc(2018, 11, 4, 6), utc(2018, 11, 4, 12))


def test_delta_no_catchup_respects_a_later_start_date() -> None:
    restriction = restrict(utc(2018, 11, 6), catchup=False, now=NOW)
    info = DELTA.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    assert info == DagRunInfo.interval(utc(2018, 11, 6), utc(2018, 11, 6, 6))


def test_delta_end_date_bounds_the_runs() -> None:
    restriction = restrict(utc(2018, 11, 1), catchup=True, now=NOW, latest=utc(2018, 11, 1, 6))
    assert [info.logical_date for info in runs(DELTA, restriction, 10)] == [
        utc(2018, 11, 1),
        utc(2018, 11, 1, 6),
    ]


def test_delta_steps_in_fixed_durations_across_dst() -> None:
    timetable = DeltaDataIntervalTimetable(timedelta(days=1))
    restriction = restrict(utc(2024, 10, 26, 0, 30), catchup=True, now=NOW)
    assert [info.logical_date for info in runs(timetable, restriction, 3)] == [
        utc(2024, 10, 26, 0, 30),
        utc(2024, 10, 27, 0, 30),
        utc(2024, 10, 28, 0, 30),
    ]


def test_delta_manual_interval_ends_at_run_after() -> None:
    assert DELTA.infer_manual_data_interval(run_after=utc(2018, 11, 4, 12)) == DataInterval(
        utc(2018, 11, 4, 6), utc(2018, 11, 4, 12)
    )


def test_delta_summary_and_equality() -> None:
    assert DELTA.summary == "6:00:00"
    assert DeltaDataIntervalTimetable(timedelta(days=1)).summary == "1 day, 0:00:00"
    assert DeltaDataIntervalTimetable(timedelta(hours=6)) == DELTA


@pytest.mark.parametrize("delta", [timedelta(0), timedelta(hours=-1)])
def test_delta_must_be_positive(delta: timedelta) -> None:
    with pytest.raises(InvalidScheduleError, match="not a positive timedelta"):
        DeltaDataIntervalTimetable(delta)
