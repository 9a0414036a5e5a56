"""The template context a task sees, Jinja rendering of templated fields, and shell quoting of
values rendered into `bash_command`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from asyncflow import DAG, Engine, Param, ParamValidationError
from asyncflow.operators import BashOperator, PythonOperator
from tests.engine.support import run_dag

pytestmark = pytest.mark.anyio

WHEN = datetime(2024, 3, 5, 6, 7, 8, tzinfo=UTC)


async def test_the_context_holds_airflows_keys() -> None:
    seen: dict[str, Any] = {}

    def capture(**context: Any) -> None:
        seen.update(context)

    with DAG("ctx", schedule="@daily", start_date=datetime(2024, 1, 1), params={"p": 1}) as dag:
        PythonOperator(task_id="capture", python_callable=capture)
    result = await run_dag(dag, conf={"p": 2, "extra": "x"}, logical_date=WHEN, run_schedules=False)
    assert result.states["capture"] == "success"
    run = result.run
    assert seen["dag"] is dag
    assert seen["dag_run"].run_id == run.run_id and seen["dag_run"].conf == {"p": 2, "extra": "x"}
    assert seen["ti"] is seen["task_instance"]
    assert seen["ti"].task_id == "capture" and seen["ti"].try_number == 1
    assert seen["task"].task_id == "capture"
    assert seen["run_id"] == run.run_id
    assert seen["logical_date"] == WHEN
    assert seen["ds"] == "2024-03-05"
    assert seen["ds_nodash"] == "20240305"
    assert seen["ts"] == WHEN.isoformat()
    # a manual run of a daily DAG covers the interval that ends at its logical date
    assert seen["data_interval_start"] == run.data_interval_start
    assert seen["data_interval_end"] == run.data_interval_end
    assert run.data_interval_end - run.data_interval_start == timedelta(days=1)
    assert seen["params"] == {"p": 2}  # the run's conf overrides the param's default
    assert seen["try_number"] == 1


async def test_try_number_in_the_context_counts_attempts() -> None:
    def flaky(try_number: int) -> int:
        if try_number < 2:
            raise RuntimeError("again")
        return try_number

    with DAG("ctx_try", schedule=None) as dag:
        PythonOperator(task_id="flaky", python_callable=flaky, retries=1, retry_delay=0)
    result = await run_dag(dag)
    assert result.xcoms["flaky"] == 2


async def test_params_default_and_task_params() -> None:
    def show(params: dict[str, Any]) -> dict[str, Any]:
        return params

    with DAG("ctx_params", schedule=None, params={"a": Param(1, type="integer"), "b": "x"}) as dag:
        PythonOperator(task_id="dag_params", python_callable=show)
        PythonOperator(task_id="task_params", python_callable=show, params={"c": True})
    result = await run_dag(dag)
    assert result.xcoms["dag_params"] == {"a": 1, "b": "x"}
    assert result.xcoms["task_params"] == {"a": 1, "b": "x", "c": True}


async def test_templated_fields_are_rendered_with_jinja() -> None:
    def show(*args: Any, run: str, nested: list[str], templates_dict: Any) -> dict[str, Any]:
        kwargs = {"run": run, "nested": nested}
        return {"args": list(args), "kwargs": kwargs, "templates_dict": templates_dict}

    with DAG("templates", schedule=None, params={"name": "world"}) as dag:
        BashOperator(task_id="command", bash_command="echo {{ ds }}")
        BashOperator(
            task_id="env",
            bash_command='echo "$DAY-$WHO"',
            env={"DAY": "{{ ds_nodash }}", "WHO": "{{ params.name }}"},
        )
        PythonOperator(
            task_id="python",
            python_callable=show,
            op_args=["{{ ds }}", 7],
            op_kwargs={"run": "{{ run_id }}", "nested": ["{{ ds_nodash }}"]},
            templates_dict={"ts": "{{ ts }}", "conf": "{{ dag_run.conf['k'] }}"},
        )
    result = await run_dag(dag, logical_date=WHEN, conf={"k": "v"})
    assert result.xcoms["command"] == "2024-03-05"
    assert result.xcoms["env"] == "20240305-world"
    assert result.xcoms["python"] == {
        "args": ["2024-03-05", 7],
        "kwargs": {"run": result.run.run_id, "nested": ["20240305"]},
        "templates_dict": {"ts": WHEN.isoformat(), "conf": "v"},
    }


@pytest.mark.parametrize("native", [True, False])
async def test_render_template_as_native_obj_gives_python_objects(native: bool) -> None:
    def kinds(data: Any, count: Any) -> list[str]:
        return [type(data).__name__, type(count).__name__]

    with DAG("native", schedule=None, render_template_as_native_obj=native) as dag:
        push = PythonOperator(task_id="push", python_callable=lambda: {"a": [1, 2]})
        use = PythonOperator(
            task_id="use",
            python_callable=kinds,
            op_kwargs={"data": "{{ ti.xcom_pull(task_ids='push') }}", "count": "{{ 1 + 2 }}"},
        )
        shell = BashOperator(task_id="shell", bash_command="echo {{ 1 + 2 }}")
        push >> [use, shell]
    result = await run_dag(dag)
    assert result.xcoms["use"] == (["dict", "int"] if native else ["str", "str"])
    assert result.xcoms["shell"] == "3"  # shell fields stay text, quoted


async def test_rendering_does_not_change_the_task_as_written() -> None:
    with DAG("templates_immutable", schedule=None) as dag:
        task = BashOperator(task_id="command", bash_command="echo {{ ds }}")
    await run_dag(dag, logical_date=WHEN)
    assert task.bash_command == "echo {{ ds }}"


async def test_an_undefined_template_variable_fails_the_task_and_says_which_field() -> None:
    with DAG("templates_undefined", schedule=None) as dag:
        BashOperator(task_id="typo", bash_command="echo {{ dss }}")
    result = await run_dag(dag)
    assert result.states["typo"] == "failed"
    error = result.tis["typo"].error or ""
    assert "bash_command" in error and "dss" in error


def injection_dag(dag_id: str, command: str) -> DAG:
    with DAG(dag_id, schedule=None, params={"x": "harmless"}) as dag:
        BashOperator(task_id="echo", bash_command=command)
    return dag


PAYLOAD = "'; touch {d}/p1; ' \" $(touch {d}/p2) `touch {d}/p3` \\\"; touch {d}/p4 #"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ('echo {{ dag_run.conf["x"] }}', "{x}"),
        ("echo {{ params.x }}", "{x}"),
        ('echo "{{ params.x }}"', "{x}"),
        ("echo '{{ params.x }}'", "{x}"),
        ("echo \"a '{{ params.x }}' b\"", "a '{x}' b"),
        ("echo pre{{ params.x }}post", "pre{x}post"),
        ("{% for i in [1] %}echo {{ params.x }}{% endfor %}", "{x}"),
        ("echo {{ params.x }}; echo {{ dag_run.conf.x }}", "{x}"),
    ],
)
async def test_conf_and_params_rendered_into_bash_never_become_shell_syntax(
    tmp_path: Path, command: str, expected: str
) -> None:
    payload = PAYLOAD.format(d=tmp_path)
    result = await run_dag(injection_dag("injection", command), conf={"x": payload})
    assert result.states["echo"] == "success"
    assert list(tmp_path.iterdir()) == []  # no $(...), `...` or ; ran
    assert result.xcoms["echo"] == expected.format(x=payload)  # the literal text, echoed


async def test_shell_raw_opts_out_of_quoting_for_trusted_values() -> None:
    with DAG("shell_raw", schedule=None) as dag:
        BashOperator(task_id="raw", bash_command="{{ 'echo one; echo two' | shell_raw }}")
    result = await run_dag(dag)
    assert result.xcoms["raw"] == "two"


async def test_a_run_whose_params_do_not_validate_is_refused_before_it_exists() -> None:
    with DAG(
        "ctx_required",
        schedule=None,
        params={"n": Param(type="integer"), "mode": Param("fast", enum=["fast", "slow"])},
    ) as dag:
        PythonOperator(task_id="t", python_callable=lambda params: params, op_kwargs={})
    async with Engine(dags=[dag], database=":memory:") as engine:
        with pytest.raises(ParamValidationError, match=r"'ctx_required'.*'n'.*required"):
            await engine.trigger_dag("ctx_required")
        with pytest.raises(ParamValidationError, match=r"'n'.*integer"):
            await engine.trigger_dag("ctx_required", conf={"n": "three"})
        with pytest.raises(ParamValidationError, match="'mode'"):
            await engine.trigger_dag("ctx_required", conf={"n": 3, "mode": "warp"})
        assert await engine.get_dag_runs("ctx_required") == []
        run = await engine.trigger_dag("ctx_required", conf={"n": 3})
        await engine.wait_for_run("ctx_required", run.run_id, timeout=5)
        assert await engine.get_xcom("ctx_required", run.run_id, "t") == {"n": 3, "mode": "fast"}


async def test_templates_inside_a_heredoc_render_the_value_itself() -> None:
    with DAG("heredoc", schedule=None) as dag:
        BashOperator(task_id="sql", bash_command="cat <<SQL\nWHERE ds = '{{ ds }}';\nSQL")
        BashOperator(task_id="quoted", bash_command="cat <<'EOF'\nday={{ ds }}\nEOF")
    result = await run_dag(dag, logical_date=WHEN)
    assert result.xcoms == {"sql": "WHERE ds = '2024-03-05';", "quoted": "day=2024-03-05"}


async def test_task_instance_key_str_and_empty_inlets_outlets() -> None:
    seen: dict[str, Any] = {}

    def capture(**context: Any) -> None:
        seen.update(context)

    with DAG("ctx_keys", schedule=None) as dag:
        PythonOperator(task_id="capture", python_callable=capture)
    result = await run_dag(dag, logical_date=WHEN)
    assert result.states["capture"] == "success"
    assert seen["task_instance_key_str"] == "ctx_keys__capture__20240305"
    assert seen["inlets"] == [] and seen["outlets"] == []
