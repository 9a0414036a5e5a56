"""Run-level limits the dispatcher checks beyond slots: a backfill's own cap on running runs, and
depends_on_past / wait_for_downstream against the previous run."""

from __future__ import annotations

from asyncflow.engine.live import LiveDag, LiveRun, LiveTI
from asyncflow.records import DagRunType
from asyncflow.states import RUN_FINISHED, DagRunState, TaskState

Runs = dict[tuple[str, str], LiveRun]


def backfill_room(runs: Runs, live_dag: LiveDag) -> bool:
    """Whether another backfill run of this DAG may start under the backfill's own cap."""
    limit = live_dag.backfill_limit
    if limit is None:
        return True
    running = sum(
        1
        for r in runs.values()
        if r.dag_id == live_dag.dag.dag_id
        and r.record.run_type is DagRunType.BACKFILL
        and r.record.state is DagRunState.RUNNING
    )
    return running < limit


def past_allows(runs: Runs, live_dag: LiveDag, ti: LiveTI) -> bool:
    """depends_on_past: the same task in the previous run (by logical date) succeeded or
    was skipped; with wait_for_downstream, its direct downstream too. The previous run is the
    latest before this one among the active runs and the finished ones the store holds."""
    logical = ti.run.record.logical_date
    previous: dict[str, TaskState] | None = None
    best = None
    for run in runs.values():
        if (
            run.dag_id == live_dag.dag.dag_id
            and run.record.logical_date < logical
            and run.record.state not in RUN_FINISHED
            and (best is None or run.record.logical_date > best)
        ):
            best = run.record.logical_date
            previous = {t: i.state for t, i in run.tis.items()}
    past = live_dag.finished_before(logical)
    if past is not None and (best is None or past.logical_date > best):
        previous = past.states
    if previous is None:
        return True  # the first run: nothing to wait for
    names = [ti.task_id]
    if ti.task.wait_for_downstream:
        names.extend(ti.task.downstream_task_ids)
    return all(previous.get(n, TaskState.SUCCESS) in (TaskState.SUCCESS, TaskState.SKIPPED)
               for n in names)  # fmt: skip
