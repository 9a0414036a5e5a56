"""Timetables driven by the engine on a fake clock: each scheduled run appears at its moment, not
before, with the right logical date and data interval, exactly once per interval."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from asyncflow import DAG, DagRun, DagRunType, FakeClock
from asyncflow.exceptions import InvalidScheduleError
from asyncflow.models.dag import DAG_DEFAULTS
from asyncflow.operators import EmptyOperator
from asyncflow.timetables import CronTriggerTimetable

from .support import barrier, make_engine, runs, utc, wait_runs

pytestmark = pytest.mark.anyio

BERLIN = ZoneInfo("Europe/Berlin")
SECOND = timedelta(seconds=1)


def one_task_dag(dag_id: str, **kwargs: Any) -> DAG:
    with DAG(dag_id, **kwargs) as dag:
        EmptyOperator(task_id="work")
    return dag


# (logical_date, data_interval_start, data_interval_end, run_after) of the first three runs
Expected = tuple[datetime, datetime, datetime, datetime]


def interval(start: datetime, end: datetime) -> Expected:
    """A data-interval run: named after its start, due at its end."""
    return (start, start, end, end)


CASES: dict[str, tuple[object, datetime, list[Expected]]] = {
    "weekdays at 6": (
        "0 6 * * 1-5",
        utc(2024, 1, 5),  # a Friday: the first interval spans the weekend
        [
            interval(utc(2024, 1, 5, 6), utc(2024, 1, 8, 6)),
            interval(utc(2024, 1, 8, 6), utc(2024, 1, 9, 6)),
            interval(utc(2024, 1, 9, 6), utc(2024, 1, 10, 6)),
        ],
    ),
    "@hourly": (
        "@hourly",
        utc(2024, 1, 1, 0, 30),  # aligned to the next full hour
        [interval(utc(2024, 1, 1, h), utc(2024, 1, 1, h + 1)) for h in (1, 2, 3)],
    ),
    "timedelta(minutes=5)": (
        timedelta(minutes=5),
        utc(2024, 1, 1, 0, 2),  # fixed steps from the start date, no alignment
        [interval(utc(2024, 1, 1, 0, m), utc(2024, 1, 1, 0, m + 5)) for m in (2, 7, 12)],
    ),
    "@once": (
        "@once",
        utc(2024, 1, 1, 5),
        [(utc(2024, 1, 1, 5), utc(2024, 1, 1, 5), utc(2024, 1, 1, 5), utc(2024, 1, 1, 5))],
    ),
    "None": (None, utc(2024, 1, 1), []),
    "CronTriggerTimetable": (
        CronTriggerTimetable("0 6 * * *", timezone="UTC", interval=timedelta(hours=2)),
        utc(2024, 1, 1),
        [  # fires at the cron time and is named after it; covers the 2 hours before
            (utc(2024, 1, 1, 6), utc(2024, 1, 1, 4), utc(2024, 1, 1, 6), utc(2024, 1, 1, 6)),
            (utc(2024, 1, 2, 6), utc(2024, 1, 2, 4), utc(2024, 1, 2, 6), utc(2024, 1, 2, 6)),
            (utc(2024, 1, 3, 6), utc(2024, 1, 3, 4), utc(2024, 1, 3, 6), utc(2024, 1, 3, 6)),
        ],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_each_run_appears_at_its_moment_with_its_interval(case: str) -> None:
    schedule, start, expected = CASES[case]
    clock = FakeClock(start - timedelta(hours=1))
    dag = one_task_dag("tt", schedule=schedule, start_date=start)
    async with make_engine([dag], clock) as engine:
        for index, (logical, begin, end, run_after) in enumerate(expected):
            clock.set(run_after - SECOND)
            await barrier(engine)
            assert len(await runs(engine, "tt")) == index, f"run {index} came before {run_after}"
            clock.set(run_after)
            made = await wait_runs(engine, "tt", index + 1)
            run = made[-1]
            assert (run.logical_date, run.data_interval_start, run.data_interval_end) == (
                logical, begin, end,
            )  # fmt: skip
            assert run.run_type is DagRunType.SCHEDULED
            assert run.run_id == f"scheduled__{logical.isoformat()}"
        # much later, catching up from where it stopped: still one run per interval
        clock.advance(timedelta(days=3))
        await barrier(engine)
        made = await runs(engine, "tt")
        logicals = [r.logical_date for r in made]
        assert len(set(logicals)) == len(logicals)
        for before, after in pairwise(made):
            if not isinstance(schedule, CronTriggerTimetable):
                assert after.data_interval_start == before.data_interval_end  # no gap
        if schedule is None:
            assert made == []
        if schedule == "@once":
            assert len(made) == 1


async def test_default_schedule_is_one_day_with_catchup() -> None:
    dag = one_task_dag("plain", start_date=datetime(2024, 1, 1))
    async with make_engine([dag], FakeClock(utc(2024, 1, 4, 12))) as engine:
        made = await wait_runs(engine, "plain", 3)
    assert [(r.data_interval_start, r.data_interval_end) for r in made] == [
        (utc(2024, 1, day), utc(2024, 1, day + 1)) for day in (1, 2, 3)
    ]


async def test_changing_the_defaults_changes_schedule_and_catchup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(DAG_DEFAULTS, "schedule", "@hourly")
    monkeypatch.setattr(DAG_DEFAULTS, "catchup", False)
    dag = one_task_dag("plain", start_date=datetime(2024, 1, 1))
    assert dag.catchup is False
    async with make_engine([dag], FakeClock(utc(2024, 1, 1, 5, 30))) as engine:
        await barrier(engine)
        made = await runs(engine, "plain")
    # hourly, and without catchup only the latest complete hour [04:00, 05:00)
    assert [(r.data_interval_start, r.data_interval_end) for r in made] == [
        (utc(2024, 1, 1, 4), utc(2024, 1, 1, 5))
    ]


# -- the tutorial's worked example -----------------------------------------------------------------


async def test_worked_example_catchup_gives_three_runs() -> None:
    dag = one_task_dag("tutorial", schedule="@daily", start_date=datetime(2018, 11, 1))
    async with make_engine([dag], FakeClock(utc(2018, 11, 4, 12))) as engine:
        made = await wait_runs(engine, "tutorial", 3, finished=True)
        await barrier(engine)
        assert len(await runs(engine, "tutorial")) == 3
    assert [r.logical_date for r in made] == [utc(2018, 11, d) for d in (1, 2, 3)]
    assert [(r.data_interval_start, r.data_interval_end) for r in made] == [
        (utc(2018, 11, 1), utc(2018, 11, 2)),
        (utc(2018, 11, 2), utc(2018, 11, 3)),
        (utc(2018, 11, 3), utc(2018, 11, 4)),
    ]
    assert {r.run_type for r in made} == {DagRunType.SCHEDULED}


async def test_worked_example_without_catchup_runs_only_the_latest_interval() -> None:
    dag = one_task_dag(
        "tutorial", schedule="@daily", start_date=datetime(2018, 11, 1), catchup=False
    )
    clock = FakeClock(utc(2018, 11, 4, 12))
    async with make_engine([dag], clock) as engine:
        made = await wait_runs(engine, "tutorial", 1)
        await barrier(engine)
        assert len(await runs(engine, "tutorial")) == 1
        # the next one comes when [11-04, 11-05) has ended
        clock.set(utc(2018, 11, 5) - SECOND)
        await barrier(engine)
        assert len(await runs(engine, "tutorial")) == 1
        clock.set(utc(2018, 11, 5))
        later = await wait_runs(engine, "tutorial", 2)
    assert (made[0].logical_date, made[0].data_interval_end) == (
        utc(2018, 11, 3), utc(2018, 11, 4),
    )  # fmt: skip
    assert later[-1].logical_date == utc(2018, 11, 4)


# -- time zones and DST ----------------------------------------------------------------------------


def local_days(made: list[DagRun], zone: ZoneInfo = BERLIN) -> list[str]:
    return [r.logical_date.astimezone(zone).strftime("%m-%d %H:%M") for r in made]


def assert_stored_in_utc_and_contiguous(made: list[DagRun]) -> None:
    for run in made:
        for value in (run.logical_date, run.data_interval_start, run.data_interval_end):
            assert value.utcoffset() == timedelta(0)
    for before, after in pairwise(made):
        assert after.data_interval_start == before.data_interval_end


async def test_berlin_fall_back_night_runs_once() -> None:
    # 2024-10-27 03:00 CEST -> 02:00 CET: 02:30 happens twice that night
    dag = one_task_dag(
        "berlin", schedule="30 2 * * *", timezone="Europe/Berlin",
        start_date=datetime(2024, 10, 25),
    )  # fmt: skip
    async with make_engine([dag], FakeClock(utc(2024, 10, 29, 12))) as engine:
        made = await wait_runs(engine, "berlin", 4, finished=True)
        await barrier(engine)
        assert len(await runs(engine, "berlin")) == 4
    assert local_days(made) == ["10-25 02:30", "10-26 02:30", "10-27 02:30", "10-28 02:30"]
    assert_stored_in_utc_and_contiguous(made)
    assert made[0].logical_date == utc(2024, 10, 25, 0, 30)  # CEST, UTC+2
    assert made[3].logical_date == utc(2024, 10, 28, 1, 30)  # CET, UTC+1
    # the night of the change is one interval, an hour longer than a day
    lengths = [r.data_interval_end - r.data_interval_start for r in made]
    assert sorted(lengths) == [timedelta(hours=24)] * 3 + [timedelta(hours=25)]


async def test_berlin_spring_forward_night_is_not_lost() -> None:
    # 2024-03-31 02:00 CET -> 03:00 CEST: 02:30 does not exist that night
    dag = one_task_dag(
        "berlin", schedule="30 2 * * *", timezone="Europe/Berlin",
        start_date=datetime(2024, 3, 29),
    )  # fmt: skip
    async with make_engine([dag], FakeClock(utc(2024, 4, 2, 12))) as engine:
        made = await wait_runs(engine, "berlin", 4, finished=True)
        await barrier(engine)
        assert len(await runs(engine, "berlin")) == 4
    days = [r.logical_date.astimezone(BERLIN).date().isoformat() for r in made]
    assert days == ["2024-03-29", "2024-03-30", "2024-03-31", "2024-04-01"]
    assert_stored_in_utc_and_contiguous(made)
    assert made[0].logical_date == utc(2024, 3, 29, 1, 30)  # CET
    assert made[3].logical_date == utc(2024, 4, 1, 0, 30)  # CEST
    lengths = [r.data_interval_end - r.data_interval_start for r in made]
    assert sum(lengths, timedelta()) == timedelta(hours=4 * 24 - 1)


async def test_naive_start_date_means_utc() -> None:
    dag = one_task_dag("naive", schedule="@daily", start_date=datetime(2024, 1, 1))
    assert dag.timezone.utcoffset(None) in (None, timedelta(0))
    async with make_engine([dag], FakeClock(utc(2024, 1, 2, 0, 0, 1))) as engine:
        made = await wait_runs(engine, "naive", 1)
    assert made[0].logical_date == utc(2024, 1, 1)


async def test_aware_start_date_sets_the_zone() -> None:
    start = datetime(2024, 1, 1, tzinfo=BERLIN)
    dag = one_task_dag("aware", schedule="@daily", start_date=start)
    clock = FakeClock(utc(2024, 1, 1, 23) - SECOND)  # Berlin's 01-02 00:00 is 01-01 23:00Z
    async with make_engine([dag], clock) as engine:
        await barrier(engine)
        assert await runs(engine, "aware") == []
        clock.set(utc(2024, 1, 1, 23))
        made = await wait_runs(engine, "aware", 1)
    assert made[0].logical_date == utc(2023, 12, 31, 23)  # Berlin midnight, stored in UTC
    assert made[0].data_interval_end == utc(2024, 1, 1, 23)


# -- seconds in cron -------------------------------------------------------------------------------


@pytest.mark.parametrize("cron", ["0 6 * * * 30", "0 6 * * * 30 2024"])
def test_cron_with_seconds_or_year_is_rejected_by_default(cron: str) -> None:
    with pytest.raises(InvalidScheduleError, match=r"has [67] fields") as caught:
        one_task_dag("secs", schedule=cron, start_date=datetime(2024, 1, 1))
    assert "'secs'" in str(caught.value)


def test_cron_with_seconds_error_names_the_dag_argument() -> None:
    with pytest.raises(InvalidScheduleError) as caught:
        one_task_dag("secs", schedule="0 6 * * * 30", start_date=datetime(2024, 1, 1))
    assert "allow_seconds_in_cron=True" in str(caught.value)


async def test_cron_with_seconds_runs_when_allowed() -> None:
    dag = one_task_dag(
        "secs", schedule="0 6 * * * 30", start_date=datetime(2024, 1, 1),
        allow_seconds_in_cron=True,
    )  # fmt: skip
    clock = FakeClock(utc(2024, 1, 2, 6, 0, 29))
    async with make_engine([dag], clock) as engine:
        await barrier(engine)
        assert await runs(engine, "secs") == []
        clock.set(utc(2024, 1, 2, 6, 0, 30))
        made = await wait_runs(engine, "secs", 1)
    assert (made[0].data_interval_start, made[0].data_interval_end) == (
        utc(2024, 1, 1, 6, 0, 30), utc(2024, 1, 2, 6, 0, 30),
    )  # fmt: skip


def test_seconds_in_cron_opt_in_from_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DAG_DEFAULTS, "allow_seconds_in_cron", True)
    dag = one_task_dag("secs", schedule="0 6 * * * 30", start_date=datetime(2024, 1, 1))
    assert dag.timetable.summary == "0 6 * * * 30"
