"""A commit that fails (a full disk) loses nothing and acts on nothing: the burst is kept,
retried, and the run completes with each task run exactly once."""

from __future__ import annotations

import anyio
import pytest

from asyncflow import DAG, Engine, task
from asyncflow.engine.events import TaskStateChanged
from asyncflow.exceptions import StoreError
from asyncflow.store.base import WriteBatch, WriteResult
from asyncflow.store.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio


class DiskFullStore(SQLiteStore):
    """Fails the next `failures` commits as a full disk would."""

    def __init__(self) -> None:
        super().__init__(":memory:")
        self.failures = 0
        self.refused = 0

    async def write(self, batch: WriteBatch) -> WriteResult:
        if self.failures:
            self.failures -= 1
            self.refused += 1
            raise StoreError("database :memory:: the disk is full (database or disk is full)")
        return await super().write(batch)


async def test_failed_commits_are_retried_and_nothing_runs_before_its_state_is_stored() -> None:
    ran: list[str] = []
    store = DiskFullStore()
    with DAG("disk", schedule=None) as dag:

        @task
        def step(name: str) -> str:
            ran.append(name)
            return name

        step.override(task_id="a")("a") >> step.override(task_id="b")("b")

    async with Engine(dags=[dag], store=store) as engine:
        events = engine.subscribe()
        store.failures = 3  # the trigger's burst fails three times, then lands
        with anyio.fail_after(10):
            run = await engine.trigger_dag("disk")  # returns once the burst finally committed
            run = await engine.wait_for_run("disk", run.run_id)
        tis = {t.task_id: t for t in await engine.get_task_instances("disk", run.run_id)}
        seen: list[TaskStateChanged] = []
        with anyio.move_on_after(0.2):
            async for event in events:
                if isinstance(event, TaskStateChanged):
                    seen.append(event)
    assert store.refused == 3
    assert run.state == "success"
    assert ran == ["a", "b"]  # each task exactly once
    assert {t: ti.try_number for t, ti in tis.items()} == {"a": 1, "b": 1}
    # every published transition belongs to a committed, consistent history
    assert [(e.task_id, e.new_state) for e in seen if e.task_id == "a"][-1] == ("a", "success")
