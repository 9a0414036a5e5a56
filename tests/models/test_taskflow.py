"""TaskFlow: `@dag` and `@task`. A return value is the XCom; passing a call's result into another
call wires the dependency and the value."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from asyncflow import DAG, Engine, Pool, XComArg, dag, task
from tests.engine.support import finish, run_dag

pytestmark = pytest.mark.anyio


async def test_dag_decorator_builds_a_dag_and_task_results_flow_downstream() -> None:
    @task
    def extract() -> list[int]:
        return [1, 2, 3]

    @task
    async def transform(rows: list[int]) -> int:
        return sum(rows)

    @task
    def load(total: int, label: str) -> str:
        return f"{label}={total}"

    @dag(schedule=None)
    def etl() -> None:
        load(transform(extract()), label="sum")

    pipeline = etl()
    assert isinstance(pipeline, DAG)
    assert pipeline.dag_id == "etl"
    assert pipeline.get_task("transform").upstream_task_ids == {"extract"}
    assert pipeline.get_task("load").upstream_task_ids == {"transform"}
    result = await run_dag(pipeline)
    assert result.states == {"extract": "success", "transform": "success", "load": "success"}
    assert result.xcoms == {"extract": [1, 2, 3], "transform": 6, "load": "sum=6"}


async def test_results_inside_lists_and_dicts_are_wired_and_resolved() -> None:
    @task
    def number(n: int) -> int:
        return n

    @task
    def combine(values: list[int], named: dict[str, int]) -> int:
        return sum(values) + named["x"]

    with DAG("nested_refs", schedule=None) as nested:
        combine([number(1), number(2)], {"x": number(10)})
    assert nested.get_task("combine").upstream_task_ids == {"number", "number__1", "number__2"}
    result = await run_dag(nested)
    assert result.xcoms["combine"] == 13


async def test_sync_tasks_run_in_threads_and_async_tasks_on_the_loop() -> None:
    @task
    def sync_task() -> int:
        return threading.get_ident()

    @task
    async def async_task() -> int:
        return threading.get_ident()

    with DAG("taskflow_threads", schedule=None) as threads:
        sync_task()
        async_task()
    result = await run_dag(threads)
    assert result.xcoms["async_task"] == threading.get_ident()
    assert result.xcoms["sync_task"] != threading.get_ident()


def test_calling_a_task_returns_an_xcom_arg_that_takes_part_in_dependencies() -> None:
    @task
    def step() -> None:
        return None

    with DAG("xcom_arg_deps", schedule=None) as deps:
        first = step()
        second = step()
        third = step()
        first >> second
        third << second
    assert isinstance(first, XComArg)
    assert deps.get_task("step__1").upstream_task_ids == {"step"}
    assert deps.get_task("step__2").upstream_task_ids == {"step__1"}


def test_calling_one_task_several_times_suffixes_its_task_id() -> None:
    @task
    def io() -> None:
        return None

    with DAG("suffixes", schedule=None) as suffixes:
        io()
        io()
        io()
    assert suffixes.task_ids == ["io", "io__1", "io__2"]


def test_task_arguments_become_operator_arguments_and_override_makes_a_variant() -> None:
    @task(retries=3, retry_delay=timedelta(seconds=5), pool="io", execution_timeout=2.5)
    async def fetch() -> None:
        return None

    with DAG("task_args", schedule=None, default_args={"retries": 1, "owner": "ops"}) as args:
        fetch()
        fetch.override(task_id="fetch_fast", retries=0, pool=None)()
    base, variant = args.get_task("fetch"), args.get_task("fetch_fast")
    assert (base.retries, base.pool, base.execution_timeout) == (3, "io", timedelta(seconds=2.5))
    assert base.retry_delay == timedelta(seconds=5)
    assert base.owner == "ops"  # from default_args
    assert (variant.retries, variant.pool) == (0, None)
    assert variant.execution_timeout == timedelta(seconds=2.5)  # kept from the original


async def test_a_task_with_a_pool_runs_on_an_engine_that_declares_it() -> None:
    @task(pool="io", pool_slots=1)
    def in_pool() -> str:
        return "ran"

    with DAG("pooled", schedule=None) as pooled:
        in_pool()
    result = await run_dag(pooled, pools=[Pool("io", 2)])
    assert result.xcoms["in_pool"] == "ran"


async def test_task_functions_receive_context_by_name_or_as_kwargs() -> None:
    @task
    def by_name(value: int, ds: str, ti: Any, params: dict[str, Any]) -> list[Any]:
        return [value, ds, ti.task_id, params["p"]]

    @task
    async def as_kwargs(**context: Any) -> list[Any]:
        return [context["run_id"], context["task"].task_id, context["dag"].dag_id]

    with DAG("taskflow_context", schedule=None, params={"p": "x"}) as ctx:
        by_name(7)
        as_kwargs()
    result = await run_dag(ctx)
    ds = result.run.logical_date.strftime("%Y-%m-%d")
    assert result.xcoms["by_name"] == [7, ds, "by_name", "x"]
    assert result.xcoms["as_kwargs"] == [result.run.run_id, "as_kwargs", "taskflow_context"]


async def test_multiple_outputs_push_each_key() -> None:
    @task(multiple_outputs=True)
    def split() -> dict[str, int]:
        return {"a": 1, "b": 2}

    @task
    def use(a: int, b: int) -> int:
        return a * 10 + b

    with DAG("multiple_outputs", schedule=None) as multi:
        parts = split()
        use(parts["a"], parts["b"])
    assert multi.get_task("use").upstream_task_ids == {"split"}
    async with Engine(dags=[multi], database=":memory:") as engine:
        result = await finish(engine, "multiple_outputs")
        run_id = result.run.run_id
        assert await engine.get_xcom("multiple_outputs", run_id, "split", key="a") == 1
        assert await engine.get_xcom("multiple_outputs", run_id, "split", key="b") == 2
    assert result.xcoms["split"] == {"a": 1, "b": 2}
    assert result.xcoms["use"] == 12


async def test_task_branch_follows_the_returned_task_id() -> None:
    @task.branch
    def choose(n: int) -> str:
        return "even" if n % 2 == 0 else "odd"

    @task
    def even() -> str:
        return "even"

    @task
    def odd() -> str:
        return "odd"

    with DAG("taskflow_branch", schedule=None) as branching:
        choose(4) >> [even(), odd()]
    result = await run_dag(branching)
    assert result.states == {"choose": "success", "even": "success", "odd": "skipped"}


async def test_task_short_circuit_skips_downstream_on_a_falsy_value() -> None:
    @task.short_circuit
    def has_rows(rows: list[int]) -> bool:
        return bool(rows)

    @task
    def process() -> str:
        return "processed"

    with DAG("taskflow_short_circuit", schedule=None) as short:
        has_rows.override(task_id="empty")([]) >> process()
        has_rows.override(task_id="full")([1]) >> process()
    result = await run_dag(short)
    assert result.states == {
        "empty": "success",
        "process": "skipped",
        "full": "success",
        "process__1": "success",
    }


async def test_task_bash_runs_the_returned_command() -> None:
    @task.bash
    def greet(name: str) -> str:
        return f"echo hello; echo {name}"

    @task.bash(env={"WHO": "env"})
    def from_env() -> str:
        return 'echo "$WHO"'

    @task.bash
    def skipper() -> str:
        return "exit 99"

    with DAG("taskflow_bash", schedule=None) as bash:
        greet("world")
        from_env()
        skipper()
    result = await run_dag(bash)
    assert result.xcoms["greet"] == "world"
    assert result.xcoms["from_env"] == "env"
    assert result.states["skipper"] == "skipped"


async def test_a_dict_return_annotation_implies_multiple_outputs() -> None:
    @task
    def annotated() -> dict[str, int]:
        return {"a": 1}

    @task(multiple_outputs=False)
    def opted_out() -> dict[str, int]:
        return {"b": 2}

    @task
    def plain():  # type: ignore[no-untyped-def]
        return {"c": 3}

    with DAG("inferred_outputs", schedule=None) as inferred:
        annotated()
        opted_out()
        plain()
    assert inferred.get_task("annotated").multiple_outputs is True
    assert inferred.get_task("opted_out").multiple_outputs is False
    assert inferred.get_task("plain").multiple_outputs is False
    async with Engine(dags=[inferred], database=":memory:") as engine:
        result = await finish(engine, "inferred_outputs")
        run_id = result.run.run_id
        assert await engine.get_xcom("inferred_outputs", run_id, "annotated", key="a") == 1
        assert await engine.get_xcom("inferred_outputs", run_id, "opted_out", key="b") is None
        assert await engine.get_xcom("inferred_outputs", run_id, "plain", key="c") is None
    assert result.xcoms == {"annotated": {"a": 1}, "opted_out": {"b": 2}, "plain": {"c": 3}}


async def test_dag_function_arguments_become_params_resolved_per_run() -> None:
    @task
    def show(value: int, label: str) -> str:
        return f"{label}:{value}"

    @dag(schedule=None)
    def with_params(value: int = 1, label: str = "default") -> None:
        show(value, label=label)

    pipeline = with_params()
    assert set(pipeline.params) == {"value", "label"}
    async with Engine(dags=[pipeline], database=":memory:") as engine:
        defaults = await finish(engine, "with_params", run_id="defaults")
        overridden = await finish(engine, "with_params", run_id="conf", conf={"value": 5})
    assert defaults.xcoms["show"] == "default:1"
    assert overridden.xcoms["show"] == "default:5"


def test_dag_decorator_takes_its_id_and_doc_from_the_function() -> None:
    @dag("explicit_id", schedule=None)
    def named() -> None:
        """Documentation of the DAG."""

    built = named()
    assert built.dag_id == "explicit_id"
    assert built.doc_md == "Documentation of the DAG."
