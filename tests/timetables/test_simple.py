"""`@once` and `None`."""

from datetime import UTC, datetime

from asyncflow.timetables import (
    DagRunInfo,
    DataInterval,
    NullTimetable,
    OnceTimetable,
    TimeRestriction,
)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


NOW = utc(2024, 6, 1)
START = utc(2024, 1, 1, 10)


def once(
    last: DataInterval | None, earliest: datetime | None, latest: datetime | None = None
) -> DagRunInfo | None:
    restriction = TimeRestriction(earliest=earliest, latest=latest, catchup=True, now=NOW)
    return OnceTimetable().next_dagrun_info(
        last_automated_data_interval=last, restriction=restriction
    )


def test_once_runs_at_the_start_date() -> None:
    assert once(None, START) == DagRunInfo.exact(START)


def test_once_runs_only_once() -> None:
    assert once(DataInterval.exact(START), START) is None


def test_once_without_start_date_never_runs() -> None:
    assert once(None, None) is None


def test_once_respects_the_end_date() -> None:
    assert once(None, START, latest=utc(2024, 1, 1)) is None
    assert once(None, START, latest=START) == DagRunInfo.exact(START)


def test_once_ignores_catchup() -> None:
    restriction = TimeRestriction(earliest=START, latest=None, catchup=False, now=NOW)
    info = OnceTimetable().next_dagrun_info(
        last_automated_data_interval=None, restriction=restriction
    )
    assert info == DagRunInfo.exact(START)


def test_once_flags_and_manual_interval() -> None:
    timetable = OnceTimetable()
    assert timetable.periodic is False
    assert timetable.can_be_scheduled is True
    assert timetable.summary == "@once"
    assert timetable.infer_manual_data_interval(run_after=NOW) == DataInterval.exact(NOW)


def test_null_never_schedules() -> None:
    timetable = NullTimetable()
    for catchup in (True, False):
        restriction = TimeRestriction(earliest=START, latest=None, catchup=catchup, now=NOW)
        info = timetable.next_dagrun_info(
            last_automated_data_interval=None, restriction=restriction
        )
        assert info is None


def test_null_flags_and_manual_interval() -> None:
    timetable = NullTimetable()
    assert timetable.can_be_scheduled is False
    assert timetable.summary == "None"
    assert timetable.infer_manual_data_interval(run_after=NOW) == DataInterval.exact(NOW)


def test_equality_by_kind() -> None:
    assert OnceTimetable() == OnceTimetable()
    assert NullTimetable() == NullTimetable()
    assert OnceTimetable() != NullTimetable()
