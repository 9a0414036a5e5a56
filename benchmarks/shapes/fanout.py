"""`fanout`: root -> N no-op tasks -> join; task instances per second from trigger to finish.

Shows the cost per task instance when the scheduler can batch: a wide burst of ready tasks,
their outcomes arriving together, committed in few large transactions."""

from __future__ import annotations

from benchmarks.shapes.common import Durability, fanout_dag, run_once, throughput


async def measure(
    n: int,
    parallelism: int,
    durability: Durability = "normal",
    empty: bool = False,
    cpython_gc: bool = False,
) -> dict[str, float]:
    dag = fanout_dag(n, width=parallelism, empty=empty)
    timed = await run_once(
        dag, parallelism=parallelism, durability=durability, cpython_gc=cpython_gc
    )
    return throughput(dag, timed)
