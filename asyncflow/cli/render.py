"""How commands show runs and tasks: the columns of a run, tasks in reading order."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    from asyncflow.models.dag import DAG
    from asyncflow.records import DagRun, TaskInstance

RUN_COLUMNS = ("dag_id", "run_id", "state", "run_type", "logical_date", "start_date",
               "end_date")  # fmt: skip


def run_dict(run: DagRun) -> dict[str, Any]:
    return {
        "dag_id": run.dag_id,
        "run_id": run.run_id,
        "state": run.state,
        "run_type": run.run_type,
        "logical_date": run.logical_date,
        "data_interval_start": run.data_interval_start,
        "data_interval_end": run.data_interval_end,
        "start_date": run.start_date,
        "end_date": run.end_date,
        "conf": run.conf,
    }


def in_order(dag: DAG) -> list[str]:
    """Task ids by depth (roots first), then by id: the order people read a DAG in."""
    depth: dict[str, int] = {}
    for task in dag.topological_sort():
        depth[task.task_id] = max((depth[u] + 1 for u in task.upstream_task_ids), default=0)
    return sorted(depth, key=lambda task_id: (depth[task_id], task_id))


def ti_rows(dag: DAG | None, tis: Iterable[TaskInstance]) -> list[dict[str, Any]]:
    """Task instances as rows, in the DAG's order (upstream first) when the DAG is known,
    else by task id."""
    order = {task_id: i for i, task_id in enumerate(in_order(dag))} if dag else {}
    ordered = sorted(
        tis, key=lambda ti: (order.get(ti.task_id, len(order)), ti.task_id, ti.map_index)
    )
    columns = (
        "task_id", "map_index", "state", "try_number", "start_date", "end_date", "duration",
        "error",
    )  # fmt: skip
    return [{c: getattr(ti, c) for c in columns} for ti in ordered]
