"""`bash`: N independent Bash tasks (each `sleep`s briefly) with the engine's default bounds:
the most subprocess tasks running at once (sampled every 2 ms from `statistics()`, and from
the task count in `running`) against the engine's `process_slots`, and the wall time."""

from __future__ import annotations

from typing import Any

import anyio

from asyncflow.operators import BashOperator
from benchmarks.shapes.common import new_dag, run_once


async def measure(n: int, sleep_s: float) -> dict[str, float]:
    peak = {"running": 0, "slots": 0}

    async def sample(engine: Any) -> None:
        peak["slots"] = engine.slots.process
        while True:
            peak["running"] = max(peak["running"], engine.statistics()["running_process"])
            await anyio.sleep(0.002)

    with new_dag("bash", None) as dag:
        for i in range(n):
            BashOperator(task_id=f"b{i}", bash_command=f"sleep {sleep_s}")
    timed = await run_once(dag, parallelism=None, during=sample)
    return {
        "wall_s": timed.wall_s,
        "max_subprocesses": peak["running"],
        "process_slots": peak["slots"],
        "over_the_bound": max(0, peak["running"] - peak["slots"]),
    }
