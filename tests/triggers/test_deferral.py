"""Deferral as Airflow defines it: a deferred task holds no slot, resumes in `method_name` as the
rest of the same try, times out into a failure that retries per policy, is stopped by clear and
mark, and can begin deferred (`start_from_trigger`) without running execute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from asyncflow import DAG, Engine, FakeClock, TaskState
from tests.engine.support import outcome, task_reached, wait_for_event
from tests.triggers.helpers import (
    CALLS,
    AsyncWaitOperator,
    NeverOperator,
    StartDeferred,
    WaitOperator,
)

pytestmark = pytest.mark.anyio
START = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _calls() -> None:
    CALLS.clear()


async def _deferred(engine: Engine, dag_id: str, task_id: str = "wait") -> str:
    """Trigger a run and wait until `task_id` is deferred (its trigger started)."""
    async with engine.subscribe() as events:
        run = await engine.trigger_dag(dag_id)
        await wait_for_event(events, task_reached(task_id, "deferred"))
    return run.run_id


@pytest.mark.parametrize("operator", [WaitOperator, AsyncWaitOperator])
async def test_a_deferred_task_holds_no_slot_and_resumes_in_the_same_try(operator: type) -> None:
    clock = FakeClock(START)
    with DAG("d", schedule=None) as dag:
        operator(task_id="wait", seconds=60)
    async with Engine(dags=[dag], database=":memory:", clock=clock) as engine:
        run_id = await _deferred(engine, "d")
        stats = engine.statistics()
        assert stats["running"] == 0
        ti = {t.task_id: t for t in await engine.get_task_instances("d", run_id)}["wait"]
        assert (ti.state, ti.try_number) == (TaskState.DEFERRED, 1)
        clock.advance(59)
        await engine.ping()
        assert CALLS == [("execute", "wait", 1)]
        clock.advance(1)
        done = await outcome(engine, "d", run_id)
    assert done.states == {"wait": "success"}
    assert done.tis["wait"].try_number == 1
    assert CALLS == [("execute", "wait", 1), ("resume", "wait", 1)]
    assert done.xcoms["wait"] == {"event": "2024-01-01T00:01:00+00:00", "note": "kept"}


async def test_xcoms_pushed_before_deferring_survive_the_resume() -> None:
    clock = FakeClock(START)
    with DAG("x", schedule=None) as dag:
        WaitOperator(task_id="wait", seconds=5)
    async with Engine(dags=[dag], database=":memory:", clock=clock) as engine:
        run_id = await _deferred(engine, "x")
        clock.advance(5)
        await outcome(engine, "x", run_id)
        assert await engine.get_xcom("x", run_id, "wait", key="before") == (
            "pushed before deferring"
        )


async def test_a_thousand_deferred_tasks_wait_with_one_slot() -> None:
    clock = FakeClock(START)
    with DAG("many", schedule=None, max_active_tasks=1000) as dag:
        for n in range(1000):
            WaitOperator(task_id=f"w{n}", seconds=10 + n % 7)
    async with Engine(dags=[dag], database=":memory:", clock=clock, parallelism=1) as engine:
        run = await engine.trigger_dag("many")
        with anyio.fail_after(20):
            while engine.statistics()["triggers_waiting"] < 1000:
                await engine.ping()
        assert engine.statistics()["running"] == 0
        clock.advance(60)
        done = await outcome(engine, "many", run.run_id, timeout=30)
    assert set(done.states.values()) == {"success"}


async def test_a_deferral_timeout_fails_the_try_and_retries_per_policy() -> None:
    clock = FakeClock(START)
    with DAG("t", schedule=None) as dag:
        NeverOperator(task_id="wait", timeout=30, retries=1, retry_delay=0)
    async with Engine(dags=[dag], database=":memory:", clock=clock) as engine:
        async with engine.subscribe() as events:
            run = await engine.trigger_dag("t")
            await wait_for_event(events, task_reached("wait", "deferred"))
            clock.advance(30)
            await wait_for_event(events, task_reached("wait", "up_for_retry"))
            await wait_for_event(events, task_reached("wait", "deferred"))
            clock.advance(30)
        done = await outcome(engine, "t", run.run_id)
    ti = done.tis["wait"]
    assert (ti.state, ti.try_number) == ("failed", 2)
    assert "did not fire within the deferral's timeout" in (ti.error or "")
    assert CALLS.count(("cleanup", "wait")) == 2  # each timeout stopped its trigger


async def test_a_failing_trigger_fails_the_task_with_its_error() -> None:
    with DAG("b", schedule=None) as dag:
        NeverOperator(task_id="wait", trigger="broken")
    async with Engine(dags=[dag], database=":memory:") as engine:
        run = await engine.trigger_dag("b")
        done = await outcome(engine, "b", run.run_id)
    assert done.states == {"wait": "failed"}
    assert "the queue is unreachable" in (done.tis["wait"].error or "")


@pytest.mark.parametrize("change", ["clear", "mark"])
async def test_clearing_or_marking_a_deferred_task_cancels_its_trigger(change: str) -> None:
    with DAG("c", schedule=None) as dag:
        NeverOperator(task_id="wait")
    async with Engine(dags=[dag], database=":memory:") as engine:
        run_id = await _deferred(engine, "c")
        assert engine.statistics()["triggers_waiting"] == 1
        async with engine.subscribe() as events:
            if change == "clear":
                await engine.clear_task_instances("c", run_id, ["wait"])
                await wait_for_event(events, task_reached("wait", "deferred"))  # runs again
                assert ("execute", "wait", 2) in CALLS  # a fresh try: execute again
            else:
                await engine.set_task_instance_state("c", run_id, "wait", "success")
        with anyio.fail_after(10):
            while ("cleanup", "wait") not in CALLS:
                await engine.ping()
        if change == "mark":
            done = await outcome(engine, "c", run_id)
            assert done.states == {"wait": "success"}
            assert engine.statistics()["triggers_waiting"] == 0


async def test_start_from_trigger_begins_deferred_without_running_execute() -> None:
    clock = FakeClock(START)
    with DAG("s", schedule=None) as dag:
        StartDeferred(task_id="wait", moment=START + timedelta(seconds=30))
    async with Engine(dags=[dag], database=":memory:", clock=clock, parallelism=1) as engine:
        run_id = await _deferred(engine, "s")
        assert engine.statistics()["running"] == 0
        clock.advance(30)
        done = await outcome(engine, "s", run_id)
    assert done.states == {"wait": "success"}
    assert done.xcoms["wait"] == "started from the trigger"
    assert CALLS == [("resume", "wait", 1)]


async def test_a_deferred_task_resumes_after_a_restart_without_running_execute(
    tmp_path: Path,
) -> None:
    clock = FakeClock(START)
    database = tmp_path / "db.sqlite"
    with DAG("r", schedule=None) as dag:
        WaitOperator(task_id="wait", seconds=120)
    async with Engine(dags=[dag], database=database, clock=clock) as engine:
        run_id = await _deferred(engine, "r")
    assert CALLS == [("execute", "wait", 1)]
    async with Engine(dags=[dag], database=database, clock=clock) as engine:
        await engine.ping()
        assert engine.statistics()["triggers_waiting"] == 1
        clock.advance(120)
        done = await outcome(engine, "r", run_id)
    assert done.states == {"wait": "success"}
    assert done.tis["wait"].try_number == 1
    assert CALLS == [("execute", "wait", 1), ("resume", "wait", 1)]


async def test_trigger_lines_go_to_the_attempt_log(tmp_path: Path) -> None:
    clock = FakeClock(START)
    with DAG("l", schedule=None) as dag:
        WaitOperator(task_id="wait", seconds=1)
    async with Engine(dags=[dag], database=":memory:", clock=clock,
                      logs_folder=tmp_path) as engine:  # fmt: skip
        run_id = await _deferred(engine, "l")
        clock.advance(1)
        await outcome(engine, "l", run_id)
    (log_file,) = tmp_path.rglob("attempt=1.log")
    text = log_file.read_text()
    assert "deferred: waiting on asyncflow.triggers.temporal.DateTimeTrigger" in text
    assert "trigger fired: TriggerEvent(payload=datetime.datetime(2024, 1, 1, 0, 0, 1" in text


async def test_what_a_trigger_logs_goes_to_the_attempt_log(tmp_path: Path) -> None:
    with DAG("l2", schedule=None) as dag:
        NeverOperator(task_id="wait")
    async with Engine(dags=[dag], database=":memory:", logs_folder=tmp_path) as engine:
        await _deferred(engine, "l2")
        with anyio.fail_after(10):
            while not any("waiting forever (wait)" in f.read_text()
                          for f in tmp_path.rglob("attempt=1.log")):  # fmt: skip
                await engine.ping()
