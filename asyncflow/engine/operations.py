"""Changing runs by hand: clear task instances (re-run them), mark their state, bring a finished
run back under control. Each function runs inside the scheduler's loop as one command, so its
changes commit in one transaction; every change is one of the mirror's named transitions."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from asyncflow.engine.live import LiveRun
from asyncflow.engine.mirror import Mirror
from asyncflow.exceptions import TaskNotFound
from asyncflow.models.dag import DAG
from asyncflow.records import DagRun, TaskInstance
from asyncflow.states import FAILED_STATES, TaskState
from asyncflow.store.base import XComRow

MARKABLE = (TaskState.SUCCESS, TaskState.FAILED, TaskState.SKIPPED)


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
    mirror: Mirror, record: DagRun, stored: list[TaskInstance], xcoms: list[XComRow]
) -> LiveRun:
    """A finished run taken back into memory so that it can be changed."""
    live = mirror.runs.get((record.dag_id, record.run_id))
    return live or mirror.adopt_run(record.dag_id, record, stored, xcoms)


def with_setups_and_teardowns(dag: DAG, task_ids: Iterable[str]) -> set[str]:
    """The tasks named plus, as Airflow clears them, the setups upstream of each (those whose
    teardown is downstream of it, or that have none) and those setups' teardowns."""
    chosen = set(task_ids)
    for task_id in list(chosen):
        task = dag.task_dict[task_id]
        if task.is_setup or task.is_teardown:
            continue
        below = relatives(dag, [task_id], downstream=True, upstream=False)
        teardowns_below = {t for t in below if dag.task_dict[t].is_teardown}
        for up_id in relatives(dag, [task_id], downstream=False, upstream=True) - {task_id}:
            up = dag.task_dict[up_id]
            if not up.is_setup:
                continue
            own = {t for t in up.downstream_task_ids if dag.task_dict[t].is_teardown}
            if not own or own & teardowns_below:
                chosen.add(up_id)
                chosen |= own
    return chosen


def clear(
    mirror: Mirror, run: LiveRun, task_ids: set[str], *, only_failed: bool, now: datetime,
    map_index: int | None = None,
) -> list[str]:  # fmt: skip
    """Set task instances back to `none` so that they run again (Airflow's clear): every
    instance of a mapped task (or only `map_index`), and the setups and teardowns of the work
    cleared."""
    if any(run.dag.task_dict[t].is_setup or run.dag.task_dict[t].is_teardown
           for t in run.dag.task_dict):  # fmt: skip
        task_ids = with_setups_and_teardowns(run.dag, task_ids)
    cleared = []
    for task_id in sorted(task_ids):
        hit = False
        for ti in mirror.instance(run, task_id, map_index):
            if ti.state is TaskState.NONE or (only_failed and ti.state not in FAILED_STATES):
                continue
            mirror.clear(ti, now)
            hit = True
        if hit:
            cleared.append(task_id)
    mirror.reopen(run, now)
    return cleared


def mark(
    mirror: Mirror,
    run: LiveRun,
    task_ids: set[str],
    state: TaskState,
    now: datetime,
    map_index: int | None = None,
) -> list[str]:
    """Set task instances to `success`, `failed` or `skipped` by hand."""
    if state not in MARKABLE:
        raise ValueError(f"a task instance can be marked success, failed or skipped, not {state}")
    marked = []
    for task_id in sorted(task_ids):
        hit = False
        for ti in mirror.instance(run, task_id, map_index):
            if ti.state is state:
                continue
            mirror.mark(ti, state, now)
            hit = True
        if hit:
            marked.append(task_id)
    if state is not TaskState.FAILED and marked:
        # as Airflow: what failed below a task now marked done gets its chance to run
        below = relatives(run.dag, marked, downstream=True, upstream=False) - set(marked)
        failed_below = {
            t for t in below if any(ti.state in FAILED_STATES for ti in run.instances_of(t))
        }
        if failed_below:
            clear(mirror, run, failed_below, only_failed=True, now=now)
            return marked
    mirror.reopen(run, now)
    return marked
