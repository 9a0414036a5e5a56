"""Backfill: run a DAG's schedule intervals over a date range on demand, oldest first, as
`backfill` runs (existing runs skipped, or re-run by `reprocess`), and wait for them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Literal

from asyncflow.engine.dagruns import backfill_infos, new_run
from asyncflow.logs import get_logger
from asyncflow.records import DagRun, DagRunType
from asyncflow.states import RUN_FINISHED, DagRunState

if TYPE_CHECKING:
    from asyncflow.engine.engine import Engine

log = get_logger("asyncflow.engine")


async def run(
    engine: Engine,
    dag_id: str,
    start_date: datetime,
    end_date: datetime,
    *,
    reprocess: Literal["none", "failed", "completed"],
    max_active_runs: int | None,
) -> list[DagRun]:
    if reprocess not in ("none", "failed", "completed"):
        raise ValueError(f"reprocess must be none, failed or completed, got {reprocess!r}")
    dag = engine.get_dag(dag_id)
    infos = backfill_infos(dag, start_date, end_date)
    store = engine.store
    todo: list[DagRun] = []
    rerun: list[tuple[DagRun, bool]] = []
    now = engine.clock.now()
    for info in infos:
        logical = dag.timetable.logical_date_of(info)
        existing = await store.find_dag_run(dag_id, logical)
        if existing is None:
            todo.append(new_run(dag, run_type=DagRunType.BACKFILL, logical_date=logical,
                                interval=info.data_interval, now=now))  # fmt: skip
        elif existing.state in RUN_FINISHED and (
            reprocess == "completed"
            or (reprocess == "failed" and existing.state is DagRunState.FAILED)
        ):
            rerun.append((existing, reprocess == "failed"))

    mirror = engine._require().mirror

    def add(now: datetime) -> None:
        mirror.set_backfill_limit(dag_id, max_active_runs)
        for record in todo:
            mirror.add_run(dag_id, record, now)

    await engine._in_loop(add)
    for record, only_failed in rerun:
        await engine.clear_task_instances(
            dag_id, record.run_id, dag.task_ids, only_failed=only_failed
        )
    runs = [*todo, *(r for r, _ in rerun)]
    runs.sort(key=lambda r: r.logical_date)
    done = []
    for index, record in enumerate(runs, 1):
        finished = await engine.wait_for_run(dag_id, record.run_id)
        log.info("backfill progress", dag_id=dag_id, done=index, total=len(runs),
                 run_id=finished.run_id, state=finished.state.value)  # fmt: skip
        done.append(finished)
    return done
