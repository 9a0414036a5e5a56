"""The scheduler: event-driven (a finished task starts its downstream at once, no polling), and
bounded by global `parallelism`, per-DAG `max_active_tasks` and pools."""

from __future__ import annotations

import anyio
import pytest

from asyncflow import DAG, Engine, FakeClock, Pool, chain
from asyncflow.operators import PythonOperator
from tests.engine.support import finish, run_dag

pytestmark = pytest.mark.anyio


async def noop() -> None:
    return None


async def test_a_chain_of_50_completes_while_the_clock_stands_still() -> None:
    clock = FakeClock()
    with DAG("chain50", schedule=None) as dag:
        chain(*(PythonOperator(task_id=f"t{n:02}", python_callable=noop) for n in range(50)))
    async with Engine(dags=[dag], database=":memory:", clock=clock) as engine:
        result = await finish(engine, "chain50", timeout=10)
    # no step waited on the clock: each finish made the next task ready at once
    assert set(result.states.values()) == {"success"}
    assert [ti.try_number for ti in result.tis.values()] == [1] * 50


class Concurrency:
    """Tasks that count how many of them run at once."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0

    async def task(self) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            await anyio.sleep(0.02)  # overlap with whatever else is allowed to run
        finally:
            self.now -= 1


def wide_dag(dag_id: str, counter: Concurrency, width: int = 12, **dag_args: object) -> DAG:
    with DAG(dag_id, schedule=None, **dag_args) as dag:  # type: ignore[arg-type]
        for n in range(width):
            PythonOperator(task_id=f"t{n}", python_callable=counter.task)
    return dag


async def test_global_parallelism_is_never_exceeded() -> None:
    counter = Concurrency()
    result = await run_dag(wide_dag("parallel", counter), parallelism=3)
    assert set(result.states.values()) == {"success"}
    assert counter.peak == 3


async def test_parallelism_is_shared_by_all_dags() -> None:
    counter = Concurrency()
    dags = [wide_dag("left", counter, width=6), wide_dag("right", counter, width=6)]
    async with Engine(dags=dags, database=":memory:", parallelism=4) as engine:
        left = await engine.trigger_dag("left")
        right = await engine.trigger_dag("right")
        for dag_id, run in (("left", left), ("right", right)):
            done = await engine.wait_for_run(dag_id, run.run_id, timeout=10)
            assert done.state == "success"
    assert counter.peak == 4


async def test_max_active_tasks_caps_one_dag() -> None:
    counter = Concurrency()
    result = await run_dag(wide_dag("capped", counter, max_active_tasks=2), parallelism=32)
    assert set(result.states.values()) == {"success"}
    assert counter.peak == 2


async def test_max_active_tasks_counts_across_the_runs_of_a_dag() -> None:
    counter = Concurrency()
    dag = wide_dag("capped_runs", counter, width=4, max_active_tasks=3)
    async with Engine(dags=[dag], database=":memory:", parallelism=32) as engine:
        runs = [await engine.trigger_dag("capped_runs", run_id=f"r{n}") for n in range(3)]
        for run in runs:
            done = await engine.wait_for_run("capped_runs", run.run_id, timeout=10)
            assert done.state == "success"
    assert counter.peak == 3


async def test_a_pool_limits_the_tasks_that_use_it() -> None:
    counter = Concurrency()
    with DAG("pooled", schedule=None) as dag:
        for n in range(6):
            PythonOperator(task_id=f"p{n}", python_callable=counter.task, pool="db")
    result = await run_dag(dag, pools=[Pool("db", 2)], parallelism=32)
    assert set(result.states.values()) == {"success"}
    assert counter.peak == 2


async def test_statistics_report_an_idle_engine_after_a_run() -> None:
    counter = Concurrency()
    async with Engine(dags=[wide_dag("stats", counter, width=3)], database=":memory:") as engine:
        await finish(engine, "stats")
        stats = engine.statistics()
    assert stats["running"] == 0 and stats["ready"] == 0 and stats["active_runs"] == 0
    assert stats["commits"] >= 1
