"""What a running task may ask of the engine that runs it: trigger a run of another DAG, wait
for a run, read other DAGs' runs and task states.

Operators that reach across DAGs (`TriggerDagRunOperator`, `ExternalTaskSensor`) use it. The
engine sets `current_engine` for the tasks it runs (they inherit it, a sync task's thread too);
outside an engine `task_engine()` raises, naming the operator. The handle is narrow on purpose:
a task cannot change scheduling state other than by the same commands the CLI uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import anyio

from asyncflow.exceptions import AsyncflowError
from asyncflow.records import DagRun

__all__ = ["TaskEngine", "clock_now", "clock_sleep", "current_engine", "task_engine"]


class TaskEngine(Protocol):
    """The engine as a task sees it. Every method is a coroutine: call it from the loop."""

    def home(self) -> Path | None:
        """The folder of the engine's database file (None for an in-memory database)."""
        ...

    def now(self) -> datetime:
        """Now on the engine's clock (a FakeClock's time in tests)."""
        ...

    async def sleep_until(self, when: datetime) -> None:
        """Return once the engine's clock has reached `when`."""
        ...

    def task_ids(self, dag_id: str) -> list[str] | None:
        """The task_ids of a loaded DAG, or None when no DAG of that id is loaded."""
        ...

    async def trigger_dag(
        self,
        dag_id: str,
        *,
        conf: Mapping[str, Any] | None,
        logical_date: datetime | None,
        run_id: str | None,
    ) -> DagRun:
        """A new manual run (DagRunAlreadyExists when its run_id or logical_date is taken)."""
        ...

    async def reset_run(self, dag_id: str, run_id: str) -> DagRun:
        """Clear every task instance of an existing run so that it runs again."""
        ...

    async def get_run(self, dag_id: str, run_id: str) -> DagRun | None: ...

    async def find_run(self, dag_id: str, logical_date: datetime) -> DagRun | None: ...

    async def wait_for_run(self, dag_id: str, run_id: str) -> DagRun:
        """The run once it has finished."""
        ...

    async def task_states(self, dag_id: str, run_id: str) -> dict[str, list[str]]:
        """task_id -> the states of its task instances (one per map index)."""
        ...


#: the engine whose task is running (set by the engine for its tasks)
current_engine: ContextVar[TaskEngine | None] = ContextVar("asyncflow_task_engine", default=None)


def task_engine(what: str) -> TaskEngine:
    """The running engine, or an error saying that `what` runs only inside one."""
    engine = current_engine.get()
    if engine is None:
        raise AsyncflowError(
            f"{what} needs the engine that runs it (it reads or starts other DAGs' runs): run "
            "the task through an Engine, `asyncflow dags test` or DAG.test()"
        )
    return engine


def clock_now() -> datetime:
    """Now on the clock of the engine running this task (the wall clock outside an engine):
    what a sensor compares with while it keeps its slot between pokes."""
    engine = current_engine.get()
    return engine.now() if engine is not None else datetime.now(UTC)


async def clock_sleep(seconds: float) -> None:
    """Wait `seconds` on the clock of the engine running this task (real seconds outside an
    engine), so that a test's FakeClock moves a waiting sensor as it moves the scheduler."""
    engine = current_engine.get()
    if engine is None:
        await anyio.sleep(seconds)
    else:
        await engine.sleep_until(engine.now() + timedelta(seconds=seconds))
