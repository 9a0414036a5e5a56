"""An `XComArg` given to a classic operator (in `op_args`, `op_kwargs` or any templated field,
nested in lists and dicts) makes its task upstream at construction and becomes the pulled value
when the task runs; `str(xcom_arg)` is the Jinja expression Airflow writes for it."""

from __future__ import annotations

from typing import Any

import pytest

from asyncflow import DAG, XComArg, task
from asyncflow.operators import BashOperator, PythonOperator
from tests.engine.support import run_dag

pytestmark = pytest.mark.anyio


def source(task_id: str, value: Any) -> PythonOperator:
    return PythonOperator(task_id=task_id, python_callable=lambda: value)


def echo(first: Any, second: Any, *, x: Any, nested: Any) -> dict[str, Any]:
    return {"args": [first, second], "kwargs": {"x": x, "nested": nested}}


async def test_op_args_and_op_kwargs_wire_the_upstream_and_receive_the_values() -> None:
    with DAG("xcom_op_args", schedule=None) as dag:
        a, b = source("a", 41), source("b", {"k": "v"})
        consumer = PythonOperator(
            task_id="consumer",
            python_callable=echo,
            op_args=[a.output, [a.output, "plain"]],
            op_kwargs={"x": b.output, "nested": {"deep": [b.output]}},
        )
    assert consumer.upstream_task_ids == {"a", "b"}
    result = await run_dag(dag)
    assert result.xcoms["consumer"] == {
        "args": [41, [41, "plain"]],
        "kwargs": {"x": {"k": "v"}, "nested": {"deep": [{"k": "v"}]}},
    }


async def test_a_templated_field_of_another_operator_resolves_to_the_value() -> None:
    with DAG("xcom_bash_fields", schedule=None) as dag:
        command = source("command", "echo from-xcom")
        value = source("value", "hello world")
        whole = BashOperator(task_id="whole", bash_command=command.output)
        via_env = BashOperator(
            task_id="via_env", bash_command='echo "$GREETING"', env={"GREETING": value.output}
        )
    assert whole.upstream_task_ids == {"command"}
    assert via_env.upstream_task_ids == {"value"}
    result = await run_dag(dag)
    assert result.states["whole"] == result.states["via_env"] == "success"
    assert result.xcoms["whole"] == "from-xcom"
    assert result.xcoms["via_env"] == "hello world"


def test_str_of_an_xcom_arg_is_airflows_pull_template() -> None:
    with DAG("xcom_str", schedule=None):
        a = source("a", 1)
    assert str(a.output) == (
        "{{ task_instance.xcom_pull(task_ids='a', dag_id='xcom_str', key='return_value') }}"
    )
    assert str(a.output["part"]) == (
        "{{ task_instance.xcom_pull(task_ids='a', dag_id='xcom_str', key='part') }}"
    )


async def test_an_f_string_with_an_xcom_arg_renders_the_value() -> None:
    with DAG("xcom_fstring", schedule=None) as dag:
        a = source("a", "it's; $(rm -rf nothing)")
        b = BashOperator(task_id="b", bash_command=f"echo {a.output}")
        a >> b  # as in Airflow, a string does not wire: the user does
    result = await run_dag(dag)
    assert result.states["b"] == "success"
    assert result.xcoms["b"] == "it's; $(rm -rf nothing)"  # a value, shell-quoted, not syntax


async def test_a_taskflow_result_given_to_a_classic_operator() -> None:
    with DAG("xcom_taskflow_to_classic", schedule=None) as dag:

        @task
        def produce() -> int:
            return 7

        produced = produce()
        assert isinstance(produced, XComArg)
        consumer = PythonOperator(
            task_id="consumer", python_callable=lambda n: n * 6, op_args=[produced]
        )
    assert consumer.upstream_task_ids == {"produce"}
    result = await run_dag(dag)
    assert result.xcoms["consumer"] == 42
