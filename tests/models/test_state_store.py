"""Airflow's task state store and asset state store (AIP-103), as task code sees them:
``task_state_store`` keeps one task instance's keys across its tries (each mapped instance its
own, each run its own), ``asset_state_store`` keeps an asset's keys across DAGs and runs; keys
expire as Airflow's do; the Airflow import path gives `NEVER_EXPIRE`."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from asyncflow import (
    DAG,
    NEVER_EXPIRE,
    Asset,
    AssetStateStore,
    Engine,
    FakeClock,
    TaskStateStore,
    task,
)
from asyncflow.engine.statestore import StoreState
from asyncflow.loading.dagbag import DagBag
from asyncflow.models.statestore import TaskScope, current_state_backend
from asyncflow.store.sqlite import SQLiteStore
from tests.engine.support import finish

pytestmark = pytest.mark.anyio

START = datetime(2024, 1, 1)


async def test_a_retry_reads_what_the_failed_try_stored(tmp_path: Path) -> None:
    submitted: list[str] = []
    with DAG("job", schedule=None, start_date=START) as dag:

        @task(retries=2, retry_delay=timedelta(0))
        def run_job(task_state_store: Any = None, ti: Any = None) -> str:
            job_id = task_state_store.get("job_id")
            if job_id is None:
                job_id = f"job-{ti.try_number}"
                submitted.append(job_id)
                task_state_store.set("job_id", job_id, retention=NEVER_EXPIRE)
                task_state_store.set("scratch", [1, 2])
                raise RuntimeError("lost the worker after submitting")
            task_state_store.delete("scratch")
            scratch = task_state_store.get("scratch", "gone")
            return f"{job_id} reattached on try {ti.try_number}, scratch={scratch}"

        run_job()

    async with Engine(dags=[dag], database=tmp_path / "db.sqlite") as engine:
        done = await finish(engine, "job")
        again = await finish(engine, "job")  # another run: a store of its own
    assert done.run.state == "success" and submitted[0] == "job-1"
    assert done.xcoms["run_job"] == "job-1 reattached on try 2, scratch=gone"
    assert again.xcoms["run_job"] == "job-1 reattached on try 2, scratch=gone"
    assert submitted == ["job-1", "job-1"]


async def test_an_async_task_checkpoints_with_aget_and_aset() -> None:
    with DAG("pages", schedule=None, start_date=START) as dag:

        @task(retries=1, retry_delay=timedelta(0))
        async def ingest(task_state_store: Any = None, ti: Any = None) -> dict[str, Any]:
            progress = await task_state_store.aget("progress", default={"done": [], "tries": []})
            progress["tries"].append(ti.try_number)
            for page in range(1, 5):
                if page in progress["done"]:
                    continue
                progress["done"].append(page)
                await task_state_store.aset("progress", progress, retention=timedelta(hours=1))
                if ti.try_number == 1 and page == 2:
                    raise RuntimeError("staged failure after page 2")
            await task_state_store.adelete("nothing-here")
            return progress

        ingest()

    async with Engine(dags=[dag], database=":memory:") as engine:
        done = await finish(engine, "pages")
    assert done.run.state == "success"
    assert done.xcoms["ingest"] == {"done": [1, 2, 3, 4], "tries": [1, 2]}


async def test_each_mapped_instance_has_its_own_keys() -> None:
    with DAG("mapped", schedule=None, start_date=START) as dag:

        @task
        def process(table: str, task_state_store: Any = None, ti: Any = None) -> list[Any]:
            before = task_state_store.get("table")
            task_state_store.set("table", table)
            return [ti.map_index, before, task_state_store.get("table")]

        process.expand(table=["orders", "customers", "products"])

    async with Engine(dags=[dag], database=":memory:") as engine:
        done = await finish(engine, "mapped")
        values = [
            await engine.get_xcom("mapped", done.run.run_id, "process", map_index=i)
            for i in range(3)
        ]
    assert done.run.state == "success"
    assert values == [
        [0, None, "orders"],
        [1, None, "customers"],
        [2, None, "products"],
    ]


async def test_asset_state_is_shared_by_the_producer_runs_and_the_consumer() -> None:
    orders = Asset(name="orders/daily", uri="s3://warehouse/orders/daily")
    with DAG("producer", schedule=None, start_date=START) as producer:

        @task(inlets=[orders], outlets=[orders])
        def load(asset_state_store: Any = None) -> int:
            state = asset_state_store[orders]
            runs = state.get("total_runs", default=0) + 1
            state.set("total_runs", runs)
            asset_state_store.set("watermark", f"w{runs}")  # the task's only asset
            return int(runs)

        load()

    with DAG("consumer", schedule=[orders], start_date=START) as consumer:

        @task(inlets=[orders])
        async def consume(asset_state_store: Any = None) -> list[Any]:
            state = asset_state_store[orders.name]
            return [await state.aget("watermark"), await state.aget("total_runs")]

        consume()

    with DAG("unrelated", schedule=None, start_date=START) as unrelated:

        @task
        def look(**context: Any) -> list[Any]:
            return ["asset_state_store" in context, context["task_state_store"].get("x", 0)]

        look()

    dags = [producer, consumer, unrelated]
    async with Engine(dags=dags, database=":memory:") as engine:
        first = await finish(engine, "producer")
        second = await finish(engine, "producer")
        other = await finish(engine, "unrelated")
        consumer_runs = await engine.get_dag_runs("consumer")
        assert consumer_runs
        consumed = [
            (await engine.wait_for_run("consumer", run.run_id, timeout=10)).state
            for run in consumer_runs
        ]
        last = max(consumer_runs, key=lambda run: run.queued_at or START)
        seen = await engine.get_xcom("consumer", last.run_id, "consume")
    assert (first.xcoms["load"], second.xcoms["load"]) == (1, 2)
    assert set(consumed) == {"success"}
    assert seen in (["w1", 1], ["w2", 2])
    assert other.xcoms["look"] == [False, 0]


async def test_an_asset_the_task_does_not_name_is_refused_with_the_names_it_has() -> None:
    a, b = Asset("a"), Asset("b")
    with DAG("two", schedule=None, start_date=START) as dag:

        @task(inlets=[a], outlets=[b])
        def both(asset_state_store: Any = None) -> list[str]:
            errors = []
            for attempt in (
                lambda: asset_state_store[Asset("c")],
                lambda: asset_state_store.get("k"),
            ):
                try:
                    attempt()
                except (KeyError, ValueError) as exc:
                    errors.append(str(exc))
            return errors

        both()

    async with Engine(dags=[dag], database=":memory:") as engine:
        done = await finish(engine, "two")
    first, second = done.xcoms["both"]
    assert "'c' is not among the inlets or outlets of task 'both'" in first
    assert "['a', 'b']" in first
    assert "has 2 assets" in second


async def test_keys_expire_on_the_engines_clock(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2024, 1, 1, tzinfo=UTC))
    store = SQLiteStore(tmp_path / "db.sqlite")
    await store.open()
    token = current_state_backend.set(StoreState(store, clock))
    try:
        state = TaskStateStore(TaskScope("d", "r", "t"))
        state.set("hour", 1, retention=timedelta(hours=1))
        state.set("default", "30 days")
        state.set("forever", True, retention=NEVER_EXPIRE)
        clock.advance(timedelta(minutes=59))
        assert [state.get(k) for k in ("hour", "default", "forever")] == [1, "30 days", True]
        clock.advance(timedelta(minutes=2))
        assert state.get("hour", "expired") == "expired"
        clock.advance(timedelta(days=30))
        assert [state.get(k) for k in ("default", "forever")] == [None, True]
        state.clear()
        assert state.get("forever") is None
        AssetStateStore("a").set("k", {"v": 1})
        clock.advance(timedelta(days=10_000))
        assert AssetStateStore("a").get("k") == {"v": 1}  # asset keys never expire
    finally:
        current_state_backend.reset(token)
        await store.close()


def test_values_are_json_and_not_none_and_need_an_engine() -> None:
    state = TaskStateStore(TaskScope("d", "r", "t"))
    with pytest.raises(ValueError, match="cannot set key 'k' to None"):
        state.set("k", None)
    with pytest.raises(TypeError, match="not JSON"):
        state.set("k", object())
    with pytest.raises(RuntimeError, match="only available to a task run by an asyncflow engine"):
        state.get("k")


async def test_the_airflow_import_path_gives_never_expire(tmp_path: Path) -> None:
    (tmp_path / "ported.py").write_text(
        textwrap.dedent(
            """
            from datetime import datetime
            from airflow.sdk import DAG, task
            from airflow.sdk.execution_time.context import NEVER_EXPIRE

            with DAG("ported", schedule=None, start_date=datetime(2024, 1, 1)):
                @task
                def keep(task_state_store=None):
                    task_state_store.set("k", "v", retention=NEVER_EXPIRE)
                    return task_state_store.get("k")
                keep()
            """
        )
    )
    bag = DagBag(tmp_path)
    bag.collect()
    assert not bag.import_errors, [str(e) for e in bag.import_errors.values()]
    async with Engine(dags=bag.dags.values(), database=":memory:") as engine:
        done = await finish(engine, "ported")
    assert done.xcoms["keep"] == "v"
