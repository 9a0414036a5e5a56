"""The peers' shapes as an Airflow DAG file, for `airflow dags test SHAPE`.

Read by Airflow from a temporary dags folder; the shape comes from the environment
(BENCH_SHAPE, BENCH_N, BENCH_SLEEP_S), and each task appends "start end" (time.time()) to
BENCH_MARKS: Airflow may run a task in another process, so the file is the shared record.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

from airflow.sdk import DAG, task

SHAPE = os.environ.get("BENCH_SHAPE", "fanout")
N = int(os.environ.get("BENCH_N", "10"))
SLEEP_S = float(os.environ.get("BENCH_SLEEP_S", "0"))
MARKS = os.environ.get("BENCH_MARKS", os.devnull)


@task
def step() -> None:
    start = time.time()
    if SLEEP_S:
        time.sleep(SLEEP_S)  # Airflow's tasks are synchronous
    with open(MARKS, "a") as marks:
        marks.write(f"{start} {time.time()}\n")


with DAG(
    SHAPE,
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_tasks=10_000,
    max_active_runs=1,
) as dag:
    if SHAPE == "fanout":
        root = step.override(task_id="root")()
        join = step.override(task_id="join")()
        root >> [step.override(task_id=f"t{i}")() for i in range(N)] >> join
    elif SHAPE == "chain":
        previous = None
        for i in range(N):
            current = step.override(task_id=f"t{i}")()
            if previous is not None:
                previous >> current
            previous = current
    else:  # io: N independent sleepers
        for i in range(N):
            step.override(task_id=f"t{i}")()
