"""`BaseOperator.execute`: `async def` runs on the event loop, plain `def` in a worker thread."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from asyncflow import DAG, BaseOperator
from tests.engine.support import run_dag

pytestmark = pytest.mark.anyio


class AsyncProbe(BaseOperator):
    async def execute(self, context: dict[str, Any]) -> int:
        return threading.get_ident()


class SyncProbe(BaseOperator):
    def execute(self, context: dict[str, Any]) -> int:
        return threading.get_ident()


class Unimplemented(BaseOperator):
    pass


async def test_async_execute_runs_on_the_loop_and_sync_execute_in_a_thread() -> None:
    loop_thread = threading.get_ident()
    assert threading.current_thread() is threading.main_thread()
    with DAG("threads", schedule=None) as dag:
        AsyncProbe(task_id="async_probe")
        SyncProbe(task_id="sync_probe")
    result = await run_dag(dag)
    assert result.xcoms["async_probe"] == loop_thread
    assert result.xcoms["sync_probe"] != loop_thread


async def test_execute_receives_the_context_and_its_return_value_is_the_xcom() -> None:
    class Echo(BaseOperator):
        async def execute(self, context: dict[str, Any]) -> dict[str, Any]:
            return {"task_id": context["task"].task_id, "run_id": context["run_id"]}

    with DAG("echo", schedule=None) as dag:
        Echo(task_id="echo")
    result = await run_dag(dag)
    assert result.xcoms["echo"] == {"task_id": "echo", "run_id": result.run.run_id}


async def test_do_xcom_push_false_stores_no_return_value() -> None:
    with DAG("no_push", schedule=None) as dag:
        AsyncProbe(task_id="probe", do_xcom_push=False)
    result = await run_dag(dag)
    assert result.states["probe"] == "success"
    assert result.xcoms["probe"] is None


async def test_an_operator_without_execute_fails_with_a_clear_reason() -> None:
    with DAG("unimplemented", schedule=None) as dag:
        Unimplemented(task_id="nothing")
    result = await run_dag(dag)
    assert result.states["nothing"] == "failed"
    assert "Unimplemented must implement execute(context)" in (result.tis["nothing"].error or "")


async def test_a_user_operators_template_fields_are_rendered() -> None:
    class Greet(BaseOperator):
        template_fields = ("message", "extra")

        def __init__(self, *, message: str, extra: dict[str, str], **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.message = message
            self.extra = extra

        async def execute(self, context: dict[str, Any]) -> list[Any]:
            return [self.message, self.extra]

    with DAG("custom_templates", schedule=None, params={"who": "world"}) as dag:
        Greet(
            task_id="greet",
            message="hello {{ params.who }} on {{ ds }}",
            extra={"k": "{{ ds_nodash }}"},
        )
    result = await run_dag(dag, conf={"who": "you; rm -rf /"})
    ds = result.run.logical_date.strftime("%Y-%m-%d")
    # not a shell field: rendered as is, without shell quoting
    assert result.xcoms["greet"] == [
        f"hello you; rm -rf / on {ds}",
        {"k": ds.replace("-", "")},
    ]
