"""A DAG that cannot work fails at load time with an error that names the DAG, the task or value,
and what to do; every such error is an `AsyncflowError` and a `ValueError`."""

from __future__ import annotations

from datetime import datetime

import pytest

from asyncflow import DAG, AsyncflowError, DagDefinitionError, Engine
from asyncflow.exceptions import (
    CrossDagDependencyError,
    CycleError,
    DuplicateTaskIdError,
    InvalidScheduleError,
    InvalidTriggerRuleError,
)
from asyncflow.operators import EmptyOperator

HERE = __file__


def cyclic_dag() -> DAG:
    with DAG("cyclic", schedule=None) as dag:
        a, b, c = (EmptyOperator(task_id=t) for t in "abc")
        a >> b >> c >> a
    return dag


def assert_user_error(exc: BaseException, *parts: str) -> None:
    assert isinstance(exc, AsyncflowError)
    assert isinstance(exc, DagDefinitionError)
    assert isinstance(exc, ValueError)
    message = str(exc)
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"


def test_cycle_names_the_path_through_validate() -> None:
    with pytest.raises(CycleError) as caught:
        cyclic_dag().validate()
    assert_user_error(caught.value, "DAG 'cyclic'", "a -> b -> c -> a", "remove one of")


@pytest.mark.anyio
async def test_cycle_is_refused_when_the_engine_loads_the_dag() -> None:
    with pytest.raises(CycleError) as caught:
        async with Engine(dags=[cyclic_dag()], database=":memory:"):
            pass  # pragma: no cover - the engine must not start
    assert_user_error(caught.value, "DAG 'cyclic'", "a -> b -> c -> a")


def test_a_task_depending_on_itself_is_a_cycle() -> None:
    with DAG("self_loop", schedule=None) as dag:
        a = EmptyOperator(task_id="a")
        a >> a
    with pytest.raises(CycleError) as caught:
        dag.validate()
    assert_user_error(caught.value, "DAG 'self_loop'", "a -> a")


def test_duplicate_task_id() -> None:
    with DAG("dupes", schedule=None), pytest.raises(DuplicateTaskIdError) as caught:
        EmptyOperator(task_id="same")
        EmptyOperator(task_id="same")
    assert_user_error(caught.value, "DAG 'dupes'", "'same'", "unique task_id")


def test_errors_name_the_file_the_dag_was_written_in() -> None:
    with pytest.raises(DuplicateTaskIdError) as caught, DAG("where", schedule=None):
        EmptyOperator(task_id="same")
        EmptyOperator(task_id="same")
    assert caught.value.fileloc == HERE
    assert HERE in str(caught.value)


def test_invalid_cron() -> None:
    with pytest.raises(InvalidScheduleError) as caught:
        DAG("bad_cron", schedule="every tuesday", start_date=datetime(2024, 1, 1))
    assert_user_error(caught.value, "DAG 'bad_cron'", "'every tuesday'", "e.g.")


def test_cron_that_never_fires() -> None:
    with pytest.raises(InvalidScheduleError) as caught:
        DAG("never", schedule="0 0 31 2 *", start_date=datetime(2024, 1, 1))
    assert_user_error(caught.value, "DAG 'never'", "'0 0 31 2 *'", "never fires", "fix")


@pytest.mark.parametrize("key", ["schedule_interval", "schedule"])
def test_schedule_inside_default_args(key: str) -> None:
    with pytest.raises(InvalidScheduleError) as caught:
        DAG("in_defaults", default_args={key: "@daily"})
    assert_user_error(caught.value, "DAG 'in_defaults'", "default_args", "DAG(schedule=")


@pytest.mark.parametrize("argument", ["schedule", "schedule_interval"])
def test_the_string_none_as_schedule(argument: str) -> None:
    with pytest.raises(InvalidScheduleError) as caught:
        DAG("quoted_none", **{argument: "None"})  # type: ignore[arg-type]
    assert_user_error(caught.value, "DAG 'quoted_none'", "'None'", "schedule=None")


def test_schedule_and_schedule_interval_together() -> None:
    with pytest.raises(InvalidScheduleError) as caught:
        DAG("both", schedule="@daily", schedule_interval="@hourly")
    assert_user_error(caught.value, "DAG 'both'", "schedule_interval", "keep only")


def test_unknown_trigger_rule() -> None:
    with DAG("rules", schedule=None), pytest.raises(InvalidTriggerRuleError) as caught:
        EmptyOperator(task_id="picky", trigger_rule="sometimes")
    assert_user_error(caught.value, "DAG 'rules'", "'picky'", "'sometimes'", "all_success")
    assert caught.value.fileloc == HERE


def test_dependency_across_two_dags() -> None:
    with DAG("first", schedule=None):
        a = EmptyOperator(task_id="a")
    with DAG("second", schedule=None):
        b = EmptyOperator(task_id="b")
    with pytest.raises(CrossDagDependencyError) as caught:
        a >> b
    assert_user_error(caught.value, "'first'", "'second'", "'a'", "'b'", "inside one DAG")
    assert a.downstream_task_ids == set() and b.upstream_task_ids == set()


def test_moving_a_task_to_another_dag_is_refused() -> None:
    first = DAG("first", schedule=None)
    second = DAG("second", schedule=None)
    task = EmptyOperator(task_id="a", dag=first)
    with pytest.raises(CrossDagDependencyError, match=r"'first'.*'second'"):
        task.dag = second


def test_unknown_operator_argument_is_named() -> None:
    with DAG("typo", schedule=None), pytest.raises(DagDefinitionError) as caught:
        EmptyOperator(task_id="t", retires=3)
    assert_user_error(caught.value, "DAG 'typo'", "'t'", "retires", "spelling")


@pytest.mark.anyio
async def test_two_dags_with_one_dag_id_are_refused_by_the_engine() -> None:
    first, second = DAG("twin", schedule=None), DAG("twin", schedule=None)
    with pytest.raises(DagDefinitionError) as caught:
        async with Engine(dags=[first, second], database=":memory:"):
            pass  # pragma: no cover
    assert_user_error(caught.value, "DAG 'twin'", "unique dag_id")


def test_every_load_error_class_is_rooted_at_asyncflow_error_and_value_error() -> None:
    for cls in (
        CycleError,
        DuplicateTaskIdError,
        InvalidScheduleError,
        InvalidTriggerRuleError,
        CrossDagDependencyError,
    ):
        assert issubclass(cls, DagDefinitionError)
        assert issubclass(cls, AsyncflowError)
        assert issubclass(cls, ValueError)
