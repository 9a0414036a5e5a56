"""Hostile values in a running engine: DAGs built from hostile DAG and operator arguments are
added, triggered and scheduled beside a healthy DAG. Each is refused with an AsyncflowError,
or runs (to whatever end); the scheduler never stops and the healthy DAG keeps running."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pytest

from asyncflow import DAG, AsyncflowError, BaseOperator, Engine, task
from asyncflow.clock import FakeClock
from asyncflow.operators import EmptyOperator
from tests.engine.support import finish
from tests.models.test_hostile_values import DAG_ARGS, HOSTILE, NOW, OPERATORS, TASK_CASES

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::UserWarning")]


def hostile_dag(n: int, rng: random.Random) -> DAG:
    """DAG number `n`: one or two hostile DAG arguments, a task with one or two more."""
    dag_args = {name: rng.choice(HOSTILE) for name in rng.sample(DAG_ARGS, rng.randint(0, 2))}
    cls, name = rng.choice(TASK_CASES)
    task_args: dict[str, Any] = {**OPERATORS[cls], "task_id": "t"}
    task_args[name] = rng.choice(HOSTILE)
    options: dict[str, Any] = {"schedule": "@daily", "start_date": datetime(2026, 5, 1)}
    options.update(dag_args)
    dag_id = options.pop("dag_id", f"hostile_{n}")
    with DAG(dag_id, **options) as dag:
        operator: type[BaseOperator] = cls
        operator(**task_args)
        EmptyOperator(task_id="after")
    return dag


def healthy() -> DAG:
    with DAG("healthy", schedule=None) as dag:

        @task
        def ok() -> str:
            return "fine"

        ok()
    return dag


async def test_hostile_dags_beside_a_healthy_one_never_stop_the_scheduler() -> None:
    rng = random.Random(8)
    clock = FakeClock(NOW)
    refused = added = triggered = 0
    async with Engine(dags=[healthy()], database=":memory:", clock=clock,
                      external_poll_interval=None) as engine:  # fmt: skip
        for n in range(250):
            try:
                dag = hostile_dag(n, rng)
                await engine.add_dag(dag)
            except AsyncflowError:
                refused += 1
                continue
            added += 1
            try:
                await engine.trigger_dag(dag.dag_id)
                triggered += 1
            except AsyncflowError:
                pass
            assert engine._require().crashed is None, f"DAG {n} stopped the scheduler"
        for _ in range(3):  # timetables, retry timers and timeouts get their turn
            clock.advance(timedelta(days=1))
            await engine.ping()
        assert engine._require().crashed is None
        result = await finish(engine, "healthy", timeout=10)
    assert result.run.state == "success"
    assert refused and added and triggered  # the sample reaches all three outcomes
