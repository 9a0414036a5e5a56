"""The injectable clock: simulated hours pass in milliseconds of wall time."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest

from asyncflow import DAG, DagRunState, FakeClock, TaskState

from .support import Probe, Tracker, barrier, make_engine, tis, utc, wait_ti, wait_until

pytestmark = pytest.mark.anyio


async def test_an_hour_of_retry_delay_passes_in_milliseconds() -> None:
    tracker = Tracker()
    tracker.fail_tries = 1
    with DAG("flaky", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        Probe(task_id="flaky", tracker=tracker, retries=1, retry_delay=timedelta(hours=1))
    clock = FakeClock(utc(2024, 1, 1))
    started = time.perf_counter()
    async with make_engine([dag], clock) as engine:
        run = await engine.trigger_dag("flaky")
        waiting = await wait_ti(engine, "flaky", run.run_id, "flaky", TaskState.UP_FOR_RETRY)
        assert waiting.next_try_at == utc(2024, 1, 1, 1)
        clock.advance(timedelta(minutes=59, seconds=59))
        await barrier(engine)
        assert (await tis(engine, "flaky", run.run_id))["flaky"].state is TaskState.UP_FOR_RETRY
        clock.advance(timedelta(seconds=1))
        done = await engine.wait_for_run("flaky", run.run_id, timeout=5)
        ti = (await tis(engine, "flaky", run.run_id))["flaky"]
    elapsed = time.perf_counter() - started
    assert done.state is DagRunState.SUCCESS
    assert ti.try_number == 2
    assert ti.start_date == utc(2024, 1, 1, 1)
    assert elapsed < 0.5, f"an hour of simulated time took {elapsed:.3f}s of wall time"


async def test_a_simulated_week_of_hourly_runs_takes_well_under_a_second() -> None:
    with DAG("hourly", schedule="@hourly", start_date=datetime(2024, 1, 1)) as dag:
        Probe(task_id="work", tracker=Tracker())
    clock = FakeClock(utc(2024, 1, 1))
    started = time.perf_counter()
    async with make_engine([dag], clock) as engine:
        for _ in range(7 * 24):
            clock.advance(timedelta(hours=1))
        count = 7 * 24

        async def all_done() -> bool:
            made = await engine.get_dag_runs("hourly")
            return len(made) == count and all(r.state is DagRunState.SUCCESS for r in made)

        await wait_until(all_done)
    elapsed = time.perf_counter() - started
    assert elapsed < 7 * 0.5, f"a simulated week took {elapsed:.3f}s of wall time"
