"""Helpers shared by the engine, model, operator and store tests: run a DAG, read its outcome."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio

from asyncflow import (
    DAG,
    DagRun,
    DagRunStateChanged,
    Engine,
    EventsMissed,
    TaskInstance,
    TaskStateChanged,
)
from asyncflow.engine.events import Subscription


@dataclass(frozen=True)
class Outcome:
    """A finished run, its task instances by task_id, and each task's `return_value` XCom."""

    run: DagRun
    tis: dict[str, TaskInstance]
    xcoms: dict[str, Any]

    @property
    def states(self) -> dict[str, str]:
        return {task_id: ti.state.value for task_id, ti in self.tis.items()}


async def finish(
    engine: Engine,
    dag_id: str,
    *,
    conf: dict[str, Any] | None = None,
    logical_date: datetime | None = None,
    run_id: str | None = None,
    timeout: float = 10.0,
) -> Outcome:
    """Trigger a run, wait (bounded) until it has finished, and read back what it left."""
    run = await engine.trigger_dag(dag_id, conf=conf, logical_date=logical_date, run_id=run_id)
    return await outcome(engine, dag_id, run.run_id, timeout=timeout)


async def outcome(engine: Engine, dag_id: str, run_id: str, *, timeout: float = 10.0) -> Outcome:
    run = await engine.wait_for_run(dag_id, run_id, timeout=timeout)
    tis = {ti.task_id: ti for ti in await engine.get_task_instances(dag_id, run_id)}
    xcoms = {task_id: await engine.get_xcom(dag_id, run_id, task_id) for task_id in tis}
    return Outcome(run, tis, xcoms)


async def run_dag(
    dag: DAG,
    *,
    conf: dict[str, Any] | None = None,
    logical_date: datetime | None = None,
    timeout: float = 10.0,
    **engine_options: Any,
) -> Outcome:
    """Run `dag` once on a fresh in-memory engine."""
    engine_options.setdefault("database", ":memory:")
    async with Engine(dags=[dag], **engine_options) as engine:
        return await finish(
            engine, dag.dag_id, conf=conf, logical_date=logical_date, timeout=timeout
        )


async def wait_for_event(
    events: Subscription | AsyncIterator[Any],
    match: Callable[[Any], bool],
    *,
    timeout: float = 10.0,
) -> TaskStateChanged | DagRunStateChanged:
    """Read events until one matches (bounded by `timeout`)."""
    with anyio.fail_after(timeout):
        async for event in events:
            if not isinstance(event, EventsMissed) and match(event):
                return event
    raise AssertionError("the subscription ended before the event arrived")


def task_reached(task_id: str, state: str) -> Callable[[Any], bool]:
    return lambda e: (
        isinstance(e, TaskStateChanged) and e.task_id == task_id and e.new_state == state
    )


def run_reached(run_id: str, states: tuple[str, ...]) -> Callable[[Any], bool]:
    return lambda e: (
        isinstance(e, DagRunStateChanged) and e.run_id == run_id and e.new_state in states
    )
