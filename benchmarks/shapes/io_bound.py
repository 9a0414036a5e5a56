"""`io`: N independent tasks that each await `anyio.sleep(sleep_s)`: wall time from trigger to
finish, and the concurrency achieved (the most tasks inside their sleep at once, counted by
the tasks themselves). The ideal is one sleep: every task waits at the same time."""

from __future__ import annotations

import anyio

from asyncflow import task
from benchmarks.shapes.common import new_dag, run_once


async def measure(
    n: int, sleep_s: float, parallelism: int | None, cpython_gc: bool = False
) -> dict[str, float]:
    inside = {"now": 0, "most": 0}

    @task
    async def sleeper() -> None:
        inside["now"] += 1
        inside["most"] = max(inside["most"], inside["now"])
        await anyio.sleep(sleep_s)
        inside["now"] -= 1

    with new_dag("io", parallelism) as dag:
        for i in range(n):
            sleeper.override(task_id=f"t{i}")()
    timed = await run_once(dag, parallelism=parallelism, cpython_gc=cpython_gc)
    return {
        "wall_s": timed.wall_s,
        "max_concurrency": inside["most"],
        "overhead_s": timed.wall_s - sleep_s,
        "tis_per_s": n / timed.wall_s,
    }
