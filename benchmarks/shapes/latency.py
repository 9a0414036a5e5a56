"""`latency`: how soon the engine acts on what it learns.

- In a chain of N tasks, each records `time.perf_counter()` when it starts and when it ends; the
  gap from an upstream's end to its downstream's start is the engine's whole reaction: the
  outcome reaches the scheduler, the success and the downstream's start are committed (one
  durable transaction), and the downstream's worker starts. p50 and p99 over the N-1 hops.
- A DAG with `schedule="@once"` and a start date just ahead: from the instant it is due to its
  first task starting (timer wake-up, run creation and start committed, worker started).
"""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio

from asyncflow import Engine, task
from benchmarks.shapes.common import chain_dag, new_dag, percentile, run_once, temp_database

#: how far ahead of the engine's start the scheduled run is due
LEAD_S = 0.3


async def measure(n: int, parallelism: int) -> dict[str, float]:
    gaps = await _chain_gaps(n, parallelism)
    return {
        "gap_p50_ms": percentile(gaps, 50) * 1e3,
        "gap_p99_ms": percentile(gaps, 99) * 1e3,
        "gap_max_ms": max(gaps) * 1e3,
        "scheduled_ms": await _scheduled_start() * 1e3,
    }


async def _chain_gaps(n: int, parallelism: int) -> list[float]:
    marks: dict[str, tuple[float, float]] = {}

    @task
    async def stamp(ti: Any = None) -> None:
        start = time.perf_counter()
        marks[ti.task_id] = (start, time.perf_counter())

    await run_once(chain_dag(n, width=parallelism, step=stamp), parallelism=parallelism)
    ordered = [marks[f"t{i}"] for i in range(n)]
    return [down[0] - up[1] for up, down in itertools.pairwise(ordered)]


async def _scheduled_start() -> float:
    """Seconds from a run's due time to its first task's start."""
    due = datetime.now(UTC) + timedelta(seconds=LEAD_S)
    started: list[float] = []
    first_start = anyio.Event()

    @task
    async def first() -> None:
        started.append(time.time())
        first_start.set()

    with new_dag("scheduled", 1, schedule="@once", start_date=due) as dag:
        first()
    with temp_database() as database:
        async with Engine(dags=[dag], database=database, run_schedules=True) as engine:
            with anyio.fail_after(LEAD_S + 10):
                await first_start.wait()
                (run,) = await engine.get_dag_runs(dag.dag_id)
                await engine.wait_for_run(dag.dag_id, run.run_id)
    return started[0] - due.timestamp()
