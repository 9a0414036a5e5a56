"""One DAG run, start to finish, in this process on an in-memory engine: `DAG.test()` and
`asyncflow dags test` / `tasks test`. Nothing is stored; the DAG need not be in any folder."""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import anyio

from asyncflow.engine.engine import Engine
from asyncflow.engine.events import Received
from asyncflow.models import xcom_codec
from asyncflow.models.dag import DAG
from asyncflow.models.pool import Pool
from asyncflow.models.xcom_arg import RETURN_KEY
from asyncflow.records import DagRun, TaskInstance

__all__ = ["DagTestResult", "OnEvent", "run_once", "run_once_sync"]

#: called with every event of the run (task and run state changes) as it is committed
OnEvent = Callable[[Received], None]


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
    on_event: OnEvent | None = None,
) -> DagTestResult:
    """Trigger `dag` once on a fresh in-memory engine and wait for the run to finish;
    `on_event` (e.g. a progress display) sees every state change on the way."""
    async with Engine(
        dags=[dag], database=":memory:", run_schedules=False, pools=pools,
        parallelism=parallelism,
    ) as engine:  # fmt: skip
        async with anyio.create_task_group() as tg:
            if on_event is not None:
                tg.start_soon(_forward, engine.subscribe(), on_event)
            run = await engine.trigger_dag(
                dag.dag_id, conf=conf, logical_date=logical_date, run_id=run_id
            )
            run = await engine.wait_for_run(dag.dag_id, run.run_id)
            tg.cancel_scope.cancel()
        tis = await engine.get_task_instances(dag.dag_id, run.run_id)
        values = {}
        for ti in tis:
            raw = await engine.store.get_xcom(dag.dag_id, run.run_id, ti.task_id, RETURN_KEY)
            values[ti.task_id] = None if raw is None else xcom_codec.loads(raw)
    return DagTestResult(run, tis, values)


async def _forward(subscription: AsyncIterable[Received], on_event: OnEvent) -> None:
    async for event in subscription:
        on_event(event)


def run_once_sync(
    dag: DAG,
    *,
    conf: Mapping[str, Any] | None = None,
    logical_date: datetime | None = None,
    run_id: str | None = None,
    pools: Iterable[Pool] = (),
    parallelism: int = 32,
    use_uvloop: bool = True,
    on_event: OnEvent | None = None,
) -> DagTestResult:
    """`run_once` on its own event loop (from synchronous code)."""
    main = partial(run_once, dag, conf=conf, logical_date=logical_date, run_id=run_id,
                   pools=list(pools), parallelism=parallelism, on_event=on_event)  # fmt: skip
    return anyio.run(main, backend_options={"use_uvloop": use_uvloop})
