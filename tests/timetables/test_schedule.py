"""create_timetable: what a user writes as schedule= becomes a Timetable, or a clear error."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from asyncflow.exceptions import InvalidScheduleError
from asyncflow.timetables import (
    PRESETS,
    CronDataIntervalTimetable,
    DagRunInfo,
    DataInterval,
    DeltaDataIntervalTimetable,
    NullTimetable,
    OnceTimetable,
    TimeRestriction,
    Timetable,
    create_timetable,
)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_presets_are_airflows() -> None:
    assert PRESETS == {
        "@hourly": "0 * * * *",
        "@daily": "0 0 * * *",
        "@weekly": "0 0 * * 0",
        "@monthly": "0 0 1 * *",
        "@quarterly": "0 0 1 */3 *",
        "@yearly": "0 0 1 1 *",
        "@annually": "0 0 1 1 *",
    }


def test_none_means_manual_only() -> None:
    assert isinstance(create_timetable(None), NullTimetable)


def test_once() -> None:
    assert isinstance(create_timetable("@once"), OnceTimetable)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_become_cron_data_interval_timetables(preset: str) -> None:
    timetable = create_timetable(preset)
    assert timetable == CronDataIntervalTimetable(PRESETS[preset], "UTC")
    assert timetable.summary == preset


def test_cron_string_is_evaluated_in_the_given_zone() -> None:
    timetable = create_timetable("0 9 * * *", timezone="Europe/Berlin")
    assert isinstance(timetable, CronDataIntervalTimetable)
    assert timetable.timezone == ZoneInfo("Europe/Berlin")
    assert timetable.infer_manual_data_interval(run_after=utc(2024, 1, 2, 12)) == DataInterval(
        utc(2024, 1, 1, 8), utc(2024, 1, 2, 8)
    )


def test_timezone_may_be_a_tzinfo() -> None:
    timetable = create_timetable("@daily", timezone=ZoneInfo("Asia/Tokyo"))
    assert timetable == CronDataIntervalTimetable("@daily", "Asia/Tokyo")


def test_timedelta_becomes_a_delta_data_interval_timetable() -> None:
    assert create_timetable(timedelta(hours=2)) == DeltaDataIntervalTimetable(timedelta(hours=2))


def test_six_fields_work_with_allow_seconds() -> None:
    timetable = create_timetable("* * * * * */10", allow_seconds=True)  # seconds last
    restriction = TimeRestriction(
        earliest=utc(2024, 1, 1), latest=None, catchup=True, now=utc(2024, 1, 2)
    )
    info = timetable.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    assert info == DagRunInfo.interval(utc(2024, 1, 1), utc(2024, 1, 1, 0, 0, 10))


class EveryOtherHour(Timetable):
    """A user's timetable: runs at even hours, covering the two hours before."""

    def __init__(self) -> None:
        self.validated = 0

    def validate(self) -> None:
        self.validated += 1

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
    ) -> DagRunInfo | None:
        if last_automated_data_interval is None:
            if restriction.earliest is None:
                return None
            start = restriction.earliest.replace(minute=0, second=0, microsecond=0)
        else:
            start = last_automated_data_interval.end
        return DagRunInfo.interval(start, start + timedelta(hours=2))


def test_user_timetable_is_validated_and_used_as_is() -> None:
    mine = EveryOtherHour()
    timetable = create_timetable(mine, dag_id="mine")
    assert timetable is mine
    assert mine.validated == 1
    restriction = TimeRestriction(
        earliest=utc(2024, 1, 1, 0, 30), latest=None, catchup=True, now=utc(2024, 1, 2)
    )
    first = timetable.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    assert first == DagRunInfo.interval(utc(2024, 1, 1), utc(2024, 1, 1, 2))
    assert timetable.logical_date_of(first) == utc(2024, 1, 1)


class Broken(Timetable):
    def validate(self) -> None:
        raise ValueError("hours must be positive")


def test_user_timetable_whose_validate_fails_is_an_invalid_schedule() -> None:
    with pytest.raises(InvalidScheduleError) as caught:
        create_timetable(Broken(), dag_id="broken_dag", fileloc="/dags/broken.py")
    message = str(caught.value)
    assert "Broken.validate() failed: hours must be positive" in message
    assert "DAG 'broken_dag'" in message and "/dags/broken.py" in message


def test_timetable_class_instead_of_instance() -> None:
    with pytest.raises(InvalidScheduleError, match=r"pass an instance, schedule=Broken\(...\)"):
        create_timetable(Broken, dag_id="d")


@pytest.mark.parametrize(
    ("schedule", "says"),
    [
        ("None", "use schedule=None (no quotes) for a DAG that only runs when triggered"),
        ("0 0 * *", "not a valid 5-field cron expression or preset"),
        ("61 * * * *", "not a valid 5-field cron expression or preset"),
        ("@fortnightly", "@once, @hourly, @daily, @weekly, @monthly, @quarterly, @yearly"),
        ("", "not a valid 5-field cron expression or preset"),
        ("0 0 31 2 *", "never fires"),
        ("0 0 * * * *", "pass allow_seconds_in_cron=True to the DAG"),
        ("0 0 * * * * 2030", "croniter reads a 6th field as seconds, placed last"),
        (timedelta(0), "not a positive timedelta"),
        (timedelta(hours=-1), "not a positive timedelta"),
        (42, "is a int: use a cron string, a preset (@once, @hourly"),
        (["@daily"], "is a list"),
    ],
)
def test_bad_schedules_name_the_value_the_dag_and_the_fix(schedule: object, says: str) -> None:
    with pytest.raises(InvalidScheduleError) as caught:
        create_timetable(schedule, dag_id="my_dag", fileloc="/dags/my_dag.py")
    error = caught.value
    assert error.dag_id == "my_dag"
    assert str(error).startswith("DAG 'my_dag' (/dags/my_dag.py): ")
    assert repr(schedule) in str(error)
    assert says in str(error)


def test_bad_schedule_without_a_dag_still_names_the_value() -> None:
    with pytest.raises(InvalidScheduleError, match=r"^schedule='@fortnightly' is not a valid"):
        create_timetable("@fortnightly")


def test_unknown_timezone() -> None:
    with pytest.raises(InvalidScheduleError) as caught:
        create_timetable("@daily", timezone="Mars/Olympus_Mons", dag_id="my_dag")
    message = str(caught.value)
    assert "DAG 'my_dag'" in message
    assert "'Mars/Olympus_Mons' is not a known IANA time zone name" in message
    assert "Europe/Berlin" in message  # an example of what to write
