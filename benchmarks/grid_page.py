"""The dashboard's grid page for a big DAG: server time of `GET /dags/{dag_id}` (runs x tasks,
paged on the server) for a DAG of T tasks with R finished runs in a SQLite file.

The app is called in this process through httpx's ASGI transport (no network: the figure is
the server's work, HTML rendered). For comparison it also times reading the same page's cells
the way the grid read them before the paged store queries (every task instance of each shown
run, filtered in Python).

    .venv/bin/python -m benchmarks.grid_page [--tasks 5000] [--runs 100] [--repeat 10]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import httpx

from asyncflow import DAG
from asyncflow.engine.engine import Engine
from asyncflow.operators import EmptyOperator
from asyncflow.records import DagRun, DagRunType
from asyncflow.states import DagRunState, TaskState
from asyncflow.store.base import NewRun, TIRow, WriteBatch, run_row
from asyncflow.store.sqlite import SQLiteStore
from asyncflow.web.app import create_app
from asyncflow.web.pages import RUNS_PER_PAGE, TASKS_PER_PAGE

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def wide_dag(tasks: int) -> DAG:
    with DAG("wide", schedule=None, start_date=T0) as dag:
        head = EmptyOperator(task_id="head")
        for i in range(tasks - 1):
            head >> EmptyOperator(task_id=f"t{i:05d}")
    return dag


async def seed(database: Path, dag: DAG, runs: int) -> None:
    store = SQLiteStore(database)
    await store.open()
    try:
        for n in range(runs):
            when = T0 + timedelta(days=n)
            run = DagRun("wide", f"r{n:04d}", when, when, when + timedelta(days=1),
                         DagRunType.MANUAL, DagRunState.SUCCESS, {}, when, when, when)  # fmt: skip
            tis = [TIRow(TaskState.SUCCESS.value, 1, 1, None, None, None, None, None, 0, "wide",
                         run.run_id, task_id, -1) for task_id in dag.task_dict]  # fmt: skip
            await store.write(WriteBatch(new_runs=[NewRun(run_row(run), tis)]))
    finally:
        await store.close()


async def measure(database: Path, dag: DAG, repeat: int) -> None:
    async with Engine(dags=[dag], database=database, run_schedules=False) as engine:
        app = create_app(engine, token=None)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://grid") as client:
            for label, query in (("first page", ""), ("last page", "?offset=75&task_offset=4800")):
                times = []
                for _ in range(repeat):
                    started = time.perf_counter()
                    response = await client.get("/dags/wide" + query)
                    times.append(time.perf_counter() - started)
                    assert response.status_code == 200, response.text[:500]
                cells = response.text.count('class="cell')
                print(f"grid {label}: median {statistics.median(times) * 1000:.1f} ms, "
                      f"max {max(times) * 1000:.1f} ms ({len(response.content) // 1024} KiB, "
                      f"{cells} cells)")
        store = engine.store
        shown = {t.task_id for t in dag.topological_sort()[:TASKS_PER_PAGE]}
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            for run in await store.get_dag_runs("wide", limit=RUNS_PER_PAGE):
                cells = [ti for ti in await store.get_task_instances("wide", run.run_id)
                         if ti.task_id in shown]  # fmt: skip
            times.append(time.perf_counter() - started)
        print(f"before (whole runs read, filtered in Python), cells only: median "
              f"{statistics.median(times) * 1000:.1f} ms")
        del cells


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    dag = wide_dag(args.tasks)
    with tempfile.TemporaryDirectory() as tmp:
        database = Path(tmp) / "grid.db"
        started = time.perf_counter()
        anyio.run(seed, database, dag, args.runs)
        print(f"{args.tasks} tasks x {args.runs} runs seeded in "
              f"{time.perf_counter() - started:.1f} s; {RUNS_PER_PAGE} runs x {TASKS_PER_PAGE} "
              "tasks a page")  # fmt: skip
        anyio.run(measure, database, dag, args.repeat)


if __name__ == "__main__":
    main()
