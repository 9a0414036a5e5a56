"""Task instance and DAG run states, with Airflow's values, and the one table of transitions.

Every state change the engine makes passes `check_task_transition` / `check_run_transition`.
"""

from __future__ import annotations

from enum import StrEnum

from asyncflow.exceptions import InvalidStateTransition


class TaskState(StrEnum):
    NONE = "none"  # created with its run, not yet considered
    SCHEDULED = "scheduled"  # dependencies met, waiting for a slot
    QUEUED = "queued"  # handed to a worker
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"
    UP_FOR_RETRY = "up_for_retry"
    UP_FOR_RESCHEDULE = "up_for_reschedule"
    UPSTREAM_FAILED = "upstream_failed"
    REMOVED = "removed"
    DEFERRED = "deferred"


class DagRunState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"


T = TaskState

FINISHED: frozenset[TaskState] = frozenset(
    {T.SUCCESS, T.FAILED, T.SKIPPED, T.UPSTREAM_FAILED, T.REMOVED}
)
UNFINISHED: frozenset[TaskState] = frozenset(TaskState) - FINISHED
#: States that hold a worker slot (counted against parallelism, pools, max_active_tasks).
ACTIVE: frozenset[TaskState] = frozenset({T.QUEUED, T.RUNNING})
#: States whose task is waiting on a timer rather than on its upstream.
WAITING: frozenset[TaskState] = frozenset({T.UP_FOR_RETRY, T.UP_FOR_RESCHEDULE, T.DEFERRED})
FAILED_STATES: frozenset[TaskState] = frozenset({T.FAILED, T.UPSTREAM_FAILED})
SUCCESS_STATES: frozenset[TaskState] = frozenset({T.SUCCESS, T.SKIPPED})
RUN_FINISHED: frozenset[DagRunState] = frozenset({DagRunState.SUCCESS, DagRunState.FAILED})

_CLEARABLE = frozenset(TaskState) - {T.NONE}

TASK_TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    # decided by trigger rules, branching, or marked by hand
    T.NONE: frozenset({T.SCHEDULED, T.SKIPPED, T.UPSTREAM_FAILED, T.REMOVED, T.SUCCESS, T.FAILED}),
    # (-> deferred: start_from_trigger begins deferred, without a worker)
    T.SCHEDULED: frozenset(
        {T.QUEUED, T.NONE, T.SKIPPED, T.UPSTREAM_FAILED, T.FAILED, T.SUCCESS, T.DEFERRED}
    ),
    T.QUEUED: frozenset(
        {T.RUNNING, T.SCHEDULED, T.NONE, T.FAILED, T.UP_FOR_RETRY, T.SUCCESS, T.SKIPPED}
    ),
    T.RUNNING: frozenset(
        {
            T.SUCCESS,
            T.FAILED,
            T.SKIPPED,
            T.UP_FOR_RETRY,
            T.UP_FOR_RESCHEDULE,
            T.DEFERRED,
            T.NONE,  # cleared while running
            T.SCHEDULED,  # interrupted or lost by the engine: runs again, no try used
        }
    ),
    T.UP_FOR_RETRY: frozenset({T.SCHEDULED, T.NONE, T.FAILED, T.SUCCESS, T.SKIPPED}),
    T.UP_FOR_RESCHEDULE: frozenset({T.SCHEDULED, T.NONE, T.FAILED, T.SUCCESS, T.SKIPPED}),
    T.DEFERRED: frozenset({T.SCHEDULED, T.NONE, T.FAILED, T.SUCCESS, T.SKIPPED}),
    # finished states only move when cleared (-> none) or marked by hand
    T.SUCCESS: frozenset({T.NONE, T.FAILED, T.SKIPPED}),
    T.FAILED: frozenset({T.NONE, T.SUCCESS, T.SKIPPED}),
    T.SKIPPED: frozenset({T.NONE, T.SUCCESS, T.FAILED}),
    T.UPSTREAM_FAILED: frozenset({T.NONE, T.SUCCESS, T.FAILED, T.SKIPPED}),
    T.REMOVED: frozenset({T.NONE}),
}

RUN_TRANSITIONS: dict[DagRunState, frozenset[DagRunState]] = {
    DagRunState.QUEUED: frozenset({DagRunState.RUNNING, DagRunState.FAILED, DagRunState.SUCCESS}),
    DagRunState.RUNNING: frozenset({DagRunState.SUCCESS, DagRunState.FAILED, DagRunState.QUEUED}),
    DagRunState.SUCCESS: frozenset({DagRunState.QUEUED, DagRunState.RUNNING, DagRunState.FAILED}),
    DagRunState.FAILED: frozenset({DagRunState.QUEUED, DagRunState.RUNNING, DagRunState.SUCCESS}),
}


def check_task_transition(key: str, old: TaskState, new: TaskState) -> None:
    if new not in TASK_TRANSITIONS[old]:
        raise InvalidStateTransition("task instance", key, old, new)


def check_run_transition(key: str, old: DagRunState, new: DagRunState) -> None:
    if new not in RUN_TRANSITIONS[old]:
        raise InvalidStateTransition("DAG run", key, old, new)
