"""`chain`: N no-op tasks in a line; task instances per second from trigger to finish.

Nothing can be batched: every hop is an outcome, a durable commit, and the next start. This is
the per-transition latency of the scheduler loop and the store, end to end."""

from __future__ import annotations

from benchmarks.shapes.common import Durability, chain_dag, run_once, throughput


async def measure(n: int, parallelism: int, durability: Durability = "normal") -> dict[str, float]:
    dag = chain_dag(n, width=parallelism)
    timed = await run_once(dag, parallelism=parallelism, durability=durability)
    return throughput(dag, timed)
