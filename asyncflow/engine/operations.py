"""Changing runs by hand, inside the scheduler's loop: clear task instances (re-run them), mark
their state, bring a finished run back under control. Each function runs as one command, so
its changes commit in one transaction."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from asyncflow.engine.live import LiveDag, LiveRun
from asyncflow.engine.recovery import mirror_run
from asyncflow.exceptions import TaskNotFound
from asyncflow.models.dag import DAG
from asyncflow.records import DagRun, TaskInstance
from asyncflow.states import FAILED_STATES, FINISHED, RUN_FINISHED, DagRunState, TaskState
from asyncflow.store.base import XComRow

if TYPE_CHECKING:
    from asyncflow.engine.scheduler import Scheduler


def relatives(dag: DAG, task_ids: Iterable[str], *, downstream: bool, upstream: bool) -> set[str]:
    """The tasks named, plus all their downstream and/or upstream tasks."""
    chosen = set()
    for task_id in task_ids:
        if task_id not in dag.task_dict:
            raise TaskNotFound(dag.dag_id, task_id)
        chosen.add(task_id)
    todo = list(chosen)
    while todo:
        task = dag.task_dict[todo.pop()]
        near: set[str] = set()
        if downstream:
            near |= task.downstream_task_ids
        if upstream:
            near |= task.upstream_task_ids
        for other in near - chosen:
            chosen.add(other)
            todo.append(other)
    return chosen


def load_finished_run(
    scheduler: Scheduler,
    live_dag: LiveDag,
    record: DagRun,
    stored: list[TaskInstance],
    xcoms: list[XComRow],
) -> LiveRun:
    """A finished run taken back into memory so that it can be changed."""
    live = scheduler.runs.get((record.dag_id, record.run_id))
    return live or mirror_run(scheduler, live_dag, record, stored, xcoms)


def clear(
    scheduler: Scheduler, run: LiveRun, task_ids: set[str], *, only_failed: bool, now: datetime
) -> list[str]:
    """Set task instances back to `none` so that they run again (Airflow's clear)."""
    cleared = []
    for task_id in sorted(task_ids):
        ti = run.tis[task_id]
        if ti.state is TaskState.NONE or (only_failed and ti.state not in FAILED_STATES):
            continue
        if ti.state is TaskState.RUNNING:
            scheduler.cancel(ti, "cleared while running")
        scheduler.set_state(ti, TaskState.NONE, now)
        ti.max_tries = ti.try_number + ti.task.retries
        ti.start_date = ti.end_date = ti.duration = ti.error = ti.next_try_at = None
        scheduler.burst.xcom_clears.append((run.dag_id, run.run_id, task_id))
        for key in [k for k in run.xcoms if k[0] == task_id]:
            del run.xcoms[key]
        cleared.append(task_id)
    reopen(scheduler, run, now)
    return cleared


def mark(
    scheduler: Scheduler, run: LiveRun, task_ids: set[str], state: TaskState, now: datetime
) -> list[str]:
    """Set task instances to `success` or `failed` by hand."""
    if state not in (TaskState.SUCCESS, TaskState.FAILED, TaskState.SKIPPED):
        raise ValueError(f"a task instance can be marked success, failed or skipped, not {state}")
    marked = []
    for task_id in sorted(task_ids):
        ti = run.tis[task_id]
        if ti.state is state:
            continue
        if ti.state is TaskState.RUNNING:
            scheduler.cancel(ti, f"marked {state.value} by hand")
        scheduler.set_state(ti, state, now)
        ti.end_date = ti.end_date or now
        ti.next_try_at = None
        marked.append(task_id)
    if state is not TaskState.FAILED and marked:
        # as Airflow: what failed below a task now marked done gets its chance to run
        below = relatives(run.dag, marked, downstream=True, upstream=False) - set(marked)
        failed_below = {t for t in below if run.tis[t].state in FAILED_STATES}
        if failed_below:
            clear(scheduler, run, failed_below, only_failed=True, now=now)
            return marked
    reopen(scheduler, run, now)
    return marked


def reopen(scheduler: Scheduler, run: LiveRun, now: datetime) -> None:
    """After a change by hand: recount, then run what became ready, or settle the run."""
    run.recount()
    state = run.record.state
    key = (run.dag_id, run.run_id)
    if state is DagRunState.RUNNING:
        scheduler.evaluate_run(run, now)
    elif state is DagRunState.QUEUED:
        return
    elif run.unfinished:  # a finished run with work to do again
        scheduler.set_run_state(run, DagRunState.QUEUED, now, end_date=None, queued_at=now)
        scheduler.queue_run(scheduler.dags[run.dag_id], run)
    else:  # still finished: its state follows its leaves again
        final = run.outcome()
        if final is not state:
            scheduler.set_run_state(run, final, now, end_date=now)
        live_dag = scheduler.dags.get(run.dag_id)
        if live_dag is not None and live_dag.remember_finished(run):
            scheduler.unblock(("past", run.dag_id))

        def forget() -> None:
            if scheduler.runs.get(key) is run and run.record.state in RUN_FINISHED:
                del scheduler.runs[key]

        scheduler.burst.after.append(forget)


def time_out(scheduler: Scheduler, run: LiveRun, now: datetime) -> None:
    """dagrun_timeout passed: the run fails; unfinished task instances are stopped and
    marked skipped (as Airflow does)."""
    if (
        run.record.state is not DagRunState.RUNNING
        or scheduler.runs.get((run.dag_id, run.run_id)) is not run
    ):
        return
    for ti in run.tis.values():
        if ti.state in FINISHED:
            continue
        if ti.state is TaskState.RUNNING:
            scheduler.cancel(ti, "dagrun_timeout")
        ti.error = f"the run exceeded its dagrun_timeout of {run.dag.dagrun_timeout}"
        ti.end_date = now
        scheduler.set_state(ti, TaskState.SKIPPED, now)
    run.unfinished = 0
    scheduler.set_run_state(run, DagRunState.FAILED, now, end_date=now)
    scheduler.release_run(run)
