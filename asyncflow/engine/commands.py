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
* `mark_task_instances`: mark task instances of a run no engine is running, with the same
  consequences as on a running engine (`Engine.set_task_instance_state`).
* `delete_dag`: every row of a DAG with no queued or running run (Airflow's `dags delete`);
  `delete_dag_live` does it under a running engine, which then schedules the DAG afresh.
* `clean_history`: rows older than a date (Airflow's `db clean`), see `Store.purge`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import anyio

from asyncflow.engine.dagruns import manual_run
from asyncflow.engine.operations import relatives
from asyncflow.exceptions import DagHasActiveRuns, DagNotFound, DagRunAlreadyExists, DagRunNotFound
from asyncflow.models.dag import DAG
from asyncflow.records import DagRun, TaskInstance
from asyncflow.states import FAILED_STATES, RUN_FINISHED, DagRunState, TaskState
from asyncflow.store.base import (
    PURGEABLE,
    DagRow,
    NewRun,
    RunUpdate,
    Store,
    TIRow,
    WriteBatch,
    XComKey,
    iso,
    run_row,
)

if TYPE_CHECKING:
    from asyncflow.engine.engine import Engine

__all__ = [
    "CLEAR",
    "Reset",
    "ask_engine",
    "check_new_run",
    "clean_history",
    "clear_request",
    "delete_dag",
    "delete_dag_live",
    "mark_task_instances",
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
    _reset_rows(dag, chosen, batch)
    requeue = _requeue(run, batch)
    await store.write(batch)
    return Reset(chosen, requeue)


def _reset_rows(dag: DAG, tis: Collection[TaskInstance], batch: WriteBatch) -> None:
    for ti in tis:
        retries = dag.get_task(ti.task_id).retries
        batch.ti_updates.append(TIRow(
            TaskState.NONE.value, ti.try_number, ti.try_number + retries, None, None, None,
            None, None, 0, ti.dag_id, ti.run_id, ti.task_id, ti.map_index,
        ))  # fmt: skip
        batch.xcom_clears.append(XComKey(ti.dag_id, ti.run_id, ti.task_id, ti.map_index))


def _requeue(run: DagRun, batch: WriteBatch) -> bool:
    """Queue a finished run again (in `batch`); whether it was finished."""
    if run.state not in RUN_FINISHED:
        return False
    row = run_row(dataclasses.replace(run, state=DagRunState.QUEUED, end_date=None))
    batch.run_updates.append(RunUpdate(*row[:6]))
    return True


#: the states a task instance may be marked with by hand
MARKABLE = (TaskState.SUCCESS, TaskState.FAILED, TaskState.SKIPPED)


async def mark_task_instances(
    store: Store,
    dag: DAG,
    run_id: str,
    task_ids: Collection[str],
    state: TaskState,
    *,
    now: datetime,
) -> list[str]:
    """Mark task instances of a run no engine is running `success`, `failed` or `skipped`, as
    `Engine.set_task_instance_state` does on a running one: unless marked failed, what failed
    below them is cleared (it gets its chance to run), and a finished run is queued again so
    that the next engine settles its state. Returns the task_ids changed."""
    if state not in MARKABLE:
        raise ValueError(f"a task instance can be marked success, failed or skipped, not {state}")
    run = await store.get_dag_run(dag.dag_id, run_id)
    if run is None:
        raise DagRunNotFound(dag.dag_id, run_id)
    tis = {ti.task_id: ti for ti in await store.get_task_instances(dag.dag_id, run_id)
           if ti.map_index == -1}  # fmt: skip
    missing = sorted(set(task_ids) - set(tis))
    if missing:
        raise ValueError(
            f"run {run_id!r} of DAG {dag.dag_id!r} has no task instance of {', '.join(missing)} "
            "yet (it has not started): mark it once a daemon runs it"
        )
    batch = WriteBatch()
    marked = [t for t in sorted(task_ids) if tis[t].state is not state]
    stamp = iso(now)
    for task_id in marked:
        ti = tis[task_id]
        batch.ti_updates.append(TIRow(
            state.value, ti.try_number, ti.max_tries, iso(ti.start_date) or stamp, stamp,
            ti.duration, None, None, 0, ti.dag_id, ti.run_id, ti.task_id, ti.map_index,
        ))  # fmt: skip
    if state is not TaskState.FAILED and marked:
        below = relatives(dag, marked, downstream=True, upstream=False) - set(marked)
        _reset_rows(dag, [tis[t] for t in sorted(below)
                          if t in tis and tis[t].state in FAILED_STATES], batch)  # fmt: skip
    if marked:
        _requeue(run, batch)
        await store.write(batch)
    return marked


async def delete_dag(store: Store, dag_id: str, *, dry_run: bool = False) -> dict[str, int]:
    """Delete the DAG's runs, task instances, XComs and its row (paused flag) as Airflow's
    `dags delete` does; returns the rows deleted by table. `DagHasActiveRuns` while a run is
    queued or running (they belong to an engine), `DagNotFound` when the store has no row of
    it. Whether its file still exists does not matter (as in Airflow): a DAG still in the
    folder comes back as new, paused or not as at its creation, its schedule from the start."""
    active = await store.get_dag_runs(dag_id, states=[DagRunState.QUEUED, DagRunState.RUNNING])
    if active:
        raise DagHasActiveRuns(dag_id, [r.run_id for r in active])
    counts = await store.delete_dag(dag_id, dry_run=dry_run)
    if not any(counts.values()):
        raise DagNotFound(dag_id)
    return counts


async def delete_dag_live(engine: Engine, dag_id: str) -> dict[str, int]:
    """`delete_dag` under a running engine. The DAG is paused first (no scheduled run starts
    meanwhile); once its rows are gone a loaded DAG is installed again as new: its timetable
    starts from its start_date, its history is empty, its paused flag is its default."""
    loaded = engine.dags.get(dag_id)
    was_paused = engine.is_paused(dag_id) if loaded is not None else True
    if loaded is not None:
        await engine.pause_dag(dag_id)
    try:
        counts = await delete_dag(engine.store, dag_id)
    except BaseException:
        if not was_paused:
            await engine.unpause_dag(dag_id)
        raise
    if loaded is not None:
        await engine.replace_dag(loaded)
        if loaded.is_paused_upon_creation:
            await engine.pause_dag(dag_id)
        else:
            await engine.unpause_dag(dag_id)
    return counts


async def clean_history(
    store: Store,
    before: datetime,
    tables: Collection[str] | None = None,
    *,
    dry_run: bool = False,
) -> dict[str, int]:
    """Delete history older than `before` (Airflow's `db clean`): see `Store.purge` for what
    each table loses and what is always kept. `tables` None: all of `PURGEABLE`."""
    if before.tzinfo is None:
        raise ValueError(f"the clean-before time {before.isoformat()} has no time zone")
    return await store.purge(before, PURGEABLE if tables is None else tables, dry_run=dry_run)
