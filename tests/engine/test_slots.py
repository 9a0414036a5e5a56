"""Concurrency that fits what runs: async tasks are bounded only by `parallelism` (high by
default), sync tasks by the thread slots, subprocess tasks by the process slots."""

from __future__ import annotations

import threading
from pathlib import Path

import anyio
import pytest

from asyncflow import DAG, Engine, task
from asyncflow.engine.slots import (
    DEFAULT_PARALLELISM,
    default_process_slots,
    default_thread_slots,
)
from asyncflow.operators import BashOperator

pytestmark = pytest.mark.anyio


async def running_now(engine: Engine, dag_id: str, run_id: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for ti in await engine.get_task_instances(dag_id, run_id):
        counts[ti.state.value] = counts.get(ti.state.value, 0) + 1
    return counts


async def test_the_defaults_let_thousands_of_async_tasks_wait_at_once() -> None:
    n = 2_000
    inside = 0
    everyone = anyio.Event()

    with DAG("io", schedule=None) as dag:  # no max_active_tasks: the engine's bound applies

        @task
        async def wait() -> None:
            nonlocal inside
            inside += 1
            if inside == n:
                everyone.set()
            await everyone.wait()

        for i in range(n):
            wait.override(task_id=f"w{i}")()

    async with Engine(dags=[dag], database=":memory:") as engine:
        assert engine.slots.parallelism == DEFAULT_PARALLELISM >= n
        run = await engine.trigger_dag("io")
        done = await engine.wait_for_run("io", run.run_id, timeout=30)
    assert done.state == "success"  # all n were inside their wait at the same time


async def test_subprocess_tasks_never_exceed_the_process_slots(tmp_path: Path) -> None:
    release = tmp_path / "release"
    with DAG("shell", schedule=None) as dag:
        for i in range(6):
            BashOperator(
                task_id=f"b{i}",
                bash_command=f"while [ ! -f {release} ]; do sleep 0.02; done",
            )

        @task
        async def beside() -> str:  # async work is not held back by the process bound
            return "ran"

        beside()

    async with Engine(dags=[dag], database=":memory:", process_slots=2) as engine:
        run = await engine.trigger_dag("shell")
        with anyio.fail_after(10):
            while (await running_now(engine, "shell", run.run_id)).get("success", 0) < 1:
                await anyio.sleep(0.02)
        counts = await running_now(engine, "shell", run.run_id)
        assert counts.get("running", 0) == 2, counts
        assert engine.statistics()["running_process"] == 2
        release.touch()
        done = await engine.wait_for_run("shell", run.run_id, timeout=20)
    assert done.state == "success"


async def test_sync_tasks_never_exceed_the_thread_slots() -> None:
    gate = threading.Event()
    entered = threading.Semaphore(0)

    with DAG("sync", schedule=None) as dag:

        @task
        def block() -> None:
            entered.release()
            gate.wait(10)

        for i in range(5):
            block.override(task_id=f"s{i}")()

    async with Engine(dags=[dag], database=":memory:", thread_slots=2) as engine:
        run = await engine.trigger_dag("sync")
        for _ in range(2):
            await anyio.to_thread.run_sync(entered.acquire, True, 10)
        counts = await running_now(engine, "sync", run.run_id)
        assert counts.get("running", 0) == 2, counts
        assert engine.statistics()["running_thread"] == 2
        gate.set()
        done = await engine.wait_for_run("sync", run.run_id, timeout=20)
    assert done.state == "success"


def test_the_machine_derived_defaults() -> None:
    engine = Engine(database=":memory:")
    assert engine.slots.thread == default_thread_slots() <= 32
    assert engine.slots.process == default_process_slots() >= 4
    with pytest.raises(ValueError, match="process_slots"):
        Engine(database=":memory:", process_slots=0)


def test_where_each_kind_of_task_runs() -> None:
    async def coro() -> None:
        return None

    def plain() -> None:
        return None

    with DAG("kinds", schedule=None):
        runs_async = task(coro)()
        runs_sync = task(plain)()
        shell = BashOperator(task_id="sh", bash_command="true")
    assert runs_async.operator.runs_in == "loop"
    assert runs_sync.operator.runs_in == "thread"
    assert shell.runs_in == "process"
