"""Following a run while it goes: task instances counted by state, a bar of the finished ones.

On a terminal (stderr) a live `rich` progress bar; elsewhere (a pipe, a log, a test) a line to
stderr when the counts changed, at most one a second and the last one always, so that a
5,000-task run shows how far it is without 20,000 lines.

`EventCounts` keeps the counts from the engine's events (an in-process engine: `dags test`,
`dags backfill`); `counts_of` from task instances read back (a run followed in the database)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from asyncflow.records import TaskInstance

#: states in the order a task instance goes through them, for the counts line
_ORDER = ("none", "scheduled", "queued", "running", "up_for_retry", "up_for_reschedule",
          "deferred", "success", "skipped", "failed", "upstream_failed", "removed")  # fmt: skip
_DONE = frozenset({"success", "skipped", "failed", "upstream_failed", "removed"})


def counts_of(tis: Iterable[TaskInstance]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for ti in tis:
        counts[ti.state.value] = counts.get(ti.state.value, 0) + 1
    return counts


def counts_text(counts: Mapping[str, int]) -> str:
    shown = [f"{counts[s]} {s}" for s in _ORDER if counts.get(s)]
    return ", ".join(shown) or "no task instances yet"


class Progress:
    """`update(label, counts, total)` as often as you like; `close()` at the end."""

    def __init__(self, total: int, stream: Any = None, interval: float = 1.0) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.total = total
        #: without a terminal: seconds between two lines at least (the last one always shows)
        self.interval = interval
        self._printed = -interval
        self._pending: str | None = None
        self._last = ""
        self._live: Any = None
        self._task: Any = None
        if _isatty(self.stream):
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as Bar

            self._live = Bar(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TextColumn("{task.fields[counts]}"),
                console=Console(file=self.stream), transient=False,
            )  # fmt: skip
            self._live.start()
            self._task = self._live.add_task("", total=total, counts="")

    def update(self, label: str, counts: Mapping[str, int]) -> None:
        done = sum(n for state, n in counts.items() if state in _DONE)
        text = counts_text(counts)
        if self._live is not None:
            self._live.update(self._task, description=label, completed=done, counts=text)
            return
        line = f"{label}: {done}/{self.total} done ({text})"
        self._pending = line if line != self._last else None
        now = time.monotonic()
        if self._pending is not None and now - self._printed >= self.interval:
            self._flush(now)

    def _flush(self, now: float) -> None:
        if self._pending is not None:
            print(self._pending, file=self.stream, flush=True)
            self._last, self._pending, self._printed = self._pending, None, now

    def set_total(self, total: int) -> None:
        self.total = total
        if self._live is not None:
            self._live.update(self._task, total=total)

    def close(self) -> None:
        """Stop the bar, or print the last counts if they were held back."""
        if self._live is not None:
            self._live.stop()
            self._live = None
        self._flush(time.monotonic())


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class EventCounts:
    """Task instances counted by state, kept from the engine's events (no reads): feed it
    every event with `__call__`; it redraws `progress` when a task's state changed."""

    def __init__(self, progress: Progress, label: str, per_run: int | None = None) -> None:
        self.progress = progress
        self.label = label
        #: tasks per run: the total grows with the runs (a backfill creates them as it goes)
        self.per_run = per_run
        self.states: dict[tuple[str, str, str, int], str] = {}
        self.runs: dict[tuple[str, str], str] = {}

    def __call__(self, event: object) -> None:
        from asyncflow.engine.events import DagRunStateChanged, TaskStateChanged

        if isinstance(event, TaskStateChanged):
            key = (event.dag_id, event.run_id, event.task_id, event.map_index)
            self.states[key] = event.new_state.value
        elif isinstance(event, DagRunStateChanged):
            self.runs[(event.dag_id, event.run_id)] = event.new_state.value
            if self.per_run is not None:
                self.progress.set_total(self.per_run * len(self.runs))
        else:
            return
        self.redraw()

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for state in self.states.values():
            counts[state] = counts.get(state, 0) + 1
        return counts

    def redraw(self) -> None:
        label = self.label
        if len(self.runs) > 1:
            done = sum(1 for s in self.runs.values() if s in ("success", "failed"))
            label = f"{label} ({done}/{len(self.runs)} runs done)"
        self.progress.update(label, self.counts())
