"""The embedding API: `async with Engine(...)`, trigger_dag, wait_for_run, the read methods,
lookup errors, a clean stop while work runs, and `dag.test()`."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest

from asyncflow import (
    DAG,
    DagNotFound,
    DagRun,
    DagRunNotFound,
    DagRunType,
    Engine,
    FakeClock,
    TaskInstance,
)
from asyncflow.operators import EmptyOperator, PythonOperator
from asyncflow.store.sqlite import SQLiteStore
from tests.engine.support import finish, task_reached, wait_for_event

pytestmark = pytest.mark.anyio

DAG_RUN_FIELDS = {
    "dag_id", "run_id", "logical_date", "data_interval_start", "data_interval_end", "run_type",
    "state", "conf", "start_date", "end_date",
}  # fmt: skip
TASK_INSTANCE_FIELDS = {
    "dag_id", "run_id", "task_id", "map_index", "state", "try_number", "max_tries", "start_date",
    "end_date", "duration",
}  # fmt: skip


def simple_dag(dag_id: str = "embed") -> DAG:
    with DAG(dag_id, schedule=None) as dag:
        PythonOperator(task_id="answer", python_callable=lambda: 42) >> EmptyOperator(task_id="end")
    return dag


async def test_trigger_dag_returns_the_new_run_with_what_was_asked() -> None:
    when = datetime(2024, 3, 5, 6, 7, tzinfo=UTC)
    async with Engine(dags=[simple_dag()], database=":memory:") as engine:
        run = await engine.trigger_dag("embed", conf={"k": "v"}, logical_date=when, run_id="my_run")
        assert isinstance(run, DagRun)
        assert (run.dag_id, run.run_id, run.logical_date) == ("embed", "my_run", when)
        assert run.conf == {"k": "v"}
        assert run.run_type is DagRunType.MANUAL
        assert run.state in ("queued", "running")  # it may start in the step that adds it
        done = await engine.wait_for_run("embed", "my_run", timeout=10)
    assert done.state == "success"
    assert done.conf == {"k": "v"} and done.logical_date == when
    assert done.start_date is not None and done.end_date is not None
    assert done.start_date <= done.end_date


async def test_a_manual_run_defaults_to_now_and_a_generated_run_id() -> None:
    clock = FakeClock(datetime(2024, 6, 1, 12, tzinfo=UTC))
    async with Engine(dags=[simple_dag()], database=":memory:", clock=clock) as engine:
        run = await engine.trigger_dag("embed")
    assert run.logical_date == clock.now()
    assert run.run_id.startswith("manual__2024-06-01T12:00:00")


async def test_records_are_frozen_and_carry_every_field_of_the_contract() -> None:
    async with Engine(dags=[simple_dag()], database=":memory:") as engine:
        result = await finish(engine, "embed")
    run, ti = result.run, result.tis["answer"]
    assert {f.name for f in dataclasses.fields(DagRun)} >= DAG_RUN_FIELDS
    assert {f.name for f in dataclasses.fields(TaskInstance)} >= TASK_INSTANCE_FIELDS
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.state = "failed"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ti.state = "failed"  # type: ignore[misc]
    assert (ti.dag_id, ti.run_id, ti.task_id, ti.map_index) == ("embed", run.run_id, "answer", -1)
    assert (ti.state, ti.try_number, ti.max_tries) == ("success", 1, 0)
    assert ti.start_date is not None and ti.end_date is not None
    assert ti.duration == pytest.approx((ti.end_date - ti.start_date).total_seconds())


async def test_wait_for_run_times_out() -> None:
    never = anyio.Event()

    async def hang() -> None:
        await never.wait()

    with DAG("hangs", schedule=None) as dag:
        PythonOperator(task_id="hang", python_callable=hang)
    async with Engine(dags=[dag], database=":memory:") as engine:
        run = await engine.trigger_dag("hangs")
        with anyio.fail_after(5), pytest.raises(TimeoutError):
            await engine.wait_for_run("hangs", run.run_id, timeout=0.1)
        assert (await engine.get_dag_run("hangs", run.run_id)).state == "running"


async def test_wait_for_a_finished_run_returns_it_at_once() -> None:
    async with Engine(dags=[simple_dag()], database=":memory:") as engine:
        result = await finish(engine, "embed")
        again = await engine.wait_for_run("embed", result.run.run_id, timeout=1)
    assert again == result.run


async def test_get_dag_runs_newest_first_get_task_instances_and_get_xcom() -> None:
    async with Engine(dags=[simple_dag()], database=":memory:") as engine:
        old = await finish(engine, "embed", logical_date=datetime(2024, 1, 1, tzinfo=UTC))
        new = await finish(engine, "embed", logical_date=datetime(2024, 2, 1, tzinfo=UTC))
        runs = await engine.get_dag_runs("embed")
        tis = await engine.get_task_instances("embed", old.run.run_id)
        xcom = await engine.get_xcom("embed", old.run.run_id, "answer")
        missing_key = await engine.get_xcom("embed", old.run.run_id, "answer", key="nope")
        no_value = await engine.get_xcom("embed", old.run.run_id, "end")
    assert [r.run_id for r in runs] == [new.run.run_id, old.run.run_id]
    assert [ti.task_id for ti in tis] == ["answer", "end"]
    assert all(isinstance(ti, TaskInstance) for ti in tis)
    assert (xcom, missing_key, no_value) == (42, None, None)


async def test_unknown_ids_raise_lookup_errors() -> None:
    async with Engine(dags=[simple_dag()], database=":memory:") as engine:
        with pytest.raises(DagNotFound, match="'nope'") as caught:
            await engine.trigger_dag("nope")
        assert isinstance(caught.value, LookupError)
        with pytest.raises(DagNotFound):
            await engine.get_dag_runs("nope")
        with pytest.raises(DagRunNotFound, match=r"'embed'.*'ghost'") as missing:
            await engine.wait_for_run("embed", "ghost", timeout=1)
        assert isinstance(missing.value, LookupError)
        with pytest.raises(DagRunNotFound):
            await engine.get_task_instances("embed", "ghost")
        with pytest.raises(DagRunNotFound):
            await engine.get_xcom("embed", "ghost", "answer")


async def test_leaving_the_engine_cancels_a_long_task_and_the_run_resumes_on_reopen(
    tmp_path: Path,
) -> None:
    database = tmp_path / "state.db"
    cancelled = anyio.Event()
    calls: list[int] = []

    async def long_task(ti: Any) -> str:
        calls.append(ti.try_number)
        if len(calls) == 1:
            try:
                await anyio.sleep(30)
            finally:
                cancelled.set()
        return f"done on call {len(calls)}, try {ti.try_number}"

    def make_dag() -> DAG:
        with DAG("long", schedule=None) as dag:
            PythonOperator(task_id="long", python_callable=long_task) >> EmptyOperator(
                task_id="after"
            )
        return dag

    with anyio.fail_after(10):
        async with (
            Engine(dags=[make_dag()], database=database) as engine,
            engine.subscribe() as events,
        ):
            run = await engine.trigger_dag("long")
            await wait_for_event(events, task_reached("long", "running"))
        assert cancelled.is_set()

        async with Engine(dags=[make_dag()], database=database, run_schedules=False) as reopened:
            stored = await reopened.get_dag_runs("long")
            assert [r.run_id for r in stored] == [run.run_id]  # the run is not lost
            result = await reopened.wait_for_run("long", run.run_id, timeout=5)
            tis = {ti.task_id: ti for ti in await reopened.get_task_instances("long", run.run_id)}
            xcom = await reopened.get_xcom("long", run.run_id, "long")
    # retries=0, yet the run succeeds: the engine stopping is not the task failing, and the
    # interrupted attempt used no try
    assert result.state == "success"
    assert (tis["long"].state, tis["long"].try_number) == ("success", 1)
    assert calls == [1, 1]
    assert xcom == "done on call 2, try 1"


async def test_a_task_interrupted_by_shutdown_is_recorded_and_costs_no_try(
    tmp_path: Path,
) -> None:
    database = tmp_path / "state.db"
    hold = True

    async def hang() -> None:
        if hold:
            await anyio.sleep(30)

    def make_dag() -> DAG:
        with DAG("shutdown", schedule=None) as dag:
            PythonOperator(task_id="hang", python_callable=hang)
        return dag

    with anyio.fail_after(10):
        async with (
            Engine(dags=[make_dag()], database=database) as engine,
            engine.subscribe() as events,
        ):
            run = await engine.trigger_dag("shutdown")
            await wait_for_event(events, task_reached("hang", "running"))
        store = SQLiteStore(database)
        await store.open()
        try:
            (ti,) = await store.get_task_instances("shutdown", run.run_id)
            stored = await store.get_dag_run("shutdown", run.run_id)
        finally:
            await store.close()
        assert stored is not None and stored.state == "running"
        assert (ti.state, ti.try_number) == ("scheduled", 0)
        assert "shut down" in (ti.error or "")
        assert ti.end_date is not None

        hold = False
        async with Engine(dags=[make_dag()], database=database, run_schedules=False) as reopened:
            done = await reopened.wait_for_run("shutdown", run.run_id, timeout=5)
            (ti,) = await reopened.get_task_instances("shutdown", run.run_id)
    assert done.state == "success"
    assert (ti.state, ti.try_number) == ("success", 1)


def test_dag_test_runs_the_dag_once_and_returns_the_finished_run() -> None:
    dag = simple_dag("dag_test")
    run = dag.test(conf={"x": 1})
    assert isinstance(run, DagRun)
    assert (run.dag_id, run.state, run.conf) == ("dag_test", "success", {"x": 1})
    assert run.end_date is not None


def test_dag_test_reports_a_failed_run() -> None:
    def boom() -> None:
        raise ValueError("boom")

    with DAG("dag_test_fails", schedule=None) as dag:
        PythonOperator(task_id="boom", python_callable=boom)
    assert dag.test().state == "failed"


async def test_a_pending_wait_for_run_ends_when_the_engine_stops() -> None:
    async def hang() -> None:
        await anyio.sleep(30)

    with DAG("wait_on_exit", schedule=None) as dag:
        PythonOperator(task_id="hang", python_callable=hang, retries=1, retry_delay=60)
    ended = anyio.Event()
    outcomes: list[BaseException | DagRun] = []

    async def waiter(engine: Engine, run_id: str) -> None:
        try:
            outcomes.append(await engine.wait_for_run("wait_on_exit", run_id))
        except Exception as exc:
            outcomes.append(exc)
        finally:
            ended.set()

    async with anyio.create_task_group() as tg:
        async with (
            Engine(dags=[dag], database=":memory:") as engine,
            engine.subscribe() as events,
        ):
            run = await engine.trigger_dag("wait_on_exit")
            await wait_for_event(events, task_reached("hang", "running"))
            tg.start_soon(waiter, engine, run.run_id)
        try:
            with anyio.fail_after(1):
                await ended.wait()
        finally:
            tg.cancel_scope.cancel()
    assert len(outcomes) == 1
