"""TaskGroup and @task_group follow Airflow: `group.task` ids, nesting, default_args merging,
`>>` on a group's roots and leaves, @task_group arguments and return values."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from asyncflow import DAG, DagDefinitionError, task
from asyncflow.models.taskgroup import TaskGroup, task_group
from asyncflow.operators import BranchPythonOperator, EmptyOperator
from tests.engine.support import run_dag


def edges(dag: DAG) -> dict[str, list[str]]:
    return {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks}


def test_task_ids_carry_the_group_prefix_nested_and_without_prefix() -> None:
    with DAG("ids", schedule=None) as dag:
        with TaskGroup("outer") as outer:
            EmptyOperator(task_id="a")
            with TaskGroup("inner"):
                EmptyOperator(task_id="b")
            with TaskGroup("flat", prefix_group_id=False) as flat:
                EmptyOperator(task_id="c")
        EmptyOperator(task_id="top")
    assert dag.task_ids == ["outer.a", "outer.inner.b", "c", "top"]
    assert flat.group_id == "outer.flat"
    assert outer["a"].task_id == "outer.a"  # type: ignore[union-attr]
    assert set(dag.task_group.get_task_group_dict()) == {None, "outer", "outer.inner", "outer.flat"}


def test_default_args_dag_then_outer_then_inner_then_the_task() -> None:
    with DAG("defaults", schedule=None, default_args={"retries": 1, "owner": "dag"}) as dag:
        with TaskGroup("outer", default_args={"retries": 2, "pool_slots": 3}):
            with TaskGroup("inner", default_args={"retries": 4}):
                inner = EmptyOperator(task_id="t")
                own = EmptyOperator(task_id="own", retries=9)
            outer = EmptyOperator(task_id="t")
        plain = EmptyOperator(task_id="plain")
    assert (inner.retries, inner.pool_slots, inner.owner) == (4, 3, "dag")
    assert own.retries == 9
    assert (outer.retries, outer.pool_slots) == (2, 3)
    assert (plain.retries, plain.pool_slots) == (1, 1)
    assert dag.get_task("outer.inner.t") is inner


def test_shift_links_a_groups_roots_and_leaves() -> None:
    with DAG("shift", schedule=None) as dag:
        start, end = EmptyOperator(task_id="start"), EmptyOperator(task_id="end")
        with TaskGroup("g1") as g1:
            a, b, c = (EmptyOperator(task_id=n) for n in "abc")
            a >> [b, c]
        with TaskGroup("g2") as g2:
            EmptyOperator(task_id="x")
            EmptyOperator(task_id="y")
        start >> g1 >> g2 >> end
    assert edges(dag) == {
        "start": [],
        "end": ["g2.x", "g2.y"],
        "g1.a": ["start"],
        "g1.b": ["g1.a"],
        "g1.c": ["g1.a"],
        "g2.x": ["g1.b", "g1.c"],
        "g2.y": ["g1.b", "g1.c"],
    }


def test_lists_and_reverse_shift_with_groups() -> None:
    with DAG("lists", schedule=None) as dag:
        a, b = EmptyOperator(task_id="a"), EmptyOperator(task_id="b")
        with TaskGroup("g") as g:
            EmptyOperator(task_id="x")
        [a, b] >> g
        z = EmptyOperator(task_id="z")
        z << g
    assert edges(dag)["g.x"] == ["a", "b"]
    assert edges(dag)["z"] == ["g.x"]


def test_an_empty_group_bridges_its_upstream_to_its_downstream() -> None:
    with DAG("empty", schedule=None) as dag:
        a, b = EmptyOperator(task_id="a"), EmptyOperator(task_id="b")
        with TaskGroup("nothing") as nothing:
            pass
        a >> nothing >> b
    assert edges(dag)["b"] == ["a"]


def test_a_taken_group_id_is_an_error_naming_it() -> None:
    with DAG("dup", schedule=None), TaskGroup("g"):
        pass
    with pytest.raises(DagDefinitionError, match="'g' is already used"), DAG("dup2", schedule=None):
        TaskGroup("g")
        TaskGroup("g")


def test_a_group_outside_a_dag_says_so() -> None:
    with pytest.raises(DagDefinitionError, match="not inside a DAG"):
        TaskGroup("lonely")


def test_task_group_decorator_suffixes_calls_and_takes_the_docstring_as_tooltip() -> None:
    @task_group
    def stage() -> None:
        """Prepare the data."""
        EmptyOperator(task_id="work")

    with DAG("deco", schedule=None) as dag:
        first = stage()
        second = stage.override(tooltip="second pass")()
    assert dag.task_ids == ["stage.work", "stage__1.work"]
    assert isinstance(first, TaskGroup) and first.tooltip == "Prepare the data."
    assert isinstance(second, TaskGroup) and second.tooltip == "second pass"


def test_task_decorated_tasks_in_one_group_get_distinct_ids() -> None:
    @task
    def step() -> int:
        return 1

    with DAG("twice", schedule=None) as dag:
        with TaskGroup("g"):
            step()
            step()
        step()
    assert dag.task_ids == ["g.step", "g.step__1", "step"]


@pytest.mark.anyio
async def test_task_group_arguments_and_return_value_flow_as_xcoms() -> None:
    @task
    def extract() -> dict[str, int]:
        return {"a": 1, "b": 0, "c": 5}

    @task_group(group_id="clean", default_args={"retries": 2})
    def clean(rows: Any) -> Any:
        @task
        def drop_zero(rows: dict[str, int]) -> dict[str, int]:
            return {k: v for k, v in rows.items() if v}

        @task
        def total(rows: dict[str, int]) -> int:
            return sum(rows.values())

        return total(drop_zero(rows))

    @task
    def report(value: int) -> str:
        return f"total={value}"

    with DAG("flow", schedule=None) as dag:
        report(clean(extract()))
    assert dag.get_task("clean.total").retries == 2
    result = await run_dag(dag)
    assert set(result.states.values()) == {"success"}
    assert result.xcoms["report"] == "total=6"
    assert edges(dag)["clean.drop_zero"] == ["extract"]


@pytest.mark.anyio
async def test_branching_to_a_group_id_follows_the_groups_roots() -> None:
    with DAG("branch_group", schedule=None, default_args={"retry_delay": timedelta(0)}) as dag:
        pick = BranchPythonOperator(task_id="pick", python_callable=lambda: "chosen")
        with TaskGroup("chosen") as chosen:
            EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
        other = EmptyOperator(task_id="other")
        pick >> [chosen, other]
    result = await run_dag(dag)
    assert result.states == {
        "pick": "success",
        "chosen.a": "success",
        "chosen.b": "success",
        "other": "skipped",
    }
