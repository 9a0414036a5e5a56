"""One DAG run, start to finish, in this process on an in-memory engine: `DAG.test()` and
`asyncflow dags test` / `tasks test`. Nothing is stored; the DAG need not be in any folder."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import anyio

from asyncflow.engine.engine import Engine
from asyncflow.models.dag import DAG
from asyncflow.models.pool import Pool
from asyncflow.models.xcom_arg import RETURN_KEY
from asyncflow.records import DagRun, TaskInstance

__all__ = ["DagTestResult", "run_once", "run_once_sync"]


@dataclass(frozen=True, slots=True)
class DagTestResult:
    run: DagRun
    task_instances: list[TaskInstance]
    #: task_id -> its return value (None when it pushed none)
    return_values: dict[str, Any]


async def run_once(
    dag: DAG,
    *,
    conf: Mapping[str, Any] | None = None,
    logical_date: datetime | None = None,
    run_id: str | None = None,
    pools: Iterable[Pool] = (),
    parallelism: int = 32,
) -> DagTestResult:
    """Trigger `dag` once on a fresh in-memory engine and wait for the run to finish."""
    async with Engine(
        dags=[dag], database=":memory:", run_schedules=False, pools=pools,
        parallelism=parallelism,
    ) as engine:  # fmt: skip
        run = await engine.trigger_dag(
            dag.dag_id, conf=conf, logical_date=logical_date, run_id=run_id
        )
        run = await engine.wait_for_run(dag.dag_id, run.run_id)
        tis = await engine.get_task_instances(dag.dag_id, run.run_id)
        values = {}
        for ti in tis:
            raw = await engine.store.get_xcom(dag.dag_id, run.run_id, ti.task_id, RETURN_KEY)
            values[ti.task_id] = None if raw is None else json.loads(raw)
        return DagTestResult(run, tis, values)


def run_once_sync(
    dag: DAG,
    *,
    conf: Mapping[str, Any] | None = None,
    logical_date: datetime | None = None,
    run_id: str | None = None,
    pools: Iterable[Pool] = (),
    parallelism: int = 32,
    use_uvloop: bool = True,
) -> DagTestResult:
    """`run_once` on its own event loop (from synchronous code)."""
    main = partial(run_once, dag, conf=conf, logical_date=logical_date, run_id=run_id,
                   pools=list(pools), parallelism=parallelism)  # fmt: skip
    return anyio.run(main, backend_options={"use_uvloop": use_uvloop})
