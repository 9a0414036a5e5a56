"""Datetimes and zones of every library a DAG file uses (pendulum, pytz, dateutil) are made plain
stdlib values where they enter, so that a cron or preset DAG with Airflow's usual
`start_date=pendulum.datetime(2021, 1, 1, tz="UTC")` schedules, DST included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pendulum
import pytest
import pytz
from dateutil import tz as dateutil_tz

from asyncflow import DAG
from asyncflow.timetables import (
    CronDataIntervalTimetable,
    CronTriggerTimetable,
    DataInterval,
    TimeRestriction,
)
from asyncflow.timeutil import normalize_datetime, normalize_zone

BERLIN = ZoneInfo("Europe/Berlin")


def intervals(dag: DAG, count: int) -> list[tuple[datetime, datetime]]:
    """The first `count` data intervals the DAG's timetable schedules."""
    found: list[tuple[datetime, datetime]] = []
    last: DataInterval | None = None
    restriction = TimeRestriction(dag.start_date, None, True, now=datetime(2030, 1, 1, tzinfo=UTC))
    for _ in range(count):
        info = dag.timetable.next_dagrun_info(
            last_automated_data_interval=last, restriction=restriction
        )
        assert info is not None
        last = info.data_interval
        found.append((last.start, last.end))
    return found


@pytest.mark.parametrize("schedule", ["@daily", "0 0 * * *"])
def test_a_pendulum_utc_start_date_schedules_a_cron_dag(schedule: str) -> None:
    dag = DAG("pendulum_utc", schedule=schedule, start_date=pendulum.datetime(2021, 1, 1, tz="UTC"))
    assert type(dag.start_date) is datetime
    day = timedelta(days=1)
    start = datetime(2021, 1, 1, tzinfo=UTC)
    assert intervals(dag, 3) == [(start + n * day, start + (n + 1) * day) for n in range(3)]


def test_a_pendulum_berlin_start_date_schedules_in_berlin_across_dst() -> None:
    dag = DAG(
        "pendulum_berlin",
        schedule="30 2 * * *",
        start_date=pendulum.datetime(2021, 3, 26, tz="Europe/Berlin"),
    )
    assert dag.timezone == BERLIN and type(dag.timezone) is ZoneInfo
    starts = [start for start, _ in intervals(dag, 5)]
    local = [s.astimezone(BERLIN).strftime("%m-%d %H:%M %Z") for s in starts]
    # 28 March 2021: 02:30 does not exist in Berlin and moves to 03:30 CEST
    assert local == [
        "03-26 02:30 CET",
        "03-27 02:30 CET",
        "03-28 03:30 CEST",
        "03-29 02:30 CEST",
        "03-30 02:30 CEST",
    ]
    assert starts[1].utcoffset() == timedelta(0)  # instants out are UTC


@pytest.mark.parametrize(
    "start",
    [
        pendulum.datetime(2021, 6, 1, tz="Europe/Berlin"),
        pytz.timezone("Europe/Berlin").localize(datetime(2021, 6, 1)),
        datetime(2021, 6, 1, tzinfo=dateutil_tz.gettz("Europe/Berlin")),
        datetime(2021, 6, 1, tzinfo=ZoneInfo("Europe/Berlin")),
    ],
    ids=["pendulum", "pytz", "dateutil", "zoneinfo"],
)
def test_every_tz_library_gives_the_same_dag(start: datetime) -> None:
    dag = DAG("tz_kinds", schedule="@daily", start_date=start)
    assert dag.timezone == BERLIN
    assert dag.start_date == datetime(2021, 5, 31, 22, tzinfo=UTC)
    assert type(dag.start_date) is datetime
    assert intervals(dag, 1) == [
        (datetime(2021, 5, 31, 22, tzinfo=UTC), datetime(2021, 6, 1, 22, tzinfo=UTC))
    ]


def test_default_args_and_task_dates_are_normalised() -> None:
    from asyncflow.operators import EmptyOperator

    with DAG(
        "tz_default_args",
        schedule="@daily",
        default_args={
            "start_date": pendulum.datetime(2021, 1, 1, tz="Europe/Berlin"),
            "end_date": pendulum.datetime(2021, 12, 31, tz="Europe/Berlin"),
        },
    ) as dag:
        task = EmptyOperator(task_id="t")
    assert dag.start_date == datetime(2020, 12, 31, 23, tzinfo=UTC)
    assert dag.end_date == datetime(2021, 12, 30, 23, tzinfo=UTC)
    for value in (task.start_date, task.end_date):
        assert type(value) is datetime and type(value.tzinfo) is ZoneInfo


def test_a_timetable_given_a_pendulum_zone_and_pendulum_instants() -> None:
    timetable = CronTriggerTimetable("0 9 * * *", timezone=pendulum.timezone("Europe/Berlin"))
    info = timetable.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(
            pendulum.datetime(2021, 7, 1, tz="Europe/Berlin"),
            None,
            False,
            now=pendulum.datetime(2021, 7, 1, 8, tz="Europe/Berlin"),
        ),
    )
    assert info is not None
    assert info.run_after == datetime(2021, 7, 1, 7, tzinfo=UTC)
    assert type(info.run_after) is datetime
    interval = CronDataIntervalTimetable("@daily", pytz.timezone("Europe/Berlin"))
    manual = interval.infer_manual_data_interval(
        run_after=pendulum.datetime(2021, 7, 1, 12, tz="UTC")
    )
    assert manual == DataInterval(
        datetime(2021, 6, 29, 22, tzinfo=UTC), datetime(2021, 6, 30, 22, tzinfo=UTC)
    )


def test_normalize_zone_maps_each_library_to_stdlib() -> None:
    assert normalize_zone(pendulum.timezone("Europe/Berlin")) == BERLIN
    assert normalize_zone(pytz.timezone("America/New_York")) == ZoneInfo("America/New_York")
    assert normalize_zone(dateutil_tz.gettz("Asia/Tokyo")) == ZoneInfo("Asia/Tokyo")
    assert normalize_zone(dateutil_tz.tzutc()) == UTC
    assert normalize_zone(pendulum.fixed_timezone(5400)) == timezone(timedelta(minutes=90))
    assert normalize_zone(pytz.FixedOffset(-300)) == timezone(timedelta(hours=-5))


def test_an_unidentifiable_zone_is_refused_and_a_datetime_in_it_keeps_its_offset() -> None:
    class Shifty(dateutil_tz.tzrange):  # DST rules, no IANA name
        pass

    shifty = Shifty("XST", -18000, "XDT")
    with pytest.raises(ValueError, match="Europe/Berlin"):
        normalize_zone(shifty)
    value = datetime(2021, 7, 1, 12, tzinfo=shifty)
    plain = normalize_datetime(value)
    assert plain == value and type(plain.tzinfo) is timezone
    with pytest.raises(ValueError, match="timezone"):
        DAG("shifty", schedule="@daily", timezone=shifty)


def test_normalize_datetime_keeps_the_instant_and_naive_stays_naive() -> None:
    value = pendulum.datetime(2024, 10, 27, 2, 30, tz="Europe/Berlin")
    plain = normalize_datetime(value)  # the fall-back night: 02:30 happens twice
    assert type(plain) is datetime
    assert plain.timestamp() == value.timestamp()  # (== is False across zones when ambiguous)
    assert plain.utcoffset() == value.utcoffset()
    naive = normalize_datetime(pendulum.naive(2021, 1, 1))
    assert type(naive) is datetime and naive.tzinfo is None
