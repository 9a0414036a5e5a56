"""Tasks that reach across DAGs of the same engine: TriggerDagRunOperator starts (and waits
for) another DAG's run; ExternalTaskSensor waits for another DAG's tasks at the same logical
date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from asyncflow import DAG, AsyncflowError, Engine, TaskGroup, task
from asyncflow.operators import EmptyOperator, PythonOperator, TriggerDagRunOperator
from asyncflow.sensors import ExternalTaskMarker, ExternalTaskSensor
from tests.engine.support import finish, outcome

pytestmark = pytest.mark.anyio

WHEN = datetime(2024, 3, 5, tzinfo=UTC)


def target_dag(seen: list[dict[str, Any]], *, fail: bool = False) -> DAG:
    with DAG("target", schedule=None) as dag:

        @task
        def work(**context: Any) -> None:
            seen.append(dict(context["dag_run"].conf))
            if fail:
                raise RuntimeError("target fails")

        work()
    return dag


async def test_trigger_passes_templated_conf_and_waits_for_the_run() -> None:
    seen: list[dict[str, Any]] = []
    with DAG("controller", schedule=None) as controller:
        TriggerDagRunOperator(
            task_id="trigger",
            trigger_dag_id="target",
            conf={"day": "{{ ds }}", "fixed": 1},
            wait_for_completion=True,
            poke_interval=1,
        )
    async with Engine(dags=[controller, target_dag(seen)], database=":memory:") as engine:
        result = await finish(engine, "controller", logical_date=WHEN)
        assert result.states == {"trigger": "success"}
        run_id = await engine.get_xcom("controller", result.run.run_id, "trigger",
                                       key="trigger_run_id")  # fmt: skip
        target = await engine.get_dag_run("target", run_id)
        # waited: the target had finished when the trigger task succeeded
        assert target.state == "success" and target.conf == {"day": "2024-03-05", "fixed": 1}
    assert seen == [{"day": "2024-03-05", "fixed": 1}]


async def test_a_failed_target_fails_the_waiting_trigger_unless_its_states_allow_it() -> None:
    seen: list[dict[str, Any]] = []
    with DAG("controller", schedule=None) as controller:
        TriggerDagRunOperator(task_id="strict", trigger_dag_id="target", wait_for_completion=True)
        TriggerDagRunOperator(
            task_id="lenient",
            trigger_dag_id="target",
            wait_for_completion=True,
            allowed_states=["success", "failed"],
            failed_states=[],
        )
        TriggerDagRunOperator(task_id="fire_and_forget", trigger_dag_id="target")
    dags = [controller, target_dag(seen, fail=True)]
    async with Engine(dags=dags, database=":memory:") as engine:
        result = await finish(engine, "controller")
    assert result.states == {"strict": "failed", "lenient": "success", "fire_and_forget": "success"}
    assert "ended failed" in (result.tis["strict"].error or "")
    assert len(seen) == 3


async def test_an_existing_run_fails_is_reset_or_skips_as_asked() -> None:
    seen: list[dict[str, Any]] = []
    with DAG("controller", schedule=None) as controller:
        for task_id, options in (
            ("plain", {}),
            ("skip", {"skip_when_already_exists": True}),
        ):
            TriggerDagRunOperator(task_id=task_id, trigger_dag_id="target", trigger_run_id="r1",
                                  **options)  # fmt: skip
    with DAG("resetter", schedule=None) as resetter:
        TriggerDagRunOperator(task_id="reset", trigger_dag_id="target", trigger_run_id="r1",
                              reset_dag_run=True, wait_for_completion=True)  # fmt: skip
    dags = [controller, resetter, target_dag(seen)]
    async with Engine(dags=dags, database=":memory:") as engine:
        await finish(engine, "target", run_id="r1", conf={"first": True})
        result = await finish(engine, "controller")
        assert result.states == {"plain": "failed", "skip": "skipped"}
        assert "already has a run" in (result.tis["plain"].error or "")
        reset = await finish(engine, "resetter")
        assert reset.states == {"reset": "success"}
        again = await outcome(engine, "target", "r1")
        assert again.states == {"work": "success"} and again.tis["work"].try_number == 2
    # the run ran again, with its conf (a run's conf is not replaced by a reset)
    assert seen == [{"first": True}, {"first": True}]


async def test_triggering_outside_an_engine_says_what_is_needed() -> None:
    op = TriggerDagRunOperator(task_id="t", trigger_dag_id="other")
    with pytest.raises(AsyncflowError, match="TriggerDagRunOperator needs the engine"):
        await op.execute({})


def parent_dag(*, fail: bool = False) -> DAG:
    def work() -> None:
        if fail:
            raise RuntimeError("parent fails")

    with DAG("parent", schedule="@daily", start_date=datetime(2024, 1, 1)) as dag:
        ExternalTaskMarker(task_id="marker", external_dag_id="child", external_task_id="wait")
        PythonOperator(task_id="work", python_callable=work)
        with TaskGroup("group"):
            EmptyOperator(task_id="a")
            EmptyOperator(task_id="b")
    return dag


def child_dag(**sensor: Any) -> DAG:
    sensor.setdefault("external_dag_id", "parent")
    sensor.setdefault("poke_interval", 0.01)
    sensor.setdefault("timeout", 5)
    with DAG("child", schedule="@daily", start_date=datetime(2024, 1, 1)) as dag:
        ExternalTaskSensor(task_id="wait", **sensor)
    return dag


@pytest.mark.parametrize(
    "sensor",
    [
        {"external_task_id": "work"},
        {"external_task_ids": ["work", "marker"]},
        {"external_task_group_id": "group"},
        {},  # the whole run
    ],
    ids=["task", "tasks", "group", "run"],
)
async def test_the_sensor_waits_for_the_other_dag_at_the_same_logical_date(
    sensor: dict[str, Any],
) -> None:
    async with Engine(dags=[parent_dag(), child_dag(**sensor)], database=":memory:",
                      run_schedules=False) as engine:  # fmt: skip
        child = await engine.trigger_dag("child", logical_date=WHEN)
        # not done while the parent has no run at that date: the sensor keeps poking
        parent = await finish(engine, "parent", logical_date=WHEN)
        assert parent.run.state == "success"
        result = await outcome(engine, "child", child.run_id)
    assert result.states == {"wait": "success"}


async def test_execution_delta_looks_at_an_earlier_run() -> None:
    dags = [parent_dag(), child_dag(external_task_id="work", execution_delta=timedelta(days=1))]
    async with Engine(dags=dags, database=":memory:", run_schedules=False) as engine:
        await finish(engine, "parent", logical_date=WHEN - timedelta(days=1))
        result = await finish(engine, "child", logical_date=WHEN)
    assert result.states == {"wait": "success"}


async def test_execution_date_fn_may_name_several_runs() -> None:
    dates = [WHEN - timedelta(days=2), WHEN - timedelta(days=1)]
    dags = [
        parent_dag(),
        child_dag(external_task_id="work", execution_date_fn=lambda logical: dates, timeout=0.3),
    ]
    async with Engine(dags=dags, database=":memory:", run_schedules=False) as engine:
        await finish(engine, "parent", logical_date=dates[0])
        one_missing = await finish(engine, "child", logical_date=WHEN)
        assert one_missing.states == {"wait": "failed"}  # timed out: one run is not there
        await finish(engine, "parent", logical_date=dates[1])
        result = await finish(engine, "child", logical_date=WHEN + timedelta(days=1))
    assert result.states == {"wait": "success"}


async def test_a_failed_state_fails_the_sensor_and_soft_fail_skips_it() -> None:
    for soft_fail, expected in ((False, "failed"), (True, "skipped")):
        dags = [
            parent_dag(fail=True),
            child_dag(external_task_id="work", failed_states=["failed"], soft_fail=soft_fail),
        ]
        async with Engine(dags=dags, database=":memory:", run_schedules=False) as engine:
            await finish(engine, "parent", logical_date=WHEN)
            result = await finish(engine, "child", logical_date=WHEN)
        assert result.states == {"wait": expected}
        if not soft_fail:
            assert "failed_states" in (result.tis["wait"].error or "")


async def test_check_existence_fails_at_once_for_a_task_that_is_not_there() -> None:
    dags = [parent_dag(), child_dag(external_task_id="nope", check_existence=True, timeout=60)]
    async with Engine(dags=dags, database=":memory:", run_schedules=False) as engine:
        result = await finish(engine, "child", logical_date=WHEN, timeout=5)
    assert result.states == {"wait": "failed"}
    assert "has no tasks ['nope']" in (result.tis["wait"].error or "")


def test_conflicting_arguments_are_load_errors() -> None:
    from asyncflow import DagDefinitionError

    with pytest.raises(DagDefinitionError, match="not both"):
        child_dag(external_task_id="a", external_task_ids=["b"])
    with pytest.raises(DagDefinitionError, match="share a state"):
        child_dag(external_task_id="a", allowed_states=["success"], failed_states=["success"])
    with pytest.raises(DagDefinitionError, match="not DAG run states"):
        child_dag(allowed_states=["upstream_failed"])


async def test_a_deferrable_sensor_waits_between_pokes_and_still_finds_the_run() -> None:
    dags = [parent_dag(), child_dag(external_task_id="work", deferrable=True, poke_interval=0)]
    async with Engine(dags=dags, database=":memory:", run_schedules=False) as engine:
        child = await engine.trigger_dag("child", logical_date=WHEN)
        await finish(engine, "parent", logical_date=WHEN)
        result = await outcome(engine, "child", child.run_id)
    assert result.states == {"wait": "success"}
