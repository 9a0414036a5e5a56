"""Sensors: poke until true, time out, soft-fail, and reschedule mode (slot freed between pokes,
not a try, moved by the engine's clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from asyncflow import DAG, Engine, FakeClock, TaskState, task
from asyncflow.sensors import (
    DateTimeSensor,
    FileSensor,
    PokeReturnValue,
    PythonSensor,
    TimeDeltaSensor,
)

pytestmark = pytest.mark.anyio


async def _states(engine: Engine, dag_id: str, run_id: str) -> dict[str, TaskState]:
    return {t.task_id: t.state for t in await engine.get_task_instances(dag_id, run_id)}


async def _wait_state(engine: Engine, dag_id: str, run_id: str, task_id: str, state: str) -> None:
    with anyio.fail_after(10):
        while (await _states(engine, dag_id, run_id)).get(task_id) != state:
            await anyio.sleep(0.005)


async def test_poke_mode_succeeds_once_the_condition_holds_and_pushes_its_value() -> None:
    pokes: list[int] = []

    def ready() -> PokeReturnValue:
        pokes.append(1)
        return PokeReturnValue(len(pokes) >= 3, xcom_value={"pokes": len(pokes)})

    with DAG("poke", schedule=None) as dag:
        PythonSensor(task_id="wait", python_callable=ready, poke_interval=0.01, timeout=10)
    async with Engine(dags=[dag], database=":memory:") as engine:
        run = await engine.trigger_dag("poke")
        run = await engine.wait_for_run("poke", run.run_id, timeout=10)
        assert run.state == "success"
        assert await engine.get_xcom("poke", run.run_id, "wait") == {"pokes": 3}


async def test_a_sensor_timeout_fails_without_using_retries() -> None:
    with DAG("timeout", schedule=None) as dag:
        PythonSensor(
            task_id="wait", python_callable=lambda: False, poke_interval=0.01, timeout=0.05,
            retries=3,
        )  # fmt: skip
    async with Engine(dags=[dag], database=":memory:") as engine:
        run = await engine.trigger_dag("timeout")
        run = await engine.wait_for_run("timeout", run.run_id, timeout=10)
        (ti,) = await engine.get_task_instances("timeout", run.run_id)
    assert (run.state, ti.state, ti.try_number) == ("failed", "failed", 1)
    assert "timed out" in (ti.error or "")


async def test_soft_fail_skips_instead_of_failing() -> None:
    with DAG("soft", schedule=None) as dag:
        PythonSensor(
            task_id="wait", python_callable=lambda: False, poke_interval=0.01, timeout=0.03,
            soft_fail=True,
        )  # fmt: skip
    async with Engine(dags=[dag], database=":memory:") as engine:
        run = await engine.trigger_dag("soft")
        run = await engine.wait_for_run("soft", run.run_id, timeout=10)
        assert await _states(engine, "soft", run.run_id) == {"wait": "skipped"}


async def test_reschedule_mode_frees_the_slot_between_pokes_and_uses_no_try() -> None:
    clock = FakeClock(datetime(2024, 1, 1, tzinfo=UTC))
    gate = {"open": False}
    ran: list[str] = []
    with DAG("resched", schedule=None) as dag:
        PythonSensor(
            task_id="wait", python_callable=lambda: gate["open"], mode="reschedule",
            poke_interval=60, timeout=3600, retries=2,
        )  # fmt: skip

        @task
        def other() -> None:
            ran.append("other")

        other()
    async with Engine(dags=[dag], database=":memory:", parallelism=1, clock=clock) as engine:
        run = await engine.trigger_dag("resched")
        await _wait_state(engine, "resched", run.run_id, "wait", "up_for_reschedule")
        # with parallelism 1, the other task runs while the sensor waits
        await _wait_state(engine, "resched", run.run_id, "other", "success")
        clock.advance(timedelta(seconds=61))
        await _wait_state(engine, "resched", run.run_id, "wait", "up_for_reschedule")
        gate["open"] = True
        clock.advance(timedelta(seconds=61))
        run = await engine.wait_for_run("resched", run.run_id, timeout=10)
        (wait,) = [t for t in await engine.get_task_instances("resched", run.run_id)
                   if t.task_id == "wait"]  # fmt: skip
    assert run.state == "success" and ran == ["other"]
    assert wait.try_number == 1  # three pokes, one try


async def test_reschedule_mode_times_out_on_the_engine_clock() -> None:
    clock = FakeClock(datetime(2024, 1, 1, tzinfo=UTC))
    with DAG("resched_timeout", schedule=None) as dag:
        PythonSensor(
            task_id="wait", python_callable=lambda: False, mode="reschedule",
            poke_interval=60, timeout=100,
        )  # fmt: skip
    async with Engine(dags=[dag], database=":memory:", clock=clock) as engine:
        run = await engine.trigger_dag("resched_timeout")
        for _ in range(2):
            await _wait_state(engine, "resched_timeout", run.run_id, "wait", "up_for_reschedule")
            clock.advance(timedelta(seconds=61))
        run = await engine.wait_for_run("resched_timeout", run.run_id, timeout=10)
    assert run.state == "failed"


async def test_time_sensors_follow_the_engine_clock() -> None:
    clock = FakeClock(datetime(2024, 1, 1, tzinfo=UTC))
    target = datetime(2024, 1, 1, 0, 5, tzinfo=UTC)
    with DAG("times", schedule=None) as dag:
        DateTimeSensor(
            task_id="at", target_time=target.isoformat(), mode="reschedule", poke_interval=60
        )
        TimeDeltaSensor(
            task_id="after", delta=timedelta(minutes=3), mode="reschedule", poke_interval=60
        )
    async with Engine(dags=[dag], database=":memory:", clock=clock) as engine:
        run = await engine.trigger_dag("times")  # data interval ends at 00:00
        seen: list[tuple[datetime, str, str]] = []
        with anyio.fail_after(10):
            while True:
                states = await _states(engine, "times", run.run_id)
                if states["at"] == "success":
                    break
                if states["at"] != "up_for_reschedule" or states["after"] not in (
                    "up_for_reschedule", "success",
                ):  # fmt: skip
                    await anyio.sleep(0.005)
                    continue
                seen.append((clock.now(), states["at"], states["after"]))
                clock.advance(timedelta(seconds=61))
        run = await engine.wait_for_run("times", run.run_id, timeout=10)
    assert run.state == "success"
    # "after" (data interval end + 3 min) was done while "at" still waited for 00:05
    assert any(after == "success" and at == "up_for_reschedule" for _, at, after in seen)
    assert clock.now() >= target


async def test_poke_mode_waits_and_times_out_on_the_engine_clock() -> None:
    clock = FakeClock(datetime(2024, 1, 1, tzinfo=UTC))
    with DAG("poke_clock", schedule=None) as dag:
        TimeDeltaSensor(task_id="after", delta=timedelta(minutes=3), poke_interval=60)
        PythonSensor(task_id="never", python_callable=lambda: False, poke_interval=60,
                     timeout=600, soft_fail=True)  # fmt: skip
    async with Engine(dags=[dag], database=":memory:", clock=clock) as engine:
        run = await engine.trigger_dag("poke_clock", logical_date=clock.now())
        await _wait_state(engine, "poke_clock", run.run_id, "after", "running")
        # both keep their slot and sleep between pokes until the FakeClock moves
        with anyio.fail_after(10):
            while engine.statistics()["running"]:
                clock.advance(timedelta(seconds=30))
                await anyio.sleep(0.005)
        run = await engine.wait_for_run("poke_clock", run.run_id, timeout=10)
        states = await _states(engine, "poke_clock", run.run_id)
    assert states == {"after": "success", "never": "skipped"}
    assert timedelta(minutes=10) <= clock.now() - datetime(2024, 1, 1, tzinfo=UTC)


async def test_file_sensor_waits_for_a_path(tmp_path: Path) -> None:
    target = tmp_path / "incoming" / "data.csv"
    with DAG("files", schedule=None) as dag:
        FileSensor(task_id="wait", filepath=str(tmp_path / "incoming" / "*.csv"),
                   poke_interval=0.01, timeout=10)  # fmt: skip
    async with Engine(dags=[dag], database=":memory:") as engine:
        run = await engine.trigger_dag("files")
        await _wait_state(engine, "files", run.run_id, "wait", "running")
        target.parent.mkdir()
        target.write_text("a,b\n")
        run = await engine.wait_for_run("files", run.run_id, timeout=10)
    assert run.state == "success"
