"""`execution_timeout`: a coroutine is cancelled; a bash task's whole process group is ended
(SIGTERM, then SIGKILL after the grace period)."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

from asyncflow import DAG, Engine, FakeClock
from asyncflow.operators import BashOperator, PythonOperator
from tests.engine.support import finish, run_dag, task_reached, wait_for_event

pytestmark = pytest.mark.anyio


def _state_and_group(pid: int) -> tuple[str, int] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    return fields[0], int(fields[2])


def live_members(pgid: int) -> list[int]:
    """Processes of the group that still run. A zombie is dead: an orphan waits there until
    PID 1 reaps it, which in some containers takes a while."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return []
    live = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            found = _state_and_group(int(entry.name))
            if found is not None and found[1] == pgid and found[0] != "Z":
                live.append(int(entry.name))
    return live


async def assert_group_gone(pgid: int, *pids: int) -> None:
    """No process of the group is alive (bounded wait for the signals to land)."""
    with anyio.fail_after(2):
        while live_members(pgid) or any(
            (found := _state_and_group(pid)) is not None and found[0] != "Z" for pid in pids
        ):
            await anyio.sleep(0.01)


async def test_an_async_task_past_its_timeout_is_cancelled_and_fails() -> None:
    cancelled = []

    async def hang() -> None:
        try:
            await anyio.sleep(30)
        except anyio.get_cancelled_exc_class():
            cancelled.append(True)
            raise

    with DAG("async_timeout", schedule=None) as dag:
        PythonOperator(task_id="hang", python_callable=hang, execution_timeout=0.2)
    with anyio.fail_after(5):
        result = await run_dag(dag)
    ti = result.tis["hang"]
    assert ti.state == "failed"
    assert "execution_timeout" in (ti.error or "")
    assert cancelled == [True]


async def test_a_timed_out_attempt_is_retried() -> None:
    async def hang() -> None:
        await anyio.sleep(30)

    with DAG("timeout_retry", schedule=None) as dag:
        PythonOperator(
            task_id="hang", python_callable=hang, execution_timeout=0.1, retries=1, retry_delay=60
        )
    clock = FakeClock()
    async with Engine(dags=[dag], database=":memory:", clock=clock) as engine:
        async with engine.subscribe() as events:
            run = await engine.trigger_dag("timeout_retry")
            event = await wait_for_event(events, task_reached("hang", "up_for_retry"))
            assert event.try_number == 1
            tis = await engine.get_task_instances("timeout_retry", run.run_id)
            assert tis[0].state == "up_for_retry"
            assert "execution_timeout" in (tis[0].error or "")
            clock.advance(60)
        final = await engine.wait_for_run("timeout_retry", run.run_id, timeout=5)
        tis = await engine.get_task_instances("timeout_retry", run.run_id)
    assert final.state == "failed"
    assert (tis[0].state, tis[0].try_number) == ("failed", 2)


async def test_a_bash_task_past_its_timeout_loses_its_whole_process_group(
    tmp_path: Path,
) -> None:
    command = f"echo $$ > {tmp_path}/pgid; sleep 30 & echo $! > {tmp_path}/child; wait"
    with DAG("bash_timeout", schedule=None) as dag:
        BashOperator(task_id="sleepy", bash_command=command, execution_timeout=0.5)
    with anyio.fail_after(5):
        result = await run_dag(dag)
    ti = result.tis["sleepy"]
    assert ti.state == "failed"
    assert "execution_timeout" in (ti.error or "")
    await assert_group_gone(
        int((tmp_path / "pgid").read_text()), int((tmp_path / "child").read_text())
    )


async def test_a_process_group_ignoring_sigterm_is_killed_after_the_grace_period(
    tmp_path: Path,
) -> None:
    # SIG_IGN is inherited: neither bash nor its sleep react to SIGTERM
    command = (
        f"trap '' TERM; echo $$ > {tmp_path}/pgid; sleep 30 & echo $! > {tmp_path}/child; wait"
    )
    with DAG("bash_stubborn", schedule=None) as dag:
        BashOperator(
            task_id="stubborn",
            bash_command=command,
            execution_timeout=0.3,
            termination_grace=0.3,
        )
    with anyio.fail_after(5):
        result = await run_dag(dag)
    assert result.tis["stubborn"].state == "failed"
    await assert_group_gone(
        int((tmp_path / "pgid").read_text()), int((tmp_path / "child").read_text())
    )


async def test_a_timeout_does_not_stop_the_other_tasks() -> None:
    async def hang() -> None:
        await anyio.sleep(30)

    with DAG("timeout_isolated", schedule=None) as dag:
        slow = PythonOperator(task_id="slow", python_callable=hang, execution_timeout=0.1)
        PythonOperator(task_id="sibling", python_callable=lambda: "fine")
        slow >> PythonOperator(
            task_id="after", python_callable=lambda: "cleanup", trigger_rule="all_done"
        )
    async with Engine(dags=[dag], database=":memory:") as engine:
        result = await finish(engine, "timeout_isolated")
    assert result.states == {"slow": "failed", "sibling": "success", "after": "success"}


async def test_leaving_the_engine_ends_a_running_bash_tasks_process_group(tmp_path: Path) -> None:
    command = (
        f"echo $$ > {tmp_path}/pgid; sleep 30 & echo $! > {tmp_path}/tmp; "
        f"mv {tmp_path}/tmp {tmp_path}/child; wait"
    )
    with DAG("bash_shutdown", schedule=None) as dag:
        BashOperator(task_id="sleepy", bash_command=command, termination_grace=1.0)
    with anyio.fail_after(10):
        async with (
            Engine(dags=[dag], database=":memory:") as engine,
            engine.subscribe() as events,
        ):
            await engine.trigger_dag("bash_shutdown")
            await wait_for_event(events, task_reached("sleepy", "running"))
            while not (tmp_path / "child").exists():  # bash has not started its sleep yet
                await anyio.sleep(0.01)
        await assert_group_gone(
            int((tmp_path / "pgid").read_text()), int((tmp_path / "child").read_text())
        )
