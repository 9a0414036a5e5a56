"""Airflow's standard operators and sensors that need no engine change, and the TaskFlow
conditions: each proved by the task states of a run."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from asyncflow import DAG, FakeClock, task
from asyncflow.operators import EmptyOperator
from asyncflow.operators.datetime import BranchDateTimeOperator
from asyncflow.operators.latest_only import LatestOnlyOperator
from asyncflow.operators.weekday import BranchDayOfWeekOperator
from asyncflow.sensors.bash import BashSensor
from asyncflow.sensors.time import TimeSensor
from asyncflow.sensors.weekday import DayOfWeekSensor
from asyncflow.timezone import days_ago, make_aware, make_naive, parse
from asyncflow.weekday import WeekDay
from tests.engine.support import run_dag
from tests.schedules.support import make_engine, tis, utc, wait_runs

pytestmark = pytest.mark.anyio

SATURDAY = datetime(2024, 1, 6, 12, tzinfo=UTC)


def branch_dag(dag_id: str, make: type, **kwargs: object) -> DAG:
    with DAG(dag_id, schedule=None) as dag:
        branch = make(
            task_id="branch", follow_task_ids_if_true="yes", follow_task_ids_if_false="no", **kwargs
        )
        branch >> [EmptyOperator(task_id="yes"), EmptyOperator(task_id="no")]
    return dag


async def test_branch_day_of_week_on_the_logical_date() -> None:
    dag = branch_dag("weekend", BranchDayOfWeekOperator, week_day={WeekDay.SATURDAY, "Sunday"},
                     use_task_logical_date=True)  # fmt: skip
    saturday = await run_dag(dag, logical_date=SATURDAY)
    assert (saturday.states["yes"], saturday.states["no"]) == ("success", "skipped")
    monday = await run_dag(dag, logical_date=SATURDAY + timedelta(days=2))
    assert (monday.states["yes"], monday.states["no"]) == ("skipped", "success")


async def test_branch_date_time_with_times_of_day_spanning_midnight() -> None:
    dag = branch_dag("night", BranchDateTimeOperator, target_lower=time(22),
                     target_upper=time(2), use_task_logical_date=True)  # fmt: skip
    late = await run_dag(dag, logical_date=datetime(2024, 1, 1, 23, tzinfo=UTC))
    assert late.states["yes"] == "success" and late.states["no"] == "skipped"
    noon = await run_dag(dag, logical_date=datetime(2024, 1, 1, 12, tzinfo=UTC))
    assert noon.states["yes"] == "skipped" and noon.states["no"] == "success"


async def test_latest_only_skips_downstream_of_caught_up_runs_only() -> None:
    with DAG("latest", schedule="@daily", start_date=utc(2024, 1, 1), catchup=True) as dag:
        latest = LatestOnlyOperator(task_id="latest")
        after = EmptyOperator(task_id="after")
        always = EmptyOperator(task_id="always", trigger_rule="all_done")
        latest >> after >> always
    clock = FakeClock(utc(2024, 1, 3, 0, 30))
    async with make_engine([dag], clock) as engine:
        old, new = await wait_runs(engine, "latest", 2, finished=True)
        old_states = {
            k: v.state.value for k, v in (await tis(engine, "latest", old.run_id)).items()
        }
        new_states = {
            k: v.state.value for k, v in (await tis(engine, "latest", new.run_id)).items()
        }
    assert old_states == {"latest": "success", "after": "skipped", "always": "success"}
    assert new_states == {"latest": "success", "after": "success", "always": "success"}


async def test_latest_only_lets_a_manual_run_through() -> None:
    with DAG("latest_manual", schedule="@daily", start_date=utc(2020, 1, 1), catchup=False) as dag:
        LatestOnlyOperator(task_id="latest") >> EmptyOperator(task_id="after")
    result = await run_dag(dag, logical_date=utc(2020, 1, 1))
    assert result.states["after"] == "success"


async def test_run_if_and_skip_if_decide_before_the_task_runs() -> None:
    ran: list[str] = []

    @task.run_if(lambda context: context["params"]["go"], skip_message="not today")
    @task
    def guarded() -> None:
        ran.append("guarded")

    @task.skip_if(lambda context: context["params"]["go"])
    @task.bash
    def opposite() -> str:
        return "echo opposite"

    with DAG("conditions", schedule=None, params={"go": False}) as dag:
        guarded() >> EmptyOperator(task_id="after", trigger_rule="none_failed")
        opposite()
    result = await run_dag(dag)
    assert result.states == {"guarded": "skipped", "after": "success", "opposite": "success"}
    assert ran == []
    result = await run_dag(dag, conf={"go": True})
    assert (result.states["guarded"], result.states["opposite"]) == ("success", "skipped")


async def test_task_sensor_pokes_with_xcom_arguments_until_true() -> None:
    calls: list[int] = []

    @task
    def threshold() -> int:
        return 3

    @task.sensor(poke_interval=0, timeout=5)
    def enough(limit: int) -> bool:
        calls.append(limit)
        return len(calls) >= limit

    with DAG("task_sensor", schedule=None) as dag:
        enough(threshold())
    result = await run_dag(dag)
    assert result.states["enough"] == "success" and calls == [3, 3, 3]


async def test_bash_sensor_exit_codes() -> None:
    with DAG("bash_sensor", schedule=None) as dag:
        BashSensor(task_id="ok", bash_command="test 1 -eq 1", poke_interval=0)
        BashSensor(task_id="bad", bash_command="exit 3", retry_exit_code=1, poke_interval=0,
                   retries=2)  # fmt: skip
        BashSensor(task_id="waits", bash_command="exit 1", poke_interval=0, timeout=0.2,
                   soft_fail=True)  # fmt: skip
    result = await run_dag(dag)
    assert result.states == {"ok": "success", "bad": "failed", "waits": "skipped"}
    assert result.tis["bad"].try_number == 1
    assert "exit code 3" in (result.tis["bad"].error or "")


async def test_day_of_week_and_time_sensors() -> None:
    with DAG("day_time", schedule=None, timezone="Asia/Tokyo") as dag:
        DayOfWeekSensor(task_id="weekend", week_day="saturday", use_task_logical_date=True,
                        timeout=0, soft_fail=True)  # fmt: skip
        DayOfWeekSensor(task_id="monday", week_day="monday", use_task_logical_date=True,
                        timeout=0, soft_fail=True)  # fmt: skip
        TimeSensor(task_id="after_midnight", target_time=time(0, 0), timeout=0, soft_fail=True)
    result = await run_dag(dag, logical_date=SATURDAY)
    assert result.states["weekend"] == "success"
    assert result.states["monday"] == "skipped"
    assert result.states["after_midnight"] == "success"


def test_timezone_helpers_and_days_ago() -> None:
    start = days_ago(2)
    assert start.tzinfo is UTC and (start.hour, start.minute) == (0, 0)
    assert (datetime.now(UTC) - start) >= timedelta(days=2)
    berlin = make_aware(datetime(2024, 7, 1, 12), "Europe/Berlin")
    assert berlin.utcoffset() == timedelta(hours=2)
    assert make_naive(berlin) == datetime(2024, 7, 1, 10)
    assert parse("2024-01-01T00:00:00Z") == utc(2024, 1, 1)
    with DAG("helpers", schedule="@daily", start_date=berlin) as dag:
        pass
    assert dag.start_date == utc(2024, 7, 1, 10)
