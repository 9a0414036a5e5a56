"""Bad values in a DAG file fail that DAG's import with an error naming the DAG, the task, the
argument and the value, or are clamped to something the engine can compute with; never an
error from deep inside the scheduler later."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from asyncflow import DAG, DagDefinitionError, Param
from asyncflow.operators import EmptyOperator
from asyncflow.timeutil import MAX_DURATION
from tests.engine.support import run_dag


def error_of(build: object) -> str:
    with pytest.raises(DagDefinitionError) as caught:
        build()  # type: ignore[operator]
    return str(caught.value)


def test_a_task_param_whose_default_fails_its_schema_is_a_load_error() -> None:
    def build() -> None:
        with DAG("bad_task_param", schedule=None):
            EmptyOperator(task_id="t", params={"n": Param("abc", type="integer")})

    message = error_of(build)
    for part in ("'bad_task_param'", "task 't'", "param 'n'", "'abc'", "integer"):
        assert part in message, message


def test_a_dag_param_whose_default_fails_its_schema_is_a_load_error() -> None:
    message = error_of(
        lambda: DAG("bad_dag_param", schedule=None, params={"n": Param(5, maximum=3)})
    )
    for part in ("'bad_dag_param'", "param 'n'", "greater than the maximum of 3"):
        assert part in message, message


def test_a_scheduled_dag_cannot_have_a_param_without_default() -> None:
    message = error_of(lambda: DAG("required_param", schedule="@daily", params={"n": Param()}))
    assert "param 'n' has no default" in message and "schedule=None" in message
    DAG("required_param_manual", schedule=None, params={"n": Param(type="integer")})


def test_param_bounds_apply_to_numbers_only_as_in_json_schema() -> None:
    dag = DAG("bounds", schedule=None, params={"n": Param("x", minimum=1)})
    assert dag.params["n"].resolve("n") == "x"  # no TypeError comparing "x" with 1
    message = error_of(lambda: DAG("bounds_2", schedule=None, params={"n": Param(0, minimum=1)}))
    assert "less than the minimum of 1" in message


@pytest.mark.anyio
async def test_dagrun_timeout_of_timedelta_max_is_clamped_and_the_run_completes() -> None:
    with DAG("forever_timeout", schedule=None, dagrun_timeout=timedelta.max) as dag:
        EmptyOperator(task_id="t", execution_timeout=timedelta.max, retry_delay=1e300)
    assert dag.dagrun_timeout == MAX_DURATION
    result = await run_dag(dag)
    assert result.states == {"t": "success"}


@pytest.mark.parametrize(
    ("argument", "value", "expected"),
    [
        ("retries", -1, "retries=-1 is out of range"),
        ("retries", 10**12, "out of range"),
        ("retries", "many", "not a whole number"),
        ("retry_delay", float("nan"), "retry_delay: NaN"),
        ("retry_delay", -5, "negative"),
        ("execution_timeout", 0, "longer than zero"),
        ("pool_slots", 0, "pool_slots=0 is out of range"),
        ("start_date", date(2021, 1, 1), "datetime(2021, 1, 1, tzinfo=UTC)"),
        ("on_failure_callback", "notify", "not a callable"),
        ("params", ["n"], "params=['n'] is not a dict"),
    ],
)
def test_a_bad_operator_argument_names_dag_task_argument_and_value(
    argument: str, value: object, expected: str
) -> None:
    def build() -> None:
        with DAG("bad_arguments", schedule=None):
            EmptyOperator(task_id="t", **{argument: value})  # type: ignore[arg-type]

    message = error_of(build)
    assert "DAG 'bad_arguments'" in message and "task 't'" in message, message
    assert expected in message, message


def test_retries_given_as_a_string_of_digits_is_read_as_airflow_does() -> None:
    with DAG("string_retries", schedule=None):
        assert EmptyOperator(task_id="t", retries="3").retries == 3  # type: ignore[arg-type]


def test_priority_weight_is_clamped_to_32_bits_as_in_airflow() -> None:
    with DAG("huge_weight", schedule=None):
        assert EmptyOperator(task_id="t", priority_weight=10**30).priority_weight == 2**31 - 1


@pytest.mark.parametrize("task_id", ["", "a b", "a/b", "x" * 251, "ä€/"])
def test_a_task_id_airflow_would_refuse_is_refused(task_id: str) -> None:
    def build() -> None:
        with DAG("bad_task_id", schedule=None):
            EmptyOperator(task_id=task_id)

    assert "letters, digits, dashes, dots and underscores" in error_of(build)
