"""The peers' shapes as a Prefect 3 flow (ephemeral mode: no server configured, so Prefect
starts its own on a temporary SQLite database under PREFECT_HOME). Async tasks awaited together
with `asyncio.gather` in the flow's own loop: Prefect's fastest way to run many (`.submit()`
sends each to a thread pool; measured here 33.9 s for the 1,000-task fan-out and 41.4 s for the
1,000 sleepers, against the figures in README.md).

    python run_prefect.py SHAPE N SLEEP_S MARKS_FILE
"""

from __future__ import annotations

import asyncio
import sys
import time

from prefect import flow, task

marks: list[tuple[float, float]] = []


@task
async def step(sleep_s: float = 0.0) -> None:
    start = time.time()
    if sleep_s:
        await asyncio.sleep(sleep_s)
    marks.append((start, time.time()))


@flow
async def fanout(n: int) -> None:
    await step()
    await asyncio.gather(*(step() for _ in range(n)))
    await step()


@flow
async def chain(n: int) -> None:
    for _ in range(n):
        await step()


@flow
async def io(n: int, sleep_s: float) -> None:
    await asyncio.gather(*(step(sleep_s) for _ in range(n)))


def main() -> None:
    shape, n, sleep_s, path = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    if shape == "fanout":
        asyncio.run(fanout(n))
    elif shape == "chain":
        asyncio.run(chain(n))
    else:
        asyncio.run(io(n, sleep_s))
    with open(path, "w") as out:
        out.writelines(f"{start} {end}\n" for start, end in marks)


if __name__ == "__main__":
    main()
