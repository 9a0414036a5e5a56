"""`PythonOperator`: op_args / op_kwargs, the context a callable asks for, XCom push and pull."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from asyncflow import DAG, DagDefinitionError
from asyncflow.operators import PythonOperator
from tests.engine.support import run_dag

pytestmark = pytest.mark.anyio


def describe(a: int, b: int, *, scale: int = 1, label: str = "") -> dict[str, Any]:
    return {"sum": (a + b) * scale, "label": label}


async def test_op_args_and_op_kwargs_are_passed_to_the_callable() -> None:
    with DAG("op_args", schedule=None) as dag:
        PythonOperator(
            task_id="describe",
            python_callable=describe,
            op_args=[2, 3],
            op_kwargs={"scale": 10, "label": "x"},
        )
    result = await run_dag(dag)
    assert result.xcoms["describe"] == {"sum": 50, "label": "x"}


async def test_sync_callable_runs_in_a_thread_and_async_callable_on_the_loop() -> None:
    loop_thread = threading.get_ident()

    async def on_loop() -> int:
        return threading.get_ident()

    with DAG("callable_threads", schedule=None) as dag:
        PythonOperator(task_id="sync", python_callable=threading.get_ident)
        PythonOperator(task_id="async", python_callable=on_loop)
    result = await run_dag(dag)
    assert result.xcoms["async"] == loop_thread
    assert result.xcoms["sync"] != loop_thread


async def test_a_callable_receives_the_context_keys_it_names() -> None:
    def named(ds: str, ti: Any, params: dict[str, Any], run_id: str) -> dict[str, Any]:
        return {"ds": ds, "task_id": ti.task_id, "params": params, "run_id": run_id}

    with DAG("named_keys", schedule=None, params={"size": 3}) as dag:
        PythonOperator(task_id="named", python_callable=named)
    result = await run_dag(dag, conf={"size": 4})
    assert result.xcoms["named"] == {
        "ds": result.run.logical_date.strftime("%Y-%m-%d"),
        "task_id": "named",
        "params": {"size": 4},
        "run_id": result.run.run_id,
    }


async def test_a_callable_declaring_kwargs_receives_the_whole_context() -> None:
    def everything(first: int, **context: Any) -> list[str]:
        assert first == 1
        return sorted(context)

    with DAG("kwargs_context", schedule=None) as dag:
        PythonOperator(task_id="everything", python_callable=everything, op_args=[1])
    result = await run_dag(dag)
    keys = set(result.xcoms["everything"])
    assert {"dag", "dag_run", "ti", "task_instance", "task", "ds", "params", "run_id"} <= keys
    assert "first" not in keys


async def test_explicit_op_kwargs_win_over_context_keys() -> None:
    def show(ds: str) -> str:
        return ds

    with DAG("kwargs_win", schedule=None) as dag:
        PythonOperator(task_id="show", python_callable=show, op_kwargs={"ds": "mine"})
    result = await run_dag(dag)
    assert result.xcoms["show"] == "mine"


async def test_ti_xcom_push_and_pull_between_tasks() -> None:
    def push(ti: Any) -> str:
        ti.xcom_push(key="rows", value=[1, 2, 3])
        return "pushed"

    def pull(ti: Any) -> dict[str, Any]:
        return {
            "rows": ti.xcom_pull(task_ids="push", key="rows"),
            "returned": ti.xcom_pull(task_ids="push"),
            "as_list": ti.xcom_pull(task_ids=["push", "push"], key="rows"),
            "missing": ti.xcom_pull(task_ids="push", key="nope", default="dflt"),
        }

    with DAG("xcom", schedule=None) as dag:
        PythonOperator(task_id="push", python_callable=push) >> PythonOperator(
            task_id="pull", python_callable=pull
        )
    result = await run_dag(dag)
    assert result.xcoms["pull"] == {
        "rows": [1, 2, 3],
        "returned": "pushed",
        "as_list": [[1, 2, 3], [1, 2, 3]],
        "missing": "dflt",
    }


def test_python_callable_must_be_callable() -> None:
    with DAG("not_callable", schedule=None), pytest.raises(DagDefinitionError) as caught:
        PythonOperator(task_id="oops", python_callable="print")  # type: ignore[arg-type]
    assert "DAG 'not_callable'" in str(caught.value) and "'oops'" in str(caught.value)


async def test_op_args_never_fill_a_keyword_only_context_parameter() -> None:
    def gather(*values: int, ds: str, templates_dict: Any) -> list[Any]:
        return [sum(values), ds, templates_dict]

    with DAG("keyword_only", schedule=None) as dag:
        PythonOperator(
            task_id="gather", python_callable=gather, op_args=[1, 2, 3], templates_dict={"a": 1}
        )
    result = await run_dag(dag)
    ds = result.run.logical_date.strftime("%Y-%m-%d")
    assert result.xcoms["gather"] == [6, ds, {"a": 1}]
