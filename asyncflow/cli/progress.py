"""Following a run while it goes: task instances counted by state, a bar of the finished ones.

On a terminal (stderr) a live `rich` progress bar; elsewhere (a pipe, a log, a test) one line
to stderr each time the counts change, so that a 5,000-task run shows how far it is without
5,000 lines."""

from __future__ import annotations

import sys
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

    def __init__(self, total: int, stream: Any = None) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.total = total
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
        if line != self._last:
            print(line, file=self.stream, flush=True)
            self._last = line

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
