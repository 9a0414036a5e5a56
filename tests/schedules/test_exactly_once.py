"""Run creation is exactly once: across restarts, in the middle of a catchup, for `@once`; DAG
and task start/end dates bound what runs."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from asyncflow import DAG, DagRunState, DagRunType, Engine, FakeClock, TaskState
from asyncflow.operators import EmptyOperator

from .support import Probe, Tracker, barrier, make_engine, runs, tis, utc, wait_runs, wait_until

pytestmark = pytest.mark.anyio


def daily(tracker: Tracker, **kwargs: Any) -> DAG:
    with DAG(
        "daily",
        schedule="@daily",
        start_date=datetime(2024, 1, 1),
        **kwargs,
    ) as dag:
        Probe(task_id="work", tracker=tracker, retries=1, retry_delay=0)
    return dag


@pytest.mark.parametrize("max_active_runs", [1, 3])
async def test_restart_in_the_middle_of_catchup_neither_duplicates_nor_skips(
    tmp_path: Path, max_active_runs: int
) -> None:
    database = tmp_path / "state.db"
    tracker = Tracker(hold=True)
    dag = daily(tracker, max_active_runs=max_active_runs)
    clock = FakeClock(utc(2024, 1, 8, 12))  # 7 intervals to catch up
    async with make_engine([dag], clock, database=database) as engine:
        # let the first two runs finish; then stop while the next ones run
        for done in (1, 2):
            first = await wait_until(partial(_held, tracker))
            tracker.release(run_id=first[1])
            await wait_until(partial(_finished_count, engine, done))
        await wait_until(partial(_held, tracker))
        before = await runs(engine, "daily")
        assert 2 < len(before) < 7
        interrupted = {run_id for _, run_id in tracker.held()}
        assert len(interrupted) == max_active_runs
    tracker.release_all()

    clock.set(utc(2024, 1, 10, 12))  # down for two more days
    async with make_engine([dag], clock, database=database) as engine:
        made = await wait_runs(engine, "daily", 9, finished=True)
        await barrier(engine)
        assert len(await runs(engine, "daily")) == 9
        for run in made:  # the interrupted attempts ran again in the same runs, at no try's cost
            ti = (await tis(engine, "daily", run.run_id))["work"]
            assert ti.state is TaskState.SUCCESS
            assert ti.try_number == 1
    assert [r.logical_date for r in made] == [utc(2024, 1, d) for d in range(1, 10)]
    assert {r.run_type for r in made} == {DagRunType.SCHEDULED}
    assert {r.state for r in made} == {DagRunState.SUCCESS}
    for before_run, after_run in pairwise(made):
        assert after_run.data_interval_start == before_run.data_interval_end


async def _held(tracker: Tracker) -> tuple[str, str] | None:
    held = sorted(tracker.held(), key=lambda k: k[1])
    return held[0] if held else None


async def _finished_count(engine: Engine, count: int) -> bool:
    done = [r for r in await runs(engine, "daily") if r.state is DagRunState.SUCCESS]
    return len(done) >= count


async def test_restart_with_the_clock_later_resumes_after_the_last_run(tmp_path: Path) -> None:
    database = tmp_path / "state.db"
    with DAG("daily", schedule="@daily", start_date=datetime(2024, 1, 1)) as dag:
        EmptyOperator(task_id="work")
    clock = FakeClock(utc(2024, 1, 3, 12))
    async with make_engine([dag], clock, database=database) as engine:
        await wait_runs(engine, "daily", 2, finished=True)
    for day in (3, 3, 6):  # a restart at the same time adds nothing
        clock.set(utc(2024, 1, day, 12))
        async with make_engine([dag], clock, database=database) as engine:
            await barrier(engine)
            made = await wait_runs(engine, "daily", day - 1, finished=True)
    assert [r.logical_date for r in made] == [utc(2024, 1, d) for d in range(1, 6)]


async def test_once_runs_once_across_restarts(tmp_path: Path) -> None:
    database = tmp_path / "state.db"
    with DAG("once", schedule="@once", start_date=datetime(2024, 1, 1)) as dag:
        EmptyOperator(task_id="work")
    clock = FakeClock(utc(2024, 1, 1, 1))
    async with make_engine([dag], clock, database=database) as engine:
        await wait_runs(engine, "once", 1, finished=True)
    for later in (timedelta(hours=1), timedelta(days=30)):
        clock.advance(later)
        async with make_engine([dag], clock, database=database) as engine:
            await barrier(engine)
            made = await runs(engine, "once")
            assert [r.logical_date for r in made] == [utc(2024, 1, 1)]


async def test_dag_start_and_end_date_bound_the_runs() -> None:
    with DAG(
        "bounded", schedule="@daily", start_date=datetime(2024, 1, 3),
        end_date=datetime(2024, 1, 5),
    ) as dag:  # fmt: skip
        EmptyOperator(task_id="work")
    clock = FakeClock(utc(2024, 1, 10))
    async with make_engine([dag], clock) as engine:
        made = await wait_runs(engine, "bounded", 3, finished=True)
        clock.advance(timedelta(days=10))
        await barrier(engine)
        assert len(await runs(engine, "bounded")) == 3
    assert [r.logical_date for r in made] == [utc(2024, 1, d) for d in (3, 4, 5)]


async def test_task_start_date_after_the_run_removes_that_task_instance() -> None:
    tracker = Tracker()
    with DAG("late_task", schedule="@daily", start_date=datetime(2024, 1, 1)) as dag:
        early = Probe(task_id="early", tracker=tracker)
        late = Probe(task_id="late", tracker=tracker, start_date=datetime(2024, 1, 3))
        early >> late
    async with make_engine([dag], FakeClock(utc(2024, 1, 5))) as engine:
        made = await wait_runs(engine, "late_task", 4, finished=True)
        states = {
            r.logical_date.day: {t: ti.state for t, ti in (await tis(
                engine, "late_task", r.run_id)).items()}
            for r in made
        }  # fmt: skip
    assert states == {
        1: {"early": TaskState.SUCCESS, "late": TaskState.REMOVED},
        2: {"early": TaskState.SUCCESS, "late": TaskState.REMOVED},
        3: {"early": TaskState.SUCCESS, "late": TaskState.SUCCESS},
        4: {"early": TaskState.SUCCESS, "late": TaskState.SUCCESS},
    }
    assert {r.state for r in made} == {DagRunState.SUCCESS}
    assert sorted(r for t, r in tracker.started if t == "late") == sorted(
        r.run_id for r in made[2:]
    )
