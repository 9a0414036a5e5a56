"""The loop monitor: sees when something holds the event loop, and names it.

Every task, the scheduler, the watchdog and the web server share one event loop. Synchronous
code in an `async def` task (`time.sleep`, a blocking HTTP client, a long computation) holds
the loop for as long as it runs: nothing else moves. Python cannot interrupt it; what we can do
is see it and say who it was, so that the task can be fixed (made a `def` task, which runs in a
thread, or made to await).

How: a callback on the loop beats every `beat` seconds (`loop.call_later`), writing the time.
A thread watches the beats. When none came for `threshold` seconds, the loop is held: the
thread notes which asyncio task is running on the loop at that moment (the runner registers
each attempt's task in `attempts`, see `holding`) and where the loop's thread is in the code
(`sys._current_frames`). When the loop beats again, the stall is over: one warning names the
task that held the loop, for how long and where, and `statistics()` counts it (`loop_stalls`,
`loop_stall_longest`). A stall seen only after it ended (the thread was itself held up) is
still counted and reported, from the beat's lateness, without a name.

Real time, not the engine's clock: a FakeClock moves scheduled time, not how long the loop was
held.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from asyncflow.logs import get_logger

__all__ = ["DEFAULT_THRESHOLD", "LoopMonitor", "attempts", "holding"]

log = get_logger("asyncflow.monitor")

DEFAULT_THRESHOLD = 0.5
"""Seconds the loop may go without a beat before it counts as held."""

#: asyncio task -> the attempt it runs (a RuntimeTaskInstance: dag_id, task_id, run_id...)
attempts: dict[asyncio.Task[Any], Any] = {}


def describe(ti: Any) -> str:
    """`dag.task (run R, try N)` for a task instance."""
    return (
        f"{getattr(ti, 'dag_id', '?')}.{getattr(ti, 'task_id', '?')} "
        f"(run {getattr(ti, 'run_id', '?')}, try {getattr(ti, 'try_number', '?')})"
    )


@contextlib.contextmanager
def holding(ti: Any) -> Iterator[None]:
    """Mark the current asyncio task as running the attempt of `ti` while the block runs, so
    that a stall it causes is pinned on it."""
    try:
        task = asyncio.current_task()
    except RuntimeError:  # not in an asyncio loop (trio): nothing to name
        task = None
    if task is None:
        yield
        return
    attempts[task] = ti
    try:
        yield
    finally:
        attempts.pop(task, None)


@dataclass(slots=True)
class _Held:
    """What the watching thread saw while the loop was held: each holder (sampled once a beat:
    several ready tasks may hold it one after another), and where the first sample found it."""

    since: float
    seconds: dict[str, float] = field(default_factory=dict)  # holder -> about how long
    where: dict[str, str | None] = field(default_factory=dict)

    def sample(self, holder: str | None, where: str | None, now: float, beat: float) -> None:
        name = holder or "?"
        # the first sample stands for the time since the last beat, each later one for a beat
        share = beat if self.seconds else now - self.since
        self.seconds[name] = self.seconds.get(name, 0.0) + share
        self.where.setdefault(name, where)


class LoopMonitor:
    """Watches the running loop between `start()` and `stop()`; `threshold=None`: never."""

    def __init__(self, threshold: float | None = DEFAULT_THRESHOLD, beat: float = 0.1) -> None:
        if threshold is not None and threshold <= 0:
            raise ValueError(f"the loop stall threshold must be positive, got {threshold!r}")
        self.enabled = threshold is not None
        self.threshold = threshold or DEFAULT_THRESHOLD
        self.beat = min(beat, self.threshold / 2)
        self.stalls = 0
        self.longest = 0.0
        self._last = time.monotonic()
        self._held: _Held | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._handle: asyncio.TimerHandle | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start beating on the running loop and watching from a thread (asyncio only)."""
        if not self.enabled:
            return
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._loop_thread = threading.get_ident()
        self._last = time.monotonic()
        self._handle = self._loop.call_later(self.beat, self._on_beat)
        self._thread = threading.Thread(
            target=self._watch, name="asyncflow-loop-monitor", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)
            self._thread = None

    def statistics(self) -> dict[str, Any]:
        return {"loop_stalls": self.stalls, "loop_stall_longest": round(self.longest, 3)}

    # -- on the loop -----------------------------------------------------------------------------
    def _on_beat(self) -> None:
        now = time.monotonic()
        gap = now - self._last - self.beat  # how late this beat came
        held, self._held = self._held, None
        self._last = now
        assert self._loop is not None
        self._handle = self._loop.call_later(self.beat, self._on_beat)
        seconds = now - held.since if held is not None else gap
        if seconds <= self.threshold:
            return
        self.stalls += 1
        self.longest = max(self.longest, seconds)
        holders = sorted(held.seconds.items(), key=lambda kv: -kv[1]) if held else []
        if len(holders) == 1:
            by = f" by task {holders[0][0]}"
        elif holders:  # several held it in turn: about how long each (one sample a beat)
            by = " by tasks " + ", ".join(f"{h} (~{s:.1f} s)" for h, s in holders)
        else:
            by = ""
        log.warning(
            f"the event loop was held for {seconds:.1f} s{by}: synchronous code in an "
            "`async def` stops every other task, the scheduler and the watchdog; make it a "
            "`def` task (it runs in a thread) or await instead",
            seconds=round(seconds, 3),
            task=holders[0][0] if holders else None,
            where=held.where.get(holders[0][0]) if held and holders else None,
        )

    # -- in the watching thread ------------------------------------------------------------------
    def _watch(self) -> None:
        while not self._stop.is_set():
            due = self._last + self.beat + self.threshold
            wait = due - time.monotonic()
            if wait > 0:
                self._stop.wait(wait)
                continue
            last = self._last
            held = self._held or _Held(last)
            held.sample(*self._who(), time.monotonic(), self.beat)
            if self._last == last:  # still held (no beat came while we looked)
                self._held = held
            self._stop.wait(self.beat)

    def _who(self) -> tuple[str | None, str | None]:
        """The attempt running on the loop, and where the loop's thread is in the code."""
        holder = None
        try:
            task = asyncio.current_task(self._loop)
        except RuntimeError:
            task = None
        if task is not None:
            ti = attempts.get(task)
            holder = describe(ti) if ti is not None else f"{task.get_name()} (no task attempt)"
        frame = sys._current_frames().get(self._loop_thread)
        return holder, _where(frame)


def _where(frame: FrameType | None) -> str | None:
    """The innermost frame outside the standard library, as `file:line in function`."""
    library = str(Path(contextlib.__file__).parent)
    while frame is not None:
        code = frame.f_code
        if not code.co_filename.startswith(library):
            return f"{code.co_filename}:{frame.f_lineno} in {code.co_name}"
        frame = frame.f_back
    return None
