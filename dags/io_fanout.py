"""Why asyncflow exists: an IO-bound fan-out over a few thousand small inputs.

Each of 2,000 inputs is "fetched" by its own async task that awaits a simulated network call
(`anyio.sleep`, 5-50 ms): no thread, no process per task, so the daemon runs hundreds of them
at once on one event loop. The `api` pool (declared in `dags/asyncflow.toml`, which `make run`
passes with --config) caps how many call the "API" at the same time. A few inputs are flaky:
their first attempt fails like a timeout and the retry succeeds. A final task reduces the 2,000
results to one summary.

Try it: `asyncflow dags trigger io_fanout`, then `asyncflow dags list-runs io_fanout` and
`asyncflow tasks states-for-dag-run io_fanout <run_id> --output json | jq length`.
"""

import random
from datetime import datetime, timedelta

import anyio

from asyncflow import DAG, task

N_INPUTS = 2_000
FLAKY = {7, 700, 1_400}  # these fail once, then succeed on the retry


@task(pool="api", retries=2, retry_delay=timedelta(seconds=1))
async def fetch(item: int, ti=None) -> int:
    await anyio.sleep(random.uniform(0.005, 0.05))  # the network call
    if item in FLAKY and ti.try_number == 1:
        raise ConnectionError(f"input {item}: simulated timeout, retried")
    return item * item


@task
def summarize(results: list[int]) -> dict[str, int]:
    summary = {"inputs": len(results), "total": sum(results), "largest": max(results)}
    print(f"summary: {summary}")
    return summary


with DAG(
    dag_id="io_fanout",
    start_date=datetime(2024, 1, 1),
    schedule="@hourly",
    catchup=False,  # only the latest hour, then one run an hour
    max_active_runs=1,
    max_active_tasks=500,
    tags=["example", "io"],
) as dag:
    summarize([fetch.override(task_id=f"fetch_{i:04d}")(i) for i in range(N_INPUTS)])
