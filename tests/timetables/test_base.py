from datetime import UTC, datetime, timedelta, timezone

import pytest

import asyncflow.timetables as timetables
from asyncflow.timetables import DagRunInfo, DataInterval, TimeRestriction, Timetable
from asyncflow.timetables.base import resolve


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_public_names_are_exactly_the_list() -> None:
    assert sorted(timetables.__all__) == sorted(
        [
            "PRESETS",
            "CronDataIntervalTimetable",
            "CronTriggerTimetable",
            "DagRunInfo",
            "DataInterval",
            "DeltaDataIntervalTimetable",
            "DeltaTriggerTimetable",
            "NullTimetable",
            "OnceTimetable",
            "TimeRestriction",
            "Timetable",
            "create_timetable",
        ]
    )
    for name in timetables.__all__:
        assert hasattr(timetables, name), name


def test_data_interval_exact_is_empty_at_one_point() -> None:
    assert DataInterval.exact(utc(2024, 1, 1)) == DataInterval(utc(2024, 1, 1), utc(2024, 1, 1))


def test_dagrun_info_interval_is_due_at_its_end_and_named_after_its_start() -> None:
    info = DagRunInfo.interval(utc(2018, 11, 1), utc(2018, 11, 2))
    assert info.run_after == utc(2018, 11, 2)
    assert info.data_interval == DataInterval(utc(2018, 11, 1), utc(2018, 11, 2))
    assert info.logical_date == utc(2018, 11, 1)


def test_dagrun_info_exact_is_due_at_its_point() -> None:
    info = DagRunInfo.exact(utc(2024, 5, 1, 12))
    assert info.run_after == info.logical_date == utc(2024, 5, 1, 12)
    assert info.data_interval == DataInterval.exact(utc(2024, 5, 1, 12))


def test_time_restriction_now_defaults_to_none() -> None:
    assert TimeRestriction(earliest=None, latest=None, catchup=True).now is None


def test_timetable_defaults_mirror_airflow() -> None:
    timetable = Timetable()
    assert timetable.periodic is True
    assert timetable.can_be_scheduled is True
    assert tuple(timetable.run_ordering) == ("data_interval_end", "logical_date")
    assert timetable.summary == "Timetable"
    timetable.validate()  # a no-op by default


def test_base_next_dagrun_info_must_be_overridden() -> None:
    restriction = TimeRestriction(earliest=None, latest=None, catchup=True, now=utc(2024, 1, 1))
    with pytest.raises(NotImplementedError, match="next_dagrun_info"):
        Timetable().next_dagrun_info(last_automated_data_interval=None, restriction=restriction)


def test_base_manual_interval_is_exact_and_logical_date_is_interval_start() -> None:
    timetable = Timetable()
    assert timetable.infer_manual_data_interval(run_after=utc(2024, 1, 2)) == DataInterval.exact(
        utc(2024, 1, 2)
    )
    info = DagRunInfo(utc(2024, 1, 3), DataInterval(utc(2024, 1, 1), utc(2024, 1, 2)))
    assert timetable.logical_date_of(info) == utc(2024, 1, 1)


def test_resolve_converts_to_utc_and_keeps_the_given_now() -> None:
    plus_two = timezone(timedelta(hours=2))
    restriction = TimeRestriction(
        earliest=datetime(2024, 1, 1, 2, tzinfo=plus_two),
        latest=None,
        catchup=False,
        now=datetime(2024, 1, 5, 2, tzinfo=plus_two),
    )
    resolved, now = resolve(restriction)
    assert now == utc(2024, 1, 5) and now.tzinfo is UTC
    assert resolved.earliest is not None and resolved.earliest.tzinfo is UTC
    assert resolved.earliest == utc(2024, 1, 1)
    assert resolved.catchup is False


def test_resolve_rejects_naive_datetimes() -> None:
    restriction = TimeRestriction(
        earliest=datetime(2024, 1, 1), latest=None, catchup=True, now=utc(2024, 1, 2)
    )
    with pytest.raises(ValueError, match="earliest=2024-01-01T00:00:00 is naive"):
        resolve(restriction)
