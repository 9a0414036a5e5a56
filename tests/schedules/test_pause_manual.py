"""Pause and unpause, and manual runs: conf, logical dates, inferred data intervals, params."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from asyncflow import (
    DAG,
    DagDefinitionError,
    DagRunState,
    DagRunType,
    FakeClock,
    Param,
    ParamValidationError,
    TaskState,
)
from asyncflow.operators import EmptyOperator

from .support import (
    Probe,
    Tracker,
    barrier,
    make_engine,
    runs,
    utc,
    wait_runs,
    wait_ti,
)

pytestmark = pytest.mark.anyio
START = utc(2024, 1, 1)


def hourly(tracker: Tracker | None = None, **kwargs: Any) -> DAG:
    with DAG("hourly", schedule="@hourly", start_date=datetime(2024, 1, 1), **kwargs) as dag:
        if tracker is None:
            EmptyOperator(task_id="work")
        else:
            Probe(task_id="work", tracker=tracker)
    return dag


async def test_pause_stops_new_runs_but_lets_the_running_one_finish() -> None:
    tracker = Tracker(hold=True)
    clock = FakeClock(START)
    async with make_engine([hourly(tracker)], clock) as engine:
        clock.set(utc(2024, 1, 1, 1))
        (first,) = await wait_runs(engine, "hourly", 1)
        await wait_ti(engine, "hourly", first.run_id, "work", TaskState.RUNNING)
        await engine.pause_dag("hourly")
        assert engine.is_paused("hourly")
        tracker.release_all()
        finished = await engine.wait_for_run("hourly", first.run_id, timeout=5)
        clock.set(utc(2024, 1, 1, 5, 30))
        await barrier(engine)
        assert len(await runs(engine, "hourly")) == 1
    assert finished.state is DagRunState.SUCCESS


async def test_unpause_resumes_and_catches_up() -> None:
    clock = FakeClock(utc(2024, 1, 1, 1))
    async with make_engine([hourly()], clock) as engine:
        await wait_runs(engine, "hourly", 1, finished=True)
        await engine.pause_dag("hourly")
        clock.set(utc(2024, 1, 1, 5, 30))
        await barrier(engine)
        assert len(await runs(engine, "hourly")) == 1
        await engine.unpause_dag("hourly")
        made = await wait_runs(engine, "hourly", 5, finished=True)
    assert [r.logical_date for r in made] == [utc(2024, 1, 1, h) for h in range(5)]


async def test_unpause_without_catchup_runs_only_the_latest_interval() -> None:
    clock = FakeClock(utc(2024, 1, 1, 1, 30))
    async with make_engine([hourly(catchup=False)], clock) as engine:
        await wait_runs(engine, "hourly", 1, finished=True)
        await engine.pause_dag("hourly")
        clock.set(utc(2024, 1, 1, 5, 30))
        await barrier(engine)
        await engine.unpause_dag("hourly")
        await barrier(engine)
        made = await runs(engine, "hourly")
    assert [r.logical_date for r in made] == [utc(2024, 1, 1, 0), utc(2024, 1, 1, 4)]


async def test_paused_upon_creation_creates_no_runs_until_unpaused() -> None:
    clock = FakeClock(utc(2024, 1, 1, 3))
    async with make_engine([hourly(is_paused_upon_creation=True)], clock) as engine:
        await barrier(engine)
        assert engine.is_paused("hourly")
        assert await runs(engine, "hourly") == []
        await engine.unpause_dag("hourly")
        made = await wait_runs(engine, "hourly", 3, finished=True)
    assert [r.logical_date.hour for r in made] == [0, 1, 2]


async def test_pause_state_survives_a_restart(tmp_path: Path) -> None:
    database = tmp_path / "state.db"
    clock = FakeClock(utc(2024, 1, 1, 1))
    async with make_engine([hourly()], clock, database=database) as engine:
        await wait_runs(engine, "hourly", 1, finished=True)
        await engine.pause_dag("hourly")
    clock.set(utc(2024, 1, 1, 6))
    async with make_engine([hourly()], clock, database=database) as engine:
        await barrier(engine)
        assert engine.is_paused("hourly")
        assert len(await runs(engine, "hourly")) == 1
        await engine.unpause_dag("hourly")
        await wait_runs(engine, "hourly", 6, finished=True)
    # the stored flag wins over is_paused_upon_creation once the DAG is known
    async with make_engine(
        [hourly(is_paused_upon_creation=True)], clock, database=database
    ) as engine:
        assert not engine.is_paused("hourly")


# -- manual runs -----------------------------------------------------------------------------------


def manual(tracker: Tracker, schedule: object = "@daily", **kwargs: Any) -> DAG:
    with DAG(
        "manual",
        schedule=schedule,
        start_date=datetime(2024, 1, 1),
        **kwargs,
    ) as dag:
        Probe(task_id="work", tracker=tracker)
    return dag


async def test_trigger_with_conf_and_logical_date_infers_the_cron_interval() -> None:
    tracker = Tracker()
    clock = FakeClock(utc(2023, 12, 1))  # before the start date: nothing scheduled
    async with make_engine([manual(tracker)], clock) as engine:
        run = await engine.trigger_dag("manual", conf={"k": "v"}, logical_date=utc(2024, 1, 5, 10))
        done = await engine.wait_for_run("manual", run.run_id, timeout=5)
        assert len(await runs(engine, "manual")) == 1
    assert done.state is DagRunState.SUCCESS
    assert done.run_type is DagRunType.MANUAL
    assert done.logical_date == utc(2024, 1, 5, 10)
    # [previous fire, aligned fire] of @daily around 01-05 10:00
    assert (done.data_interval_start, done.data_interval_end) == (utc(2024, 1, 4), utc(2024, 1, 5))
    assert done.conf == {"k": "v"}
    assert tracker.seen[("work", run.run_id)]["conf"] == {"k": "v"}


async def test_trigger_without_logical_date_uses_the_clocks_now() -> None:
    tracker = Tracker()
    clock = FakeClock(utc(2023, 12, 7, 15, 20))
    async with make_engine([manual(tracker)], clock) as engine:
        run = await engine.trigger_dag("manual")
        done = await engine.wait_for_run("manual", run.run_id, timeout=5)
    assert done.logical_date == utc(2023, 12, 7, 15, 20)
    assert (done.data_interval_start, done.data_interval_end) == (
        utc(2023, 12, 6), utc(2023, 12, 7),
    )  # fmt: skip
    assert done.conf == {}


async def test_trigger_of_an_unscheduled_dag_has_an_empty_interval() -> None:
    tracker = Tracker()
    clock = FakeClock(utc(2024, 3, 3, 3))
    async with make_engine([manual(tracker, schedule=None)], clock) as engine:
        run = await engine.trigger_dag("manual")
        done = await engine.wait_for_run("manual", run.run_id, timeout=5)
    assert (done.logical_date, done.data_interval_start, done.data_interval_end) == (
        utc(2024, 3, 3, 3), utc(2024, 3, 3, 3), utc(2024, 3, 3, 3),
    )  # fmt: skip


async def test_params_have_defaults_that_conf_overrides() -> None:
    tracker = Tracker()
    params = {"size": 10, "mode": Param("fast", type="string", enum=["fast", "slow"])}
    dag = manual(tracker, schedule=None, params=params)
    async with make_engine([dag], FakeClock(START)) as engine:
        plain = await engine.trigger_dag("manual", logical_date=utc(2024, 1, 1))
        custom = await engine.trigger_dag(
            "manual", logical_date=utc(2024, 1, 2), conf={"mode": "slow"}
        )
        for run in (plain, custom):
            await engine.wait_for_run("manual", run.run_id, timeout=5)
    assert tracker.seen[("work", plain.run_id)]["params"] == {"size": 10, "mode": "fast"}
    assert tracker.seen[("work", custom.run_id)]["params"] == {"size": 10, "mode": "slow"}


@pytest.mark.parametrize("conf", [None, {}, {"who": 3}], ids=["no conf", "missing", "wrong type"])
async def test_a_required_param_without_value_fails_before_any_run(
    conf: dict[str, Any] | None,
) -> None:
    tracker = Tracker()
    dag = manual(tracker, schedule=None, params={"who": Param(type="string")})
    async with make_engine([dag], FakeClock(START)) as engine:
        with pytest.raises(ParamValidationError, match="who"):
            await engine.trigger_dag("manual", conf=conf)
        await barrier(engine)
        assert await runs(engine, "manual") == []
        ok = await engine.trigger_dag("manual", conf={"who": "me"})
        await engine.wait_for_run("manual", ok.run_id, timeout=5)
    assert tracker.seen[("work", ok.run_id)]["params"] == {"who": "me"}


async def test_a_scheduled_dag_with_a_required_param_fails_when_it_is_built() -> None:
    with pytest.raises(DagDefinitionError, match="who") as caught:  # as Airflow, at parse time
        manual(Tracker(), params={"who": Param(type="string")})
    assert "'manual'" in str(caught.value)


async def test_a_manual_run_does_not_shift_the_schedule() -> None:
    tracker = Tracker()
    clock = FakeClock(utc(2024, 1, 1, 12))
    async with make_engine([manual(tracker)], clock) as engine:
        manual_run = await engine.trigger_dag("manual")
        await engine.wait_for_run("manual", manual_run.run_id, timeout=5)
        clock.set(utc(2024, 1, 2))
        made = await wait_runs(engine, "manual", 2, finished=True)
    assert [(r.run_type, r.logical_date) for r in made] == [
        (DagRunType.SCHEDULED, utc(2024, 1, 1)),
        (DagRunType.MANUAL, utc(2024, 1, 1, 12)),
    ]
