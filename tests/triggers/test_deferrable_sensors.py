"""Built-in sensors with `deferrable=True` hold no slot while they wait; waits on files, moments
and other DAGs' tasks wake them (a state change on the event bus, not a poll)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from asyncflow import DAG, BaseOperator, Engine, FakeClock, task
from asyncflow.sensors import DateTimeSensor, FileSensor, TimeDeltaSensor, TimeSensor
from asyncflow.triggers import DagStateTrigger, FileDeleteTrigger, TaskStateTrigger
from tests.engine.support import outcome, task_reached, wait_for_event

pytestmark = pytest.mark.anyio
START = datetime(2024, 1, 1, tzinfo=UTC)


async def _deferred(engine: Engine, dag_id: str, task_id: str = "wait") -> str:
    async with engine.subscribe() as events:
        run = await engine.trigger_dag(dag_id)
        await wait_for_event(events, task_reached(task_id, "deferred"))
    return run.run_id


async def test_a_deferrable_file_sensor_waits_without_a_slot_and_wakes_on_the_file(
    tmp_path: Path,
) -> None:
    clock = FakeClock(START)
    target = tmp_path / "landing" / "data.csv"
    with DAG("f", schedule=None) as dag:
        FileSensor(task_id="wait", filepath=str(tmp_path / "landing" / "*.csv"),
                   poke_interval=30, deferrable=True)  # fmt: skip
    async with Engine(dags=[dag], database=":memory:", clock=clock, parallelism=1) as engine:
        run_id = await _deferred(engine, "f")
        assert engine.statistics()["running"] == 0
        target.parent.mkdir()
        target.write_text("a,b\n")  # the kernel tells the watcher: the clock stands still
        done = await outcome(engine, "f", run_id)
    assert done.states == {"wait": "success"}
    assert done.tis["wait"].try_number == 1


async def test_a_deferrable_sensor_times_out_as_a_sensor_without_retries() -> None:
    clock = FakeClock(START)
    with DAG("to", schedule=None) as dag:
        TimeDeltaSensor(task_id="wait", delta=timedelta(hours=5), timeout=60,
                        deferrable=True, retries=3)  # fmt: skip
    async with Engine(dags=[dag], database=":memory:", clock=clock) as engine:
        run_id = await _deferred(engine, "to")
        clock.advance(60)
        done = await outcome(engine, "to", run_id)
    assert (done.states["wait"], done.tis["wait"].try_number) == ("failed", 1)
    assert "timed out" in (done.tis["wait"].error or "")


async def test_deferred_moment_sensors_wait_past_their_timeout_as_in_airflow() -> None:
    clock = FakeClock(START)
    with DAG("moment", schedule=None) as dag:
        DateTimeSensor(task_id="at", target_time=START + timedelta(hours=1), timeout=1,
                       soft_fail=True, deferrable=True)  # fmt: skip
        TimeSensor(task_id="clock", target_time=(START + timedelta(hours=1)).time(), timeout=1,
                   soft_fail=True, deferrable=True)  # fmt: skip
    async with Engine(dags=[dag], database=":memory:", clock=clock) as engine:
        run = await engine.trigger_dag("moment", logical_date=START)
        with anyio.fail_after(10):
            while engine.statistics()["triggers_waiting"] < 2:
                await engine.ping()
        clock.advance(timedelta(minutes=30))  # far past `timeout`: still waiting
        await engine.ping()
        states = {t.task_id: t.state for t in await engine.get_task_instances("moment", run.run_id)}
        assert set(states.values()) == {"deferred"}
        clock.advance(timedelta(minutes=31))
        done = await outcome(engine, "moment", run.run_id)
    assert done.states == {"at": "success", "clock": "success"}


async def test_deferrable_time_sensors_wake_at_their_moment() -> None:
    clock = FakeClock(START)
    with DAG("ts", schedule=None) as dag:
        DateTimeSensor(task_id="wait", target_time="2024-01-01T00:10:00+00:00", deferrable=True)
        TimeDeltaSensor(task_id="delta", delta=timedelta(minutes=20), deferrable=True)
    async with Engine(dags=[dag], database=":memory:", clock=clock) as engine:
        run = await engine.trigger_dag("ts", logical_date=START)
        with anyio.fail_after(10):
            while engine.statistics()["triggers_waiting"] < 2:
                await engine.ping()
        clock.advance(timedelta(minutes=10))
        async with engine.subscribe() as events:
            await wait_for_event(events, task_reached("wait", "success"))
        states = {t.task_id: t.state for t in await engine.get_task_instances("ts", run.run_id)}
        assert states["delta"] == "deferred"
        clock.advance(timedelta(minutes=10))
        done = await outcome(engine, "ts", run.run_id)
    assert done.states == {"wait": "success", "delta": "success"}


async def test_a_deferrable_python_sensor_holds_no_slot_between_pokes() -> None:
    clock = FakeClock(START)
    pokes: list[datetime] = []

    @task.sensor(poke_interval=60, deferrable=True)
    def ready() -> bool:
        pokes.append(clock.now())
        return len(pokes) >= 3

    with DAG("p", schedule=None) as dag:
        ready()
    async with Engine(dags=[dag], database=":memory:", clock=clock) as engine:
        async with engine.subscribe() as events:
            run = await engine.trigger_dag("p")
            for _ in range(2):
                await wait_for_event(events, task_reached("ready", "up_for_reschedule"))
                assert engine.statistics()["running"] == 0
                clock.advance(60)
        done = await outcome(engine, "p", run.run_id)
    assert done.states == {"ready": "success"}
    assert len(pokes) == 3


class WaitOnOther(BaseOperator):
    def __init__(self, *, trigger: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.trigger = trigger

    def execute(self, context: Any) -> None:
        if self.trigger == "task":
            trigger: Any = TaskStateTrigger("upstream_dag", "produce", ["success"],
                                            run_ids=["r1"], failed_states=["failed"])  # fmt: skip
        else:
            trigger = DagStateTrigger("upstream_dag", ["success"], run_ids=["r1"])
        self.defer(trigger=trigger, method_name="done")

    def done(self, context: Any, event: Any = None) -> Any:
        return event


@pytest.mark.parametrize("kind", ["task", "dag"])
async def test_a_wait_on_another_dag_is_woken_by_its_state_change(kind: str) -> None:
    gate = anyio.Event()

    @task
    async def produce() -> str:
        await gate.wait()
        return "made"

    with DAG("upstream_dag", schedule=None) as upstream:
        produce()
    with DAG("downstream_dag", schedule=None) as downstream:
        WaitOnOther(task_id="wait", trigger=kind)
    async with Engine(dags=[upstream, downstream], database=":memory:") as engine:
        await engine.trigger_dag("upstream_dag", run_id="r1")
        run_id = await _deferred(engine, "downstream_dag")
        with anyio.fail_after(10):
            while engine.statistics()["state_waits"] < 1:
                await engine.ping()
        gate.set()
        done = await outcome(engine, "downstream_dag", run_id)
    assert done.states == {"wait": "success"}
    if kind == "task":
        assert done.xcoms["wait"] == {"status": "success", "states": {"r1": "success"}}
    else:
        assert done.xcoms["wait"] == {"dag_id": "upstream_dag", "run_states": {"r1": "success"}}


class TakeFile(BaseOperator):
    def __init__(self, *, path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = path

    def execute(self, context: Any) -> None:
        self.defer(trigger=FileDeleteTrigger(self.path, poke_interval=1), method_name="done")

    def done(self, context: Any, event: Any = None) -> Any:
        return event


async def test_file_delete_trigger_takes_the_file(tmp_path: Path) -> None:
    clock = FakeClock(START)
    flag = tmp_path / "go.flag"
    with DAG("del", schedule=None) as dag:
        TakeFile(task_id="wait", path=str(flag))
    async with Engine(dags=[dag], database=":memory:", clock=clock) as engine:
        run_id = await _deferred(engine, "del")
        flag.write_text("")
        done = await outcome(engine, "del", run_id)
    assert done.xcoms["wait"] == str(flag)
    assert not flag.exists()
