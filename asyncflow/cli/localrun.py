"""`dags test` and `tasks test`: one run in this process on an in-memory engine
(`asyncflow.engine.dagtest`, as `DAG.test()`), each task's final state printed."""

from __future__ import annotations

import contextlib
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

from asyncflow.cli.context import Cli
from asyncflow.cli.render import in_order
from asyncflow.exitcodes import EX_FAILED, EX_OK

if TYPE_CHECKING:
    from asyncflow.models.dag import DAG
    from asyncflow.models.pool import Pool


def local_pools(cli: Cli) -> list[Pool]:
    """The pools a daemon would know: the database's (when it exists) and the settings'."""
    from asyncflow.models.pool import Pool

    pools: dict[str, int] = {}
    if cli.database_exists():
        pools.update(cli.with_store(lambda store: store.get_pools()))
    pools.update(cli.settings.pools)
    return [Pool(name, slots) for name, slots in pools.items()]


def run_in_memory(cli: Cli, dag: DAG, conf: dict[str, Any] | None, logical: datetime | None) -> int:
    """Run `dag` once on an in-memory engine; print each task's final state."""
    from asyncflow.cli.progress import EventCounts, Progress, counts_of
    from asyncflow.engine.dagtest import run_once_sync
    from asyncflow.states import DagRunState

    pools = local_pools(cli)
    progress = Progress(len(dag.task_dict))
    follow = EventCounts(progress, f"{dag.dag_id} test")
    try:
        with contextlib.redirect_stdout(sys.stderr):  # what tasks print; stdout is for results
            result = run_once_sync(dag, conf=conf, logical_date=logical, pools=pools,
                                   parallelism=cli.settings.parallelism,
                                   on_event=follow)  # fmt: skip
        progress.update(f"{dag.dag_id} {result.run.state.value}",
                        counts_of(result.task_instances))  # fmt: skip
    finally:
        progress.close()
    order = {task_id: i for i, task_id in enumerate(in_order(dag))}
    rows = [
        {
            "task_id": ti.task_id,
            "state": ti.state,
            "try_number": ti.try_number,
            "duration": ti.duration,
            "return_value": result.return_values.get(ti.task_id),
            "error": ti.error,
        }
        for ti in sorted(result.task_instances, key=lambda ti: order.get(ti.task_id, len(order)))
    ]
    cli.out.rows(rows, ("task_id", "state", "try_number", "duration", "return_value", "error"))
    run = result.run
    if not cli.out.json:
        cli.out.note(f"run {run.run_id}: {run.state.value}")
    return EX_OK if run.state is DagRunState.SUCCESS else EX_FAILED
