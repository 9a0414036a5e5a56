"""What the shapes share inside a child process: the no-op task, the DAG builders, one timed run
of a DAG on a fresh on-disk database, and memory readings."""

from __future__ import annotations

import gc
import inspect
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import anyio

from asyncflow import DAG, DagRunState, Engine, task
from asyncflow.operators.empty import EmptyOperator

START = datetime(2024, 1, 1, tzinfo=UTC)
Durability = Literal["normal", "full"]


@task
async def noop() -> None:
    """A real worker attempt that does nothing (not an EmptyOperator, which needs no worker)."""
    return None


def new_dag(dag_id: str, width: int | None, **kwargs: Any) -> DAG:
    """A benchmark DAG; `width` None leaves max_active_tasks to the engine's default."""
    return DAG(
        dag_id,
        schedule=kwargs.pop("schedule", None),
        start_date=kwargs.pop("start_date", START),
        catchup=False,
        max_active_tasks=width,
        max_active_runs=1,
        **kwargs,
    )


def fanout_dag(n: int, *, width: int, empty: bool = False) -> DAG:
    """root -> n no-op tasks -> join."""
    with new_dag("fanout", width) as dag:
        root = noop.override(task_id="root")()
        join = noop.override(task_id="join")()
        middle: list[Any]
        if empty:
            middle = [EmptyOperator(task_id=f"t{i}") for i in range(n)]
        else:
            middle = [noop.override(task_id=f"t{i}")() for i in range(n)]
        root >> middle >> join
    return dag


def chain_dag(n: int, *, width: int, step: Any = noop) -> DAG:
    """n tasks in a line; `step` is the @task each one calls."""
    with new_dag("chain", width) as dag:
        previous: Any = None
        for i in range(n):
            current = step.override(task_id=f"t{i}")()
            if previous is not None:
                previous >> current
            previous = current
    return dag


def engine_gc_options(cpython_gc: bool) -> dict[str, Any]:
    """For the labelled rows that show what the engine's GC tuning buys: CPython's default
    cyclic-GC thresholds, and `Engine(tune_gc=False)` where the engine has that option."""
    if not cpython_gc:
        return {}
    gc.set_threshold(700, 10, 10)
    if "tune_gc" in inspect.signature(Engine).parameters:
        return {"tune_gc": False}
    return {}


@contextmanager
def temp_database() -> Iterator[str]:
    """A fresh SQLite file in a new temporary folder (on disk), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="asyncflow-bench-") as folder:
        yield str(Path(folder) / "bench.db")


@dataclass(frozen=True)
class Timed:
    wall_s: float  # trigger -> run finished, as the caller sees it
    commits: int
    steps: int


async def run_once(
    dag: DAG,
    *,
    parallelism: int | None,
    durability: Durability = "normal",
    cpython_gc: bool = False,
    limit_s: float = 600,
    during: Any = None,
) -> Timed:
    """Start an engine on a fresh database, trigger `dag` once, wait for the run to finish.
    `parallelism` None: the engine's defaults. `during(engine)`, if given, runs beside."""
    bounds = {} if parallelism is None else {"parallelism": parallelism}
    with temp_database() as database:
        async with Engine(
            dags=[dag],
            database=database,
            **bounds,
            durability=durability,
            run_schedules=False,
            **engine_gc_options(cpython_gc),
        ) as engine:
            before = engine.statistics()
            started = time.perf_counter()
            run = await engine.trigger_dag(dag.dag_id)
            async with anyio.create_task_group() as beside:
                if during is not None:
                    beside.start_soon(during, engine)
                done = await engine.wait_for_run(dag.dag_id, run.run_id, timeout=limit_s)
                beside.cancel_scope.cancel()
            wall = time.perf_counter() - started
            after = engine.statistics()
            if done.state is not DagRunState.SUCCESS:
                tis = await engine.get_task_instances(dag.dag_id, run.run_id)
                errors = {f"{ti.task_id}: {ti.state} {ti.error}" for ti in tis if ti.error}
                raise RuntimeError(
                    f"run of {dag.dag_id} ended {done.state}, expected success; "
                    f"{len(errors)} task errors, e.g. {sorted(errors)[:2]}"
                )
    return Timed(
        wall,
        after.get("commits", 0) - before.get("commits", 0),
        after.get("steps", 0) - before.get("steps", 0),
    )


def throughput(dag: DAG, timed: Timed) -> dict[str, float]:
    tis = len(dag.task_dict)
    return {
        "tis_per_s": tis / timed.wall_s,
        "wall_s": timed.wall_s,
        "us_per_ti": timed.wall_s / tis * 1e6,
        "commits": timed.commits,
        "tis_per_commit": tis / max(timed.commits, 1),
    }


def peak_rss_bytes() -> int:
    """The process's peak resident set so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def current_rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]
