"""`scale`: one DAG run of N no-op tasks (a fan-out): peak RSS of the whole process, and bytes
per task instance = (peak RSS - RSS after imports) / N, of which the DAG definition (the N
operator objects, built before the engine starts) takes `dag_bytes_per_task`."""

from __future__ import annotations

from benchmarks.shapes.common import current_rss_bytes, fanout_dag, peak_rss_bytes, run_once


async def measure(n: int, parallelism: int) -> dict[str, float]:
    after_imports = current_rss_bytes()
    dag = fanout_dag(n, width=parallelism)
    with_dag = current_rss_bytes()
    timed = await run_once(dag, parallelism=parallelism)
    peak = peak_rss_bytes()
    return {
        "peak_rss_mib": peak / 2**20,
        "rss_after_imports_mib": after_imports / 2**20,
        "bytes_per_ti": (peak - after_imports) / n,
        "dag_bytes_per_task": (with_dag - after_imports) / n,
        "wall_s": timed.wall_s,
        "tis_per_s": len(dag.task_dict) / timed.wall_s,
    }
