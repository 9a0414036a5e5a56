"""Rebuilding the scheduler's mirror from the store: at start-up, after a crash, and when a run
appears that another process (the CLI) wrote.

A task instance the store holds as `queued`/`running` belonged to an engine that is gone: that
attempt is recorded as lost and retried by the task's policy (or failed when out of tries).
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

from asyncflow.engine.live import LiveDag, LiveRun
from asyncflow.engine.planner import retry_delay
from asyncflow.records import DagRun, TaskInstance
from asyncflow.states import FINISHED, DagRunState, TaskState
from asyncflow.store.base import XComRow, iso

if TYPE_CHECKING:
    from asyncflow.engine.scheduler import Scheduler

LOST = "lost: the engine stopped (crash, kill or power loss) while this attempt ran"


def mirror_run(
    scheduler: Scheduler,
    live_dag: LiveDag,
    record: DagRun,
    stored: list[TaskInstance],
    xcoms: list[XComRow],
) -> LiveRun:
    """The in-memory mirror of a stored run, registered with the scheduler: task instances
    loaded, tasks added to the DAG since inserted, tasks gone from it marked removed."""
    run = LiveRun(live_dag.dag, record, live_dag.priorities)
    by_id = {ti.task_id: ti for ti in stored}
    for task_id, live in run.tis.items():
        found = by_id.pop(task_id, None)
        if found is None:  # a task added to the DAG since the run was created
            scheduler.burst.ti_inserts.append(live.row())
        else:
            live.load(found)
    for gone in by_id.values():  # tasks no longer in the DAG
        if gone.state not in FINISHED:
            scheduler.burst.ti_rows.append((
                TaskState.REMOVED.value, gone.try_number, gone.max_tries, iso(gone.start_date),
                iso(gone.end_date), gone.duration, gone.error, None, gone.dag_id, gone.run_id,
                gone.task_id, gone.map_index,
            ))  # fmt: skip
    run.xcoms = {(t, m, k): v for (_, _, t, m, k, v) in xcoms}
    run.recount()
    scheduler.runs[(record.dag_id, record.run_id)] = run
    return run


def restore_run(
    scheduler: Scheduler,
    live_dag: LiveDag,
    record: DagRun,
    stored: list[TaskInstance],
    xcoms: list[XComRow],
    now: datetime,
) -> LiveRun:
    """Put a stored unfinished run back under the scheduler's control."""
    run = mirror_run(scheduler, live_dag, record, stored, xcoms)
    if record.state is DagRunState.RUNNING:
        live_dag.running_runs += 1
    for live in list(run.tis.values()):
        if live.state in (TaskState.QUEUED, TaskState.RUNNING):
            live.end_date = now
            live.error = LOST
            if live.try_number <= live.max_tries:
                live.next_try_at = now + retry_delay(live.task, live.try_number)
                scheduler.set_state(live, TaskState.UP_FOR_RETRY, now)
            else:
                scheduler.settle(live, TaskState.FAILED, now)
        if live.state in (TaskState.UP_FOR_RETRY, TaskState.UP_FOR_RESCHEDULE):
            when = live.next_try_at or now
            scheduler.at(when, partial(scheduler.retry_due, live, live.try_number))
    if record.state is DagRunState.RUNNING:
        scheduler.evaluate_run(run, now)
    else:
        scheduler.queue_run(live_dag, run)
    return run
