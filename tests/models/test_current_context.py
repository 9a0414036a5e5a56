"""get_current_context(): the running task's own context, in async and sync tasks alike (also
through Airflow's import paths), and a clear error outside a task."""

from __future__ import annotations

from datetime import datetime

import pytest

from asyncflow import DAG, get_current_context, task
from asyncflow.exceptions import AsyncflowError
from tests.engine.support import run_dag


@pytest.mark.anyio
async def test_each_task_sees_its_own_context() -> None:
    seen: dict[str, tuple[str, str]] = {}
    with DAG("ctx", schedule=None, start_date=datetime(2024, 1, 1)) as dag:

        def helper() -> tuple[str, str]:  # not a task: reaches the context by itself
            context = get_current_context()
            return context["ti"].task_id, context["run_id"]

        @task
        def in_thread() -> None:
            seen["sync"] = helper()

        @task
        async def on_loop() -> None:
            seen["async"] = helper()

        in_thread()
        on_loop()

    outcome = await run_dag(dag)
    assert outcome.run.state == "success"
    run_id = outcome.run.run_id
    assert seen == {"sync": ("in_thread", run_id), "async": ("on_loop", run_id)}


def test_outside_a_task_it_says_so() -> None:
    with pytest.raises(AsyncflowError, match="outside a running task"):
        get_current_context()


def test_airflow_import_paths_give_it() -> None:
    from asyncflow.compat.airflow import activate

    with activate():
        from airflow.operators.python import get_current_context as old  # type: ignore
        from airflow.sdk import get_current_context as new  # type: ignore
    assert old is new is get_current_context
