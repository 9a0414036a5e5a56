"""`asyncflow tasks state | failed-deps | render`: one task instance of a run (the latest run
by default)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asyncflow.cli.context import Cli

if TYPE_CHECKING:
    from asyncflow.models.dag import DAG
    from asyncflow.records import DagRun, TaskInstance
    from asyncflow.store.sqlite import SQLiteStore


def _instance(cli: Cli) -> tuple[DAG, str, DagRun, dict[str, TaskInstance]]:
    args = cli.args
    dag = cli.get_dag(args.dag_id)
    task_id = cli.get_task_id(dag, args.task_id)
    run = cli.find_run(dag.dag_id, args.run)

    async def read(store: SQLiteStore) -> list[TaskInstance]:
        return await store.get_task_instances(dag.dag_id, run.run_id)

    tis = {ti.task_id: ti for ti in cli.with_store(read)}
    return dag, task_id, run, tis


def state(cli: Cli) -> int:
    """The state alone, as Airflow prints it ("none" before the task was scheduled)."""
    _, task_id, run, tis = _instance(cli)
    ti = tis.get(task_id)
    value = "none" if ti is None else ti.state.value
    data = {"dag_id": run.dag_id, "run_id": run.run_id, "task_id": task_id, "state": value,
            "try_number": None if ti is None else ti.try_number}  # fmt: skip
    cli.out.text(value, data)
    return 0


def blockers(dag: DAG, task_id: str, run: DagRun, tis: dict[str, TaskInstance]) -> list[str]:
    """Why the task instance does not run now, in words (empty when nothing holds it back
    that the database shows: it is running, finished, or ready for the scheduler)."""
    from asyncflow.engine.planner import UpstreamCounts, decide
    from asyncflow.states import FINISHED, DagRunState, TaskState

    ti = tis.get(task_id)
    state = TaskState.NONE if ti is None else ti.state
    task = dag.get_task(task_id)
    reasons = []
    if run.state is DagRunState.QUEUED:
        reasons.append(f"run {run.run_id} is queued: it starts when a daemon runs it (and the "
                       "DAG is not paused, and max_active_runs allows)")  # fmt: skip
    if state in FINISHED:
        reasons.append(f"the task instance is already finished ({state.value}); clear it to run "
                       "it again")  # fmt: skip
        return reasons
    if state is TaskState.UP_FOR_RETRY and ti is not None and ti.next_try_at is not None:
        reasons.append(f"waiting to retry at {ti.next_try_at.isoformat(timespec='seconds')}")
    counts = UpstreamCounts()
    waiting = []
    for up in sorted(task.upstream_task_ids):
        up_ti = tis.get(up)
        up_state = TaskState.NONE if up_ti is None else up_ti.state
        if up_state in FINISHED:
            counts.add(up_state)
        else:
            waiting.append(f"{up} ({up_state.value})")
    decision = decide(task.trigger_rule, counts, len(task.upstream_task_ids))
    if decision is None and waiting:
        reasons.append(f"trigger rule {task.trigger_rule}: waiting for upstream "
                       f"{', '.join(waiting)}")  # fmt: skip
    elif decision is not None and decision is not TaskState.SCHEDULED:
        reasons.append(f"trigger rule {task.trigger_rule} makes it {decision.value}")
    return reasons


def failed_deps(cli: Cli) -> int:
    dag, task_id, run, tis = _instance(cli)
    reasons = blockers(dag, task_id, run, tis)
    if cli.out.json:
        cli.out.data({"dag_id": dag.dag_id, "run_id": run.run_id, "task_id": task_id,
                      "failed_deps": reasons})  # fmt: skip
    elif reasons:
        print(f"Task instance dependencies not met for {task_id} in run {run.run_id}:")
        for reason in reasons:
            print(f"  {reason}")
    else:
        print(f"Task instance dependencies are all met for {task_id} in run {run.run_id}.")
    return 0


def render(cli: Cli) -> int:
    """Each templated field of the task, rendered with the run's context (its XComs
    included), as the engine renders it before an attempt."""
    from asyncflow.engine.context import RuntimeTaskInstance, run_context, task_context
    from asyncflow.engine.templating import render_task

    dag, task_id, run, _ = _instance(cli)
    task = dag.get_task(task_id)

    async def xcoms(store: SQLiteStore) -> dict[tuple[str, int, str], str]:
        rows = await store.get_run_xcoms(dag.dag_id, run.run_id)
        return {(r.task_id, r.map_index, r.key): r.value for r in rows}

    ti = RuntimeTaskInstance(task, run, 1, task.retries + 1, cli.with_store(xcoms))
    context: Any = task_context(run_context(dag, run), task, ti)
    rendered = render_task(task, context)
    fields = {name: getattr(rendered, name, None) for name in task.template_fields}
    # values a bash_command references: they reach bash as variables, never as shell text
    variables = dict(getattr(rendered, "template_env", None) or {})
    if variables:
        fields["template variables"] = variables
    if cli.out.json:
        cli.out.data({"dag_id": dag.dag_id, "run_id": run.run_id, "task_id": task_id,
                      "fields": fields})  # fmt: skip
        return 0
    rule = "# " + "-" * 58
    for name, value in fields.items():
        print(f"{rule}\n# property: {name}\n{rule}\n{value}\n")
    return 0
