"""Authoring a DAG: context manager or plain object, dependencies, chain(), default_args,
schedule= / schedule_interval=."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from asyncflow import DAG, BaseOperator, DagDefinitionError, chain, cross_downstream
from asyncflow.operators import BashOperator, EmptyOperator, PythonOperator


def edges(dag: DAG) -> set[tuple[str, str]]:
    """Every (upstream, downstream) pair, checked to be recorded on both ends."""
    down = {(t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids}
    up = {(u, t.task_id) for t in dag.tasks for u in t.upstream_task_ids}
    assert down == up
    return down


def empties(*task_ids: str) -> list[EmptyOperator]:
    return [EmptyOperator(task_id=task_id) for task_id in task_ids]


# -- DAG as a context manager and as a plain object ------------------------------------------
def test_tasks_created_inside_with_dag_belong_to_it() -> None:
    with DAG("ctx", schedule=None) as dag:
        a, b = empties("a", "b")
    outside = EmptyOperator(task_id="outside")
    assert a.dag is dag and b.dag is dag
    assert dag.task_ids == ["a", "b"]
    assert outside.dag is None


def test_nested_dag_blocks_attach_tasks_to_the_innermost() -> None:
    with DAG("outer", schedule=None) as outer:
        with DAG("inner", schedule=None) as inner:
            EmptyOperator(task_id="in_inner")
        EmptyOperator(task_id="in_outer")
    assert inner.task_ids == ["in_inner"]
    assert outer.task_ids == ["in_outer"]


def test_plain_dag_object_with_dag_argument() -> None:
    dag = DAG("plain", schedule=None, start_date=datetime(2024, 1, 1))
    a = EmptyOperator(task_id="a", dag=dag)
    b = PythonOperator(task_id="b", python_callable=lambda: 1, dag=dag)
    a >> b
    assert a.dag is dag and b.dag is dag
    assert edges(dag) == {("a", "b")}
    assert dag.start_date == datetime(2024, 1, 1, tzinfo=UTC)


def test_a_task_without_a_dag_joins_the_dag_of_the_task_it_is_linked_to() -> None:
    dag = DAG("adopt", schedule=None)
    a = EmptyOperator(task_id="a", dag=dag)
    loose = EmptyOperator(task_id="loose")
    a >> loose
    assert loose.dag is dag
    assert dag.task_ids == ["a", "loose"]


# -- dependencies -------------------------------------------------------------------------------
def test_rshift_chains_left_to_right() -> None:
    with DAG("rshift", schedule=None) as dag:
        a, b, c = empties("a", "b", "c")
        result = a >> b >> c
    assert result is c
    assert edges(dag) == {("a", "b"), ("b", "c")}
    assert a.downstream_task_ids == {"b"} and c.upstream_task_ids == {"b"}


def test_lshift_chains_right_to_left() -> None:
    with DAG("lshift", schedule=None) as dag:
        a, b, c = empties("a", "b", "c")
        c << b << a
    assert edges(dag) == {("a", "b"), ("b", "c")}


def test_lists_on_either_side_of_the_shift_operators() -> None:
    with DAG("lists", schedule=None) as dag:
        a, b, c, d, e, f, g = empties("a", "b", "c", "d", "e", "f", "g")
        a >> [b, c]  # task >> list
        [b, c] >> d  # list >> task
        e << [d, f]  # task << list
        [g] << e  # list << task
    assert edges(dag) == {
        ("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("d", "e"), ("f", "e"), ("e", "g"),
    }  # fmt: skip


def test_set_upstream_and_set_downstream() -> None:
    with DAG("setters", schedule=None) as dag:
        a, b, c, d = empties("a", "b", "c", "d")
        b.set_upstream(a)
        b.set_downstream([c, d])
    assert edges(dag) == {("a", "b"), ("b", "c"), ("b", "d")}


def test_chain_links_in_order_and_fans_out_and_in_around_lists() -> None:
    with DAG("chain", schedule=None) as dag:
        a, b, c, d = empties("a", "b", "c", "d")
        chain(a, [b, c], d)
    assert edges(dag) == {("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")}


def test_chain_pairs_two_adjacent_lists_element_wise() -> None:
    with DAG("chain_pairs", schedule=None) as dag:
        a, b, c, d, e, f = empties("a", "b", "c", "d", "e", "f")
        chain(a, [b, c], [d, e], f)
    assert edges(dag) == {
        ("a", "b"), ("a", "c"), ("b", "d"), ("c", "e"), ("d", "f"), ("e", "f"),
    }  # fmt: skip


def test_chain_of_lists_with_different_lengths_is_an_error() -> None:
    with DAG("chain_bad", schedule=None):
        a, b, c, d, e = empties("a", "b", "c", "d", "e")
        with pytest.raises(DagDefinitionError, match=r"lists of 2 and 3 tasks.*same length"):
            chain([a, b], [c, d, e])


def test_cross_downstream_links_every_pair() -> None:
    with DAG("cross", schedule=None) as dag:
        a, b, c, d = empties("a", "b", "c", "d")
        cross_downstream([a, b], [c, d])
    assert edges(dag) == {("a", "c"), ("a", "d"), ("b", "c"), ("b", "d")}


def test_roots_and_leaves() -> None:
    with DAG("shape", schedule=None) as dag:
        a, b, c = empties("a", "b", "c")
        a >> [b, c]
    assert [t.task_id for t in dag.roots] == ["a"]
    assert sorted(t.task_id for t in dag.leaves) == ["b", "c"]


def test_a_loaded_dag_is_immutable() -> None:
    with DAG("frozen", schedule=None) as dag:
        a, b = empties("a", "b")
    dag.validate()
    with pytest.raises(DagDefinitionError, match="immutable"):
        a >> b
    with pytest.raises(DagDefinitionError, match="immutable"):
        EmptyOperator(task_id="late", dag=dag)


# -- default_args -------------------------------------------------------------------------------
def test_default_args_fill_what_the_operator_leaves_out() -> None:
    with DAG(
        "defaults",
        schedule=None,
        default_args={"retries": 3, "retry_delay": timedelta(seconds=7), "owner": "ops"},
    ):
        inherits = EmptyOperator(task_id="inherits")
    assert inherits.retries == 3
    assert inherits.retry_delay == timedelta(seconds=7)
    assert inherits.owner == "ops"


def test_an_operator_argument_beats_default_args_even_when_falsy() -> None:
    with DAG("precedence", schedule=None, default_args={"retries": 3, "owner": "ops"}):
        explicit = EmptyOperator(task_id="explicit", retries=0, owner="me")
    assert explicit.retries == 0
    assert explicit.owner == "me"


def test_default_args_reach_subclass_specific_arguments() -> None:
    with DAG(
        "subclass_defaults",
        schedule=None,
        default_args={"bash_command": "echo from-defaults", "retries": 2, "cwd": "/tmp"},
    ):
        bash = BashOperator(task_id="bash")
        python = PythonOperator(task_id="python", python_callable=lambda: None)
    assert bash.bash_command == "echo from-defaults"
    assert bash.cwd == "/tmp"
    assert bash.retries == 2 and python.retries == 2
    assert not hasattr(python, "bash_command")  # not an argument of PythonOperator: ignored


def test_default_args_reach_a_user_subclass_of_base_operator() -> None:
    class Greet(BaseOperator):
        def __init__(self, *, greeting: str = "hello", **kwargs: object) -> None:
            super().__init__(**kwargs)  # type: ignore[arg-type]
            self.greeting = greeting

        async def execute(self, context: dict[str, object]) -> str:
            return self.greeting

    with DAG("custom_defaults", schedule=None, default_args={"greeting": "hi", "retries": 1}):
        greet = Greet(task_id="greet")
    assert greet.greeting == "hi"
    assert greet.retries == 1


def test_operator_default_args_argument_overrides_the_dags() -> None:
    with DAG("op_defaults", schedule=None, default_args={"retries": 3, "owner": "ops"}):
        task = EmptyOperator(task_id="t", default_args={"retries": 5})
    assert task.retries == 5
    assert task.owner == "ops"


def test_default_args_on_a_plain_dag_object() -> None:
    dag = DAG("plain_defaults", schedule=None, default_args={"retries": 4})
    assert EmptyOperator(task_id="t", dag=dag).retries == 4


def test_default_start_date_comes_from_default_args() -> None:
    dag = DAG("start_defaults", schedule=None, default_args={"start_date": datetime(2020, 5, 1)})
    assert dag.start_date == datetime(2020, 5, 1, tzinfo=UTC)


# -- schedule= and schedule_interval= --------------------------------------------------------
@pytest.mark.parametrize("value", ["@daily", "30 2 * * *", timedelta(hours=6), None])
def test_schedule_interval_is_the_older_name_of_schedule(value: object) -> None:
    new = DAG("new_name", schedule=value)
    old = DAG("old_name", schedule_interval=value)
    assert new.timetable == old.timetable
    assert new.schedule == old.schedule == value


def test_schedule_none_means_manual_only() -> None:
    dag = DAG("manual", schedule=None)
    assert dag.timetable.can_be_scheduled is False


def test_a_cron_schedule_can_be_scheduled() -> None:
    dag = DAG("cron", schedule="@daily", start_date=datetime(2024, 1, 1))
    assert dag.timetable.can_be_scheduled is True
    assert dag.timetable.summary == "@daily"
