"""Retries: `retries`, `retry_delay` on the injected clock, exponential backoff capped by
`max_retry_delay`, and `try_number` counting attempts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from asyncflow import DAG, AsyncflowFailException, Engine, FakeClock, TaskInstance
from asyncflow.operators import EmptyOperator, PythonOperator
from tests.engine.support import finish, outcome, task_reached, wait_for_event

pytestmark = pytest.mark.anyio


def failing_until(success_try: int) -> Any:
    def attempt(ti: Any) -> str:
        if ti.try_number < success_try:
            raise RuntimeError(f"attempt {ti.try_number} failed")
        return f"succeeded on try {ti.try_number}"

    return attempt


async def record(engine: Engine, run_id: str, task_id: str) -> TaskInstance:
    tis = await engine.get_task_instances("retries", run_id)
    return next(ti for ti in tis if ti.task_id == task_id)


async def tick(engine: Engine, clock: FakeClock) -> None:
    """One round trip through the scheduler loop (another DAG's run) at the clock's time."""
    await finish(engine, "tick", logical_date=clock.now())


def tick_dag() -> DAG:
    with DAG("tick", schedule=None) as dag:
        EmptyOperator(task_id="noop")
    return dag


async def test_fail_fail_succeed_ends_with_try_number_3_after_each_retry_delay() -> None:
    clock = FakeClock(datetime(2024, 1, 1, tzinfo=UTC))
    with DAG("retries", schedule=None) as dag:
        PythonOperator(
            task_id="flaky",
            python_callable=failing_until(3),
            retries=2,
            retry_delay=timedelta(seconds=30),
        )
    async with Engine(dags=[dag, tick_dag()], database=":memory:", clock=clock) as engine:
        async with engine.subscribe() as events:
            run = await engine.trigger_dag("retries")
            for try_number in (1, 2):
                event = await wait_for_event(events, task_reached("flaky", "up_for_retry"))
                assert event.try_number == try_number
                ti = await record(engine, run.run_id, "flaky")
                assert ti.state == "up_for_retry"
                assert ti.try_number == try_number and ti.max_tries == 2
                assert ti.error == f"RuntimeError: attempt {try_number} failed"
                assert ti.next_try_at == clock.now() + timedelta(seconds=30)
                # not a second early: the retry waits for the clock
                clock.advance(timedelta(seconds=29))
                await tick(engine, clock)
                assert (await record(engine, run.run_id, "flaky")).state == "up_for_retry"
                clock.advance(timedelta(seconds=1))
        result = await outcome(engine, "retries", run.run_id)
    ti = result.tis["flaky"]
    assert (ti.state, ti.try_number, ti.error, ti.next_try_at) == ("success", 3, None, None)
    assert result.xcoms["flaky"] == "succeeded on try 3"
    assert result.run.state == "success"


async def test_out_of_retries_the_task_fails() -> None:
    with DAG("retries", schedule=None) as dag:
        PythonOperator(
            task_id="hopeless", python_callable=failing_until(99), retries=1, retry_delay=0
        )
    async with Engine(dags=[dag], database=":memory:") as engine:
        result = await finish(engine, "retries")
    ti = result.tis["hopeless"]
    assert (ti.state, ti.try_number, ti.max_tries) == ("failed", 2, 1)
    assert ti.error == "RuntimeError: attempt 2 failed"
    assert result.run.state == "failed"


async def test_asyncflow_fail_exception_fails_without_using_retries() -> None:
    def give_up() -> None:
        raise AsyncflowFailException("bad credentials")

    with DAG("retries", schedule=None) as dag:
        PythonOperator(task_id="give_up", python_callable=give_up, retries=5, retry_delay=0)
    async with Engine(dags=[dag], database=":memory:") as engine:
        result = await finish(engine, "retries")
    ti = result.tis["give_up"]
    assert (ti.state, ti.try_number) == ("failed", 1)
    assert "bad credentials" in (ti.error or "")


async def test_exponential_backoff_grows_up_to_max_retry_delay() -> None:
    clock = FakeClock(datetime(2024, 1, 1, tzinfo=UTC))
    with DAG("retries", schedule=None) as dag:
        PythonOperator(
            task_id="backoff",
            python_callable=failing_until(5),
            retries=4,
            retry_delay=timedelta(seconds=10),
            retry_exponential_backoff=True,
            max_retry_delay=timedelta(seconds=25),
        )
    delays = []
    async with Engine(dags=[dag], database=":memory:", clock=clock) as engine:
        async with engine.subscribe() as events:
            run = await engine.trigger_dag("retries")
            for try_number in (1, 2, 3, 4):
                await wait_for_event(events, task_reached("backoff", "up_for_retry"))
                ti = await record(engine, run.run_id, "backoff")
                assert ti.try_number == try_number and ti.next_try_at is not None
                delay = ti.next_try_at - clock.now()
                delays.append(delay.total_seconds())
                clock.advance(delay)
        result = await outcome(engine, "retries", run.run_id)
    assert result.tis["backoff"].try_number == 5
    for try_number, delay in enumerate(delays, start=1):
        assert min(10 * 2 ** (try_number - 1), 25) <= delay <= 25, delays
    assert delays[0] < delays[1] <= delays[2]
    assert delays[-1] == 25
