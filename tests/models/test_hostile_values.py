"""Hostile values thrown at every argument of `DAG(...)` and of every built-in operator (and
through `default_args`): each either builds a DAG the engine can compute with, or raises an
`AsyncflowError` naming the DAG; never a raw TypeError, OverflowError or ValueError from deep
inside, at load or later when the scheduler asks the DAG its next run, a retry delay, a timeout
deadline or its priorities."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Any

import pendulum
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncflow import DAG, AsyncflowError, BaseOperator, Param
from asyncflow.engine.planner import priority_weights, retry_delay
from asyncflow.models.param import resolve_params
from asyncflow.operators import (
    BashOperator,
    BranchPythonOperator,
    EmptyOperator,
    PythonOperator,
    ShortCircuitOperator,
)
from asyncflow.timetables import TimeRestriction
from asyncflow.timeutil import add_clamped


class BrokenZone(tzinfo):
    """A tzinfo whose every method raises."""

    def utcoffset(self, dt: datetime | None) -> timedelta:
        raise RuntimeError("broken zone")

    def dst(self, dt: datetime | None) -> timedelta:
        raise RuntimeError("broken zone")

    def tzname(self, dt: datetime | None) -> str:
        raise RuntimeError("broken zone")


HOSTILE: list[Any] = [
    None, 0, -1, 1, 2**63, 10**100, -(10**100), 1.5, math.nan, math.inf, -math.inf,
    "", "abc", " ", "\x00", "x" * 5000, "@daily", "* * * * *", "-1",
    True, False, [], [1, "a"], (None,), {}, {"a": object()}, object(), b"bytes",
    timedelta.max, timedelta.min, timedelta(0), timedelta(seconds=-1),
    datetime.min, datetime.max, datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC),
    datetime.max.replace(tzinfo=timezone(-timedelta(hours=23))),
    pendulum.datetime(2021, 1, 1, tz="Europe/Berlin"), pendulum.timezone("Asia/Tokyo"),
    date(2021, 1, 1), datetime(2021, 1, 1, tzinfo=BrokenZone()), BrokenZone(),
    Param("abc", type="integer"), lambda: None, print,
]  # fmt: skip

NOW = datetime(2026, 6, 1, tzinfo=UTC)
# hostile `email` values draw the (wanted) "email is not sent" warning: not what is tested here
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def noop() -> None:
    return None


OPERATORS: dict[type[BaseOperator], dict[str, Any]] = {
    EmptyOperator: {},
    PythonOperator: {"python_callable": noop},
    BranchPythonOperator: {"python_callable": noop},
    ShortCircuitOperator: {"python_callable": noop},
    BashOperator: {"bash_command": "true"},
}
DAG_ARGS = [
    name
    for name, p in inspect.signature(DAG.__init__).parameters.items()
    if name not in ("self", "fileloc")
]
TASK_CASES = [
    (cls, name) for cls in OPERATORS for name in sorted(cls._accepted_args) if name != "dag"
]


def exercise(dag: DAG) -> None:
    """What the engine asks a loaded DAG: each must answer without raising."""
    dag.validate()
    restriction = TimeRestriction(dag.start_date, dag.end_date, dag.catchup, now=NOW)
    info = dag.timetable.next_dagrun_info(
        last_automated_data_interval=None, restriction=restriction
    )
    if info is not None:
        dag.timetable.next_dagrun_info(
            last_automated_data_interval=info.data_interval, restriction=restriction
        )
    dag.timetable.infer_manual_data_interval(run_after=NOW)
    if dag.dagrun_timeout is not None:
        add_clamped(NOW, dag.dagrun_timeout)
    if dag.timetable.can_be_scheduled:
        resolve_params(dag.params, None, dag_id=dag.dag_id)
    priority_weights(dag)
    for task in dag.tasks:
        for try_number in {1, 2, 54, task.retries + 1}:
            add_clamped(NOW, retry_delay(task, try_number))
        if task.execution_timeout is not None:
            add_clamped(NOW, task.execution_timeout)


def survives(build: Callable[[], DAG], what: str) -> None:
    """`build` gives a DAG that `exercise` accepts, or raises an AsyncflowError naming it."""
    try:
        dag = build()
    except AsyncflowError as exc:
        assert "DAG '" in str(exc) or "dag_id" in str(exc), f"{what}: {exc}"
        return
    except Exception as exc:
        raise AssertionError(f"{what} raised {type(exc).__name__}: {exc}") from exc
    try:
        exercise(dag)
    except AsyncflowError:
        pass  # a clear error of ours at a later step is acceptable; a raw one is not
    except Exception as exc:
        raise AssertionError(f"{what}: the built DAG raised {type(exc).__name__}: {exc}") from exc


def dag_with(**kwargs: Any) -> Callable[[], DAG]:
    def build() -> DAG:
        options: dict[str, Any] = {"schedule": "@daily", "start_date": datetime(2026, 1, 1)}
        options.update(kwargs)
        with DAG(options.pop("dag_id", "hostile"), **options) as dag:
            EmptyOperator(task_id="t")
        return dag

    return build


def task_with(cls: type[BaseOperator], default_args: bool = False, **kwargs: Any) -> DAG:
    with DAG(
        "hostile",
        schedule="@daily",
        start_date=datetime(2026, 1, 1),
        default_args=kwargs if default_args else None,
    ) as dag:
        options = {**OPERATORS[cls], "task_id": "t"}
        if not default_args:
            options.update(kwargs)
        cls(**options)
    return dag


@pytest.mark.parametrize("argument", DAG_ARGS)
def test_every_dag_argument_survives_every_hostile_value(argument: str) -> None:
    for value in HOSTILE:
        survives(dag_with(**{argument: value}), f"DAG({argument}={value!r:.60})")


@pytest.mark.parametrize(
    ("cls", "argument"), TASK_CASES, ids=[f"{c.__name__}.{a}" for c, a in TASK_CASES]
)
def test_every_operator_argument_survives_every_hostile_value(
    cls: type[BaseOperator], argument: str
) -> None:
    for value in HOSTILE:
        what = f"{cls.__name__}({argument}={value!r:.60})"
        survives(lambda value=value: task_with(cls, **{argument: value}), what)
        survives(
            lambda value=value: task_with(cls, default_args=True, **{argument: value}),
            f"default_args {what}",
        )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    # indexes into HOSTILE: hypothesis itself must not hash or compare the hostile values
    dag_picks=st.dictionaries(
        st.sampled_from(DAG_ARGS), st.integers(0, len(HOSTILE) - 1), max_size=3
    ),
    task_picks=st.dictionaries(
        st.sampled_from(sorted(EmptyOperator._accepted_args - {"dag", "task_id"})),
        st.integers(0, len(HOSTILE) - 1),
        max_size=4,
    ),
)
def test_combinations_of_hostile_values(
    dag_picks: dict[str, int], task_picks: dict[str, int]
) -> None:
    dag_args = {name: HOSTILE[i] for name, i in dag_picks.items()}
    task_args = {name: HOSTILE[i] for name, i in task_picks.items()}

    def build() -> DAG:
        options: dict[str, Any] = {"schedule": "@daily", "start_date": datetime(2026, 1, 1)}
        options.update(dag_args)
        with DAG(options.pop("dag_id", "hostile"), **options) as dag:
            EmptyOperator(task_id="t", **task_args)
        return dag

    survives(build, f"DAG{dag_args} task{task_args}")
