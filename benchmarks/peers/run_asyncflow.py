"""The peers' shapes with asyncflow, as a whole process like the others: import, build the DAG,
an engine on a fresh on-disk SQLite database (durability "normal"), uvloop, one run.

    python run_asyncflow.py SHAPE N SLEEP_S MARKS_FILE
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import anyio

from asyncflow import DAG, Engine, task

WIDE = 10_000
marks: list[tuple[float, float]] = []


def build(shape: str, n: int, sleep_s: float) -> DAG:
    @task
    async def step() -> None:
        start = time.time()
        if sleep_s:
            await anyio.sleep(sleep_s)
        marks.append((start, time.time()))

    start_date = datetime(2024, 1, 1, tzinfo=UTC)
    with DAG(shape, schedule=None, start_date=start_date, max_active_tasks=WIDE) as dag:
        if shape == "fanout":
            root = step.override(task_id="root")()
            join = step.override(task_id="join")()
            root >> [step.override(task_id=f"t{i}")() for i in range(n)] >> join
        elif shape == "chain":
            previous = None
            for i in range(n):
                current = step.override(task_id=f"t{i}")()
                if previous is not None:
                    previous >> current
                previous = current
        else:
            for i in range(n):
                step.override(task_id=f"t{i}")()
    return dag


async def run(dag: DAG) -> None:
    with tempfile.TemporaryDirectory(prefix="asyncflow-peers-") as folder:
        database = Path(folder) / "asyncflow.db"
        async with Engine(
            dags=[dag], database=database, parallelism=WIDE, run_schedules=False
        ) as engine:
            triggered = await engine.trigger_dag(dag.dag_id)
            await engine.wait_for_run(dag.dag_id, triggered.run_id)


def main() -> None:
    shape, n, sleep_s, path = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    anyio.run(run, build(shape, n, sleep_s), backend_options={"use_uvloop": True})
    with open(path, "w") as out:
        out.writelines(f"{start} {end}\n" for start, end in marks)


if __name__ == "__main__":
    main()
