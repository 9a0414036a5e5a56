"""Catchup creates every missed interval oldest first under max_active_runs; backfill runs a range
on demand, once per interval, and reports progress."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from asyncflow import DAG, DagRunState, DagRunStateChanged, DagRunType, FakeClock
from asyncflow.operators import EmptyOperator

from .support import (
    FINISHED_RUN,
    Probe,
    Tracker,
    barrier,
    collect,
    make_engine,
    peak_running_runs,
    runs,
    started_runs,
    tis,
    utc,
    wait_run_state,
    wait_runs,
)

pytestmark = pytest.mark.anyio


def daily(tracker: Tracker, dag_id: str = "daily", **kwargs: Any) -> DAG:
    options = {"schedule": "@daily", "start_date": datetime(2024, 1, 1), **kwargs}
    with DAG(dag_id, **options) as dag:
        Probe(task_id="work", tracker=tracker)
    return dag


@pytest.mark.parametrize("max_active_runs", [1, 2])
async def test_catchup_runs_every_missed_interval_oldest_first_under_max_active_runs(
    max_active_runs: int,
) -> None:
    dag = daily(Tracker(), max_active_runs=max_active_runs)
    clock = FakeClock(utc(2023, 12, 31))  # before the start: nothing due yet
    async with make_engine([dag], clock) as engine:
        events = collect(engine.subscribe())
        clock.set(utc(2024, 1, 9, 12))  # the engine was "down": 8 intervals to catch up
        made = await wait_runs(engine, "daily", 8, finished=True)
        seen = await events()
    assert [r.logical_date for r in made] == [utc(2024, 1, d) for d in range(1, 9)]
    assert {r.state for r in made} == {DagRunState.SUCCESS}
    assert peak_running_runs(seen) == max_active_runs
    in_order = [r.run_id for r in made]
    assert started_runs(seen) == in_order
    created = [e.run_id for e in seen if isinstance(e, DagRunStateChanged) and e.old_state is None]
    assert created == in_order


async def test_max_active_runs_one_never_has_two_running_with_slow_tasks() -> None:
    tracker = Tracker(hold=True)
    dag = daily(tracker, max_active_runs=1)
    clock = FakeClock(utc(2023, 12, 31))
    async with make_engine([dag], clock) as engine:
        events = collect(engine.subscribe())
        clock.set(utc(2024, 1, 5, 12))
        for day in range(1, 5):
            run_id = f"scheduled__{utc(2024, 1, day).isoformat()}"
            await wait_run_state(engine, "daily", run_id, DagRunState.RUNNING)
            await barrier(engine)
            active = [r for r in await runs(engine, "daily") if r.state not in FINISHED_RUN]
            assert [r.run_id for r in active] == [run_id]
            tracker.release(run_id=run_id)
        await wait_runs(engine, "daily", 4, finished=True)
        seen = await events()
    assert peak_running_runs(seen) == 1


# -- backfill --------------------------------------------------------------------------------------


def no_catchup(tracker: Tracker, **kwargs: Any) -> DAG:
    return daily(tracker, catchup=False, **kwargs)


CLOCK = utc(2024, 2, 1, 12)  # catchup=False: only the interval of 01-31 is scheduled


async def test_backfill_runs_every_interval_once_and_reports_progress() -> None:
    tracker = Tracker()
    async with make_engine([no_catchup(tracker)], FakeClock(CLOCK)) as engine:
        await wait_runs(engine, "daily", 1, finished=True)
        events = collect(engine.subscribe())
        done = await engine.backfill("daily", datetime(2024, 1, 5), datetime(2024, 1, 9))
        seen = await events()
        stored = await runs(engine, "daily")
    assert [r.logical_date for r in done] == [utc(2024, 1, d) for d in range(5, 10)]
    assert [(r.data_interval_start, r.data_interval_end) for r in done] == [
        (utc(2024, 1, d), utc(2024, 1, d + 1)) for d in range(5, 10)
    ]
    assert {r.run_type for r in done} == {DagRunType.BACKFILL}
    assert {r.state for r in done} == {DagRunState.SUCCESS}
    assert all(r.run_id.startswith("backfill__") for r in done)
    assert len(stored) == 6  # the five, plus the scheduled one
    assert sorted(t for t, _ in tracker.started) == ["work"] * 6
    for run in done:  # progress: created, started and finished, each as an event
        states = [
            (e.old_state, e.new_state)
            for e in seen
            if isinstance(e, DagRunStateChanged) and e.run_id == run.run_id
        ]
        assert states == [
            (None, DagRunState.QUEUED),
            (DagRunState.QUEUED, DagRunState.RUNNING),
            (DagRunState.RUNNING, DagRunState.SUCCESS),
        ]


async def test_backfill_by_default_skips_existing_runs() -> None:
    tracker = Tracker()
    async with make_engine([no_catchup(tracker)], FakeClock(CLOCK)) as engine:
        await wait_runs(engine, "daily", 1, finished=True)
        first = await engine.backfill("daily", datetime(2024, 1, 5), datetime(2024, 1, 7))
        again = await engine.backfill("daily", datetime(2024, 1, 4), datetime(2024, 1, 8))
        over_scheduled = await engine.backfill(
            "daily", datetime(2024, 1, 31), datetime(2024, 1, 31)
        )
        stored = await runs(engine, "daily")
    assert [r.logical_date.day for r in first] == [5, 6, 7]
    assert [r.logical_date.day for r in again] == [4, 8]
    assert over_scheduled == []
    assert [r.logical_date.day for r in stored] == [4, 5, 6, 7, 8, 31]
    assert len(tracker.started) == 6


async def test_backfill_reprocess_failed_reruns_only_failed_runs() -> None:
    tracker = Tracker()
    tracker.failing.add(("work", "2024-01-06"))
    async with make_engine([no_catchup(tracker)], FakeClock(CLOCK)) as engine:
        await wait_runs(engine, "daily", 1, finished=True)
        first = await engine.backfill("daily", datetime(2024, 1, 5), datetime(2024, 1, 7))
        assert [r.state for r in first] == [
            DagRunState.SUCCESS, DagRunState.FAILED, DagRunState.SUCCESS,
        ]  # fmt: skip
        tracker.failing.clear()
        none = await engine.backfill("daily", datetime(2024, 1, 5), datetime(2024, 1, 7))
        assert none == []
        redone = await engine.backfill(
            "daily", datetime(2024, 1, 5), datetime(2024, 1, 7), reprocess="failed"
        )
        tries = {r.logical_date.day: (await tis(engine, "daily", r.run_id))["work"].try_number
                 for r in first}  # fmt: skip
    assert [(r.run_id, r.state) for r in redone] == [(first[1].run_id, DagRunState.SUCCESS)]
    assert tries == {5: 1, 6: 2, 7: 1}


async def test_backfill_reprocess_completed_reruns_every_finished_run() -> None:
    tracker = Tracker()
    tracker.failing.add(("work", "2024-01-06"))
    async with make_engine([no_catchup(tracker)], FakeClock(CLOCK)) as engine:
        await wait_runs(engine, "daily", 1, finished=True)
        first = await engine.backfill("daily", datetime(2024, 1, 5), datetime(2024, 1, 7))
        tracker.failing.clear()
        redone = await engine.backfill(
            "daily", datetime(2024, 1, 5), datetime(2024, 1, 7), reprocess="completed"
        )
        tries = {r.logical_date.day: (await tis(engine, "daily", r.run_id))["work"].try_number
                 for r in first}  # fmt: skip
        stored = await runs(engine, "daily")
    assert [r.run_id for r in redone] == [r.run_id for r in first]
    assert {r.state for r in redone} == {DagRunState.SUCCESS}
    assert tries == {5: 2, 6: 2, 7: 2}
    assert len(stored) == 4


async def test_backfill_max_active_runs_caps_its_running_runs() -> None:
    tracker = Tracker()
    async with make_engine([no_catchup(tracker)], FakeClock(CLOCK)) as engine:
        await wait_runs(engine, "daily", 1, finished=True)
        events = collect(engine.subscribe())
        done = await engine.backfill(
            "daily", datetime(2024, 1, 1), datetime(2024, 1, 8), max_active_runs=2
        )
        seen = await events()
    assert len(done) == 8
    assert peak_running_runs(seen) == 2
    assert started_runs(seen) == [r.run_id for r in done]  # oldest first


async def test_backfill_without_cap_is_bounded_by_the_dags_max_active_runs() -> None:
    tracker = Tracker()
    async with make_engine([no_catchup(tracker, max_active_runs=3)], FakeClock(CLOCK)) as engine:
        await wait_runs(engine, "daily", 1, finished=True)
        events = collect(engine.subscribe())
        done = await engine.backfill("daily", datetime(2024, 1, 1), datetime(2024, 1, 8))
        seen = await events()
    assert len(done) == 8
    assert peak_running_runs(seen) == 3


async def test_backfill_of_an_unscheduled_dag_is_a_clear_error() -> None:
    with DAG("manual", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        EmptyOperator(task_id="work")
    async with make_engine([dag], FakeClock(CLOCK)) as engine:
        with pytest.raises(ValueError, match="schedule=None"):
            await engine.backfill("manual", datetime(2024, 1, 1), datetime(2024, 1, 3))
        assert await runs(engine, "manual") == []
