"""Rebuilding the scheduler's mirror from the store: at start-up, after a crash, and when a run
appears that another process (the CLI) wrote.

A task instance the store holds as `queued`/`running` belonged to an engine that is gone. The
engine failing is not the task failing: that attempt costs no try and runs again
(`Mirror.requeue_lost`); only a task lost `max_lost_attempts` times in a row is failed, as the
likely cause. Delivery is therefore at-least-once: tasks should be idempotent.
"""

from __future__ import annotations

from datetime import datetime

from asyncflow.engine.live import MAX_SUCCESSES, LiveRun
from asyncflow.engine.mirror import Mirror
from asyncflow.records import DagRun, TaskInstance
from asyncflow.states import DagRunState
from asyncflow.store.base import DeferralRow, PastStates, Store, XComRow


def restore_run(
    mirror: Mirror,
    record: DagRun,
    stored: list[TaskInstance],
    xcoms: list[XComRow],
    now: datetime,
    deferrals: list[DeferralRow] | None = None,
) -> LiveRun:
    """Put a stored unfinished run back under the scheduler's control. A deferred task waits
    on its stored trigger again; one whose trigger had fired resumes: neither runs execute."""
    run = mirror.adopt_run(record.dag_id, record, stored, xcoms)
    mirror.load_deferrals(run.instances(), deferrals or [], now)
    mirror.resume_run(run, now)
    return run


async def past_states(store: Store, mirror: Mirror, dag_id: str) -> list[PastStates] | None:
    """The finished runs' states depends_on_past looks back at, as the store holds them;
    None for a DAG without such tasks."""
    live_dag = mirror.dags[dag_id]
    if not live_dag.has_past_deps:
        return None
    return await store.past_states(dag_id, live_dag.past_tasks)


def set_history(
    mirror: Mirror, dag_id: str, past: list[PastStates] | None, won: list[DagRun]
) -> None:
    if past is not None:
        mirror.set_history(dag_id, past)
    mirror.set_successes(dag_id, won)


async def successes(store: Store, dag_id: str) -> list[DagRun]:
    """The DAG's newest successful runs, for the prev_*_success context keys."""
    return await store.get_dag_runs(dag_id, states=[DagRunState.SUCCESS], limit=MAX_SUCCESSES)
