"""How many task instances run at once, by where they do their work (`BaseOperator.runs_in`).

An `async def` task costs a coroutine: thousands wait at once for almost nothing, so the only
bound on them is `parallelism`. Sync code needs a worker thread, and a subprocess needs a
share of the machine's CPUs: each kind has its own bound, below `parallelism`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

#: task instances at once in the whole engine (coroutines are cheap: the bound is high)
DEFAULT_PARALLELISM = 10_000


def cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_thread_slots() -> int:
    """Sync tasks at once: Python's own default for a thread pool, min(32, CPUs + 4)."""
    return min(32, cpus() + 4)


def default_process_slots() -> int:
    """Subprocess tasks at once: two per CPU (most shell tasks wait on I/O), at least 4."""
    return max(4, 2 * cpus())


@dataclass(frozen=True, slots=True)
class Slots:
    parallelism: int = DEFAULT_PARALLELISM
    thread: int = 0  # 0: the default for this machine
    process: int = 0

    def resolved(self) -> Slots:
        return Slots(
            self.parallelism,
            self.thread or default_thread_slots(),
            self.process or default_process_slots(),
        )

    def by_kind(self) -> dict[str, int]:
        """The bound of each kind below parallelism (`loop` has none of its own)."""
        return {"thread": self.thread, "process": self.process}
