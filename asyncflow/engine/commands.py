"""Store-level commands: the state changes made outside the scheduler's loop, written to the
store for an engine to adopt. The CLI changes state only through these (never with its own rows
or SQL), and the engine calls the same checks where it does the same thing.

* `queue_manual_run`: a manual run, validated (run_id, params), inserted `queued` without task
  instances; a running engine adopts it within a second (`Engine.sync_external`), a stopped one
  at its next start. `check_new_run` is its uniqueness check, shared with `Engine.trigger_dag`.
* `set_paused`: a DAG's paused flag; a running engine reads it the same way.
* `ask_engine`: queue a request (e.g. clear) for the running engine and wait for its answer.
* `reset_task_instances`: clear task instances of a run no engine is running (a finished run, or
  any run while no daemon runs): back to `none` with their retries renewed, their XComs dropped,
  and a finished run queued again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

import anyio

from asyncflow.engine.dagruns import manual_run
from asyncflow.exceptions import DagRunAlreadyExists, DagRunNotFound
from asyncflow.models.dag import DAG
from asyncflow.records import DagRun, TaskInstance
from asyncflow.states import FAILED_STATES, RUN_FINISHED, DagRunState, TaskState
from asyncflow.store.base import (
    DagRow,
    NewRun,
    RunUpdate,
    Store,
    TIRow,
    WriteBatch,
    XComKey,
    run_row,
)

__all__ = [
    "CLEAR",
    "Reset",
    "ask_engine",
    "check_new_run",
    "clear_request",
    "queue_manual_run",
    "reset_task_instances",
    "set_paused",
]

#: the kind of request `Engine.sync_external` carries out with `clear_task_instances`
CLEAR = "clear"


async def check_new_run(store: Store, record: DagRun) -> None:
    """`DagRunAlreadyExists` when the store has a run of the DAG with this run_id or
    logical_date."""
    dag_id = record.dag_id
    if await store.get_dag_run(dag_id, record.run_id) is not None:
        raise DagRunAlreadyExists(dag_id, f"run_id {record.run_id!r}")
    if await store.find_dag_run(dag_id, record.logical_date) is not None:
        raise DagRunAlreadyExists(dag_id, f"logical_date {record.logical_date.isoformat()}")


async def queue_manual_run(
    store: Store,
    dag: DAG,
    *,
    now: datetime,
    conf: Mapping[str, Any] | None = None,
    logical_date: datetime | None = None,
    run_id: str | None = None,
) -> DagRun:
    """Queue a manual run of `dag` for an engine to adopt; returns its record."""
    record = manual_run(dag, now=now, conf=conf, logical_date=logical_date, run_id=run_id)
    await check_new_run(store, record)
    result = await store.write(WriteBatch(new_runs=[NewRun(run_row(record), [])]))
    if result.conflicts:  # inserted by someone else since the check
        raise DagRunAlreadyExists(dag.dag_id, f"run_id {record.run_id!r} or its logical_date")
    return record


async def set_paused(store: Store, dag_id: str, is_paused: bool) -> None:
    await store.write(WriteBatch(dags=[DagRow(dag_id, is_paused, None, None)]))


def clear_request(
    dag_id: str, run_id: str, task_ids: Collection[str], *, only_failed: bool
) -> tuple[str, dict[str, Any]]:
    """A clear request: Engine.clear_task_instances' arguments."""
    payload = {"dag_id": dag_id, "run_id": run_id, "task_ids": sorted(task_ids),
               "only_failed": only_failed}  # fmt: skip
    return CLEAR, payload


async def ask_engine(
    store: Store,
    request: tuple[str, dict[str, Any]],
    *,
    timeout: float,  # noqa: ASYNC109 - a request left unanswered stays queued
) -> dict[str, Any] | None:
    """Queue `request` for the running engine (it reads requests every second) and wait up to
    `timeout` seconds for its answer; None without one (the request stays queued)."""
    kind, payload = request
    request_id = await store.add_request(kind, payload)
    with anyio.move_on_after(timeout):
        # another process answers through the database: polling is the only signal
        while (result := await store.request_result(request_id)) is None:  # noqa: ASYNC110
            await anyio.sleep(0.1)
        return result
    return None


@dataclasses.dataclass(frozen=True, slots=True)
class Reset:
    #: the task instances as they were before the reset
    cleared: list[TaskInstance]
    #: the run was finished and is queued again
    requeued: bool


async def reset_task_instances(
    store: Store, dag: DAG, run_id: str, task_ids: Collection[str], *, only_failed: bool
) -> Reset:
    """Clear task instances of a run that no engine is running (see the module docstring)."""
    run = await store.get_dag_run(dag.dag_id, run_id)
    if run is None:
        raise DagRunNotFound(dag.dag_id, run_id)
    chosen = [
        ti for ti in await store.get_task_instances(dag.dag_id, run_id)
        if ti.task_id in task_ids and (not only_failed or ti.state in FAILED_STATES)
        and ti.state is not TaskState.NONE
    ]  # fmt: skip
    if not chosen:
        return Reset([], False)
    batch = WriteBatch()
    for ti in chosen:
        retries = dag.get_task(ti.task_id).retries
        batch.ti_updates.append(TIRow(
            TaskState.NONE.value, ti.try_number, ti.try_number + retries, None, None, None,
            None, None, 0, ti.dag_id, ti.run_id, ti.task_id, ti.map_index,
        ))  # fmt: skip
        batch.xcom_clears.append(XComKey(ti.dag_id, ti.run_id, ti.task_id))
    requeue = run.state in RUN_FINISHED
    if requeue:
        row = run_row(dataclasses.replace(run, state=DagRunState.QUEUED, end_date=None))
        batch.run_updates.append(RunUpdate(*row[:6]))
    await store.write(batch)
    return Reset(chosen, requeue)
