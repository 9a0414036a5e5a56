"""Mapped task groups (`@task_group` + `.expand` / `.partial().expand` / `.expand_kwargs`)
against Airflow's documented outcomes: every task of the group has one instance per item, a
task reads the same map index of another task of its group, trigger rules inside the group are
decided per index, a task downstream of the group sees every instance."""

from __future__ import annotations

import pytest

from asyncflow import DAG, task, task_group
from asyncflow.exceptions import DagDefinitionError
from asyncflow.operators import BashOperator
from tests.engine.test_mapping import run_full

pytestmark = pytest.mark.anyio


async def test_every_task_of_the_group_is_mapped_and_reads_its_own_index() -> None:
    with DAG("group_map", schedule=None) as dag:

        @task
        def numbers() -> list[int]:
            return [1, 2, 3]

        @task_group
        def op(num: int) -> object:
            @task
            def add_1(num: int) -> int:
                return num + 1

            @task
            def mul_2(num: int) -> int:
                return num * 2

            return mul_2(add_1(num))

        @task
        def total(values: list[int]) -> int:
            return sum(values)

        total(op.expand(num=numbers()))
    run, states, values = await run_full(dag)
    assert run.state == "success"
    assert {k: v for k, v in values.items() if k[0] == "op.mul_2"} == {
        ("op.mul_2", 0): 4, ("op.mul_2", 1): 6, ("op.mul_2", 2): 8,
    }  # fmt: skip
    assert values[("total", -1)] == 18
    assert set(states.values()) == {"success"}
    assert sorted(k for k in states if k[0] == "op.add_1") == [("op.add_1", i) for i in range(3)]


async def test_trigger_rules_inside_the_group_are_per_index() -> None:
    with DAG("group_rules", schedule=None) as dag:

        @task_group
        def op(num: int) -> None:
            @task
            def check(num: int) -> int:
                if num == 2:
                    raise ValueError("two is refused")
                return num

            @task
            def use(num: int) -> int:
                return num * 10

            @task(trigger_rule="all_done")
            def cleanup() -> str:
                return "done"

            checked = check(num)
            use(checked) >> cleanup()

        op.expand(num=[1, 2, 3])
    run, states, values = await run_full(dag)
    assert states[("op.check", 1)] == "failed"
    assert [states[("op.use", i)] for i in range(3)] == ["success", "upstream_failed", "success"]
    assert [values[("op.use", i)] for i in (0, 2)] == [10, 30]
    assert [states[("op.cleanup", i)] for i in range(3)] == ["success"] * 3
    assert run.state == "success"  # the leaves (cleanup) succeeded, as Airflow decides


async def test_partial_and_expand_kwargs_and_classic_operators_in_a_group() -> None:
    with DAG("group_kwargs", schedule=None) as dag:

        @task_group
        def greet(name: str, greeting: str) -> None:
            @task
            def say(name: str, greeting: str) -> str:
                return f"{greeting}, {name}"

            said = say(name, greeting)
            said >> BashOperator(task_id="echo", bash_command="echo hi")

        greet.partial(greeting="hello").expand(name=["a", "b"])
        greet.expand_kwargs([{"name": "c", "greeting": "hey"}])
    run, states, values = await run_full(dag)
    assert run.state == "success"
    assert values[("greet.say", 1)] == "hello, b"
    assert values[("greet__1.say", 0)] == "hey, c"
    assert {states[("greet.echo", i)] for i in range(2)} == {"success"}


async def test_an_empty_list_skips_the_whole_group() -> None:
    with DAG("group_empty", schedule=None) as dag:

        @task
        def nothing() -> list[int]:
            return []

        @task_group
        def op(num: int) -> object:
            @task
            def one(num: int) -> int:
                return num

            @task
            def two(num: int) -> int:
                return num

            return two(one(num))

        op.expand(num=nothing())
    run, states, _ = await run_full(dag)
    assert states[("op.one", -1)] == "skipped" and states[("op.two", -1)] == "skipped"
    assert run.state == "success"


def test_mapping_inside_a_mapped_group_is_refused_with_the_task_named() -> None:
    with DAG("group_nested", schedule=None):

        @task
        def inner(x: int) -> int:
            return x

        @task_group
        def op(num: int) -> None:
            inner.expand(x=[1, 2])

        with pytest.raises(DagDefinitionError, match=r"op\.inner.*mapped inside mapped task group"):
            op.expand(num=[1])
