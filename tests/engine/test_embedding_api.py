"""The embedding API with no gaps: DAGs added, replaced and removed while the engine runs, runs
cancelled, waits that time out with a message, and an engine in a Starlette lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest

from asyncflow import (
    DAG,
    AsyncflowError,
    DagAlreadyExists,
    DagNotFound,
    Engine,
    RunWaitTimeout,
    task,
)
from asyncflow.operators import PythonOperator
from tests.engine.support import finish

pytestmark = pytest.mark.anyio


def versioned(version: int) -> DAG:
    with DAG("live", schedule=None) as dag:

        @task
        def which() -> int:
            return version

        which()
    return dag


async def test_a_dag_added_while_running_runs_and_cannot_be_added_twice() -> None:
    async with Engine(database=":memory:") as engine:
        assert engine.dags == {}
        await engine.add_dag(versioned(1))
        result = await finish(engine, "live", timeout=5)
        assert (result.run.state, result.xcoms["which"]) == ("success", 1)
        with pytest.raises(DagAlreadyExists, match="replace_dag"):
            await engine.add_dag(versioned(2))


async def test_a_replaced_dag_serves_new_runs() -> None:
    async with Engine(dags=[versioned(1)], database=":memory:") as engine:
        await engine.replace_dag(versioned(2))
        assert (await finish(engine, "live", timeout=5)).xcoms["which"] == 2


async def test_an_invalid_dag_is_refused_and_the_engine_goes_on() -> None:
    with DAG("pooled", schedule=None) as bad:
        PythonOperator(task_id="p", python_callable=lambda: None, pool="nowhere")
    async with Engine(dags=[versioned(1)], database=":memory:") as engine:
        with pytest.raises(AsyncflowError, match="nowhere"):
            await engine.add_dag(bad)
        assert "pooled" not in engine.dags
        assert (await finish(engine, "live", timeout=5)).run.state == "success"


async def test_a_removed_dag_cancels_its_runs_and_keeps_its_history() -> None:
    gate = anyio.Event()

    async def hold() -> None:
        await gate.wait()

    with DAG("held", schedule=None) as dag:
        PythonOperator(task_id="hold", python_callable=hold)
    async with Engine(dags=[dag], database=":memory:") as engine:
        run = await engine.trigger_dag("held")
        await engine.remove_dag("held")
        assert "held" not in engine.dags
        with pytest.raises(DagNotFound):
            await engine.trigger_dag("held")
        stored = await engine.get_dag_run("held", run.run_id)
        assert stored.state == "failed"


async def test_cancel_run_stops_running_work_and_skips_the_rest() -> None:
    started = anyio.Event()

    async def hold() -> None:
        started.set()
        await anyio.sleep(30)

    with DAG("cancel", schedule=None) as dag:
        PythonOperator(task_id="hold", python_callable=hold) >> PythonOperator(
            task_id="after", python_callable=lambda: None
        )
    async with Engine(dags=[dag], database=":memory:") as engine:
        run = await engine.trigger_dag("cancel")
        with anyio.fail_after(5):
            await started.wait()
        cancelled = await engine.cancel_run("cancel", run.run_id)
        assert cancelled.state == "failed"
        done = await engine.wait_for_run("cancel", run.run_id, timeout=5)
        tis = {ti.task_id: ti for ti in await engine.get_task_instances("cancel", run.run_id)}
    assert done.state == "failed"
    assert (tis["hold"].state, tis["after"].state) == ("failed", "skipped")
    assert "cancelled" in (tis["hold"].error or "")


async def test_wait_for_run_times_out_with_a_message_naming_the_run() -> None:
    async def hold() -> None:
        await anyio.sleep(30)

    with DAG("slow", schedule=None) as dag:
        PythonOperator(task_id="hold", python_callable=hold)
    async with Engine(dags=[dag], database=":memory:") as engine:
        run = await engine.trigger_dag("slow", run_id="r1")
        with pytest.raises(RunWaitTimeout) as caught:
            await engine.wait_for_run("slow", run.run_id, timeout=0.2)
        assert isinstance(caught.value, TimeoutError)
        message = str(caught.value)
        assert "'slow'" in message and "'r1'" in message and "running" in message
        await engine.cancel_run("slow", "r1")


async def test_an_engine_in_a_starlette_lifespan_serves_its_runs() -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with Engine(dags=[versioned(7)], database=":memory:") as engine:
            yield {"engine": engine}

    async def trigger(request: Request) -> JSONResponse:
        engine: Engine = request.state.engine
        run = await engine.trigger_dag("live")
        done = await engine.wait_for_run("live", run.run_id, timeout=5)
        value = await engine.get_xcom("live", run.run_id, "which")
        return JSONResponse({"state": done.state.value, "value": value})

    app = Starlette(routes=[Route("/run", trigger, methods=["POST"])], lifespan=lifespan)
    async with app.router.lifespan_context(app) as state:
        transport = httpx.ASGITransport(app=_with_state(app, state))
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            response = await client.post("/run")
    assert response.json() == {"state": "success", "value": 7}


def _with_state(app: Any, state: Any) -> Any:
    """httpx's ASGI transport sends no lifespan: hand the lifespan's state to each request."""

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["state"] = dict(state)
        await app(scope, receive, send)

    return asgi


async def test_a_run_triggered_while_paused_waits_queued_until_unpaused() -> None:
    async with Engine(dags=[versioned(3)], database=":memory:") as engine:
        await engine.pause_dag("live")
        run = await engine.trigger_dag("live")
        await engine.ping()
        await engine.ping()
        assert (await engine.get_dag_run("live", run.run_id)).state == "queued"
        assert {ti.state for ti in await engine.get_task_instances("live", run.run_id)} == {
            "none"
        }
        await engine.unpause_dag("live")
        done = await engine.wait_for_run("live", run.run_id, timeout=5)
    assert done.state == "success"


async def test_a_pool_resized_by_another_process_takes_effect_while_running(
    tmp_path: Any,
) -> None:
    from asyncflow import Pool
    from asyncflow.store.sqlite import SQLiteStore

    gate = anyio.Event()

    async def hold() -> None:
        await gate.wait()

    with DAG("pooled", schedule=None) as dag:
        for i in range(3):
            PythonOperator(task_id=f"p{i}", python_callable=hold, pool="api")
    database = tmp_path / "state.db"
    async with Engine(dags=[dag], database=database, pools=[Pool("api", 1)],
                      external_poll_interval=None) as engine:  # fmt: skip
        run = await engine.trigger_dag("pooled")
        await engine.ping()
        assert engine.statistics()["running"] == 1
        other = SQLiteStore(database)  # `asyncflow pools set api 3` beside the daemon
        await other.open()
        await other.set_pool("api", 3)
        await other.close()
        await engine.sync_external()
        await engine.ping()
        assert engine.statistics()["running"] == 3
        gate.set()
        assert (await engine.wait_for_run("pooled", run.run_id, timeout=5)).state == "success"
