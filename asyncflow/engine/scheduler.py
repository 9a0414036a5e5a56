"""The scheduler: the one decision-maker. One coroutine that loops over four steps:

1. wait until a worker reports, a command arrives, or the earliest timer is due;
2. apply everything that arrived (attempt outcomes, commands, due timers) to the mirror
   (engine/mirror.py), deciding downstream readiness at once by trigger rules;
3. dispatch ready task instances into free slots (parallelism, DAG caps, pools, priority);
4. commit every change of this burst in one transaction, and only then publish events, start
   workers and answer callers.

The scheduler owns the loop (inbox, wake-ups, commit, workers); the mirror owns the state.
Workers never touch state: they run one attempt and put its outcome in the inbox.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import anyio

from asyncflow.clock import Clock
from asyncflow.engine.burst import Burst, Reply, Start
from asyncflow.engine.context import DEFAULT_MAX_XCOM_BYTES
from asyncflow.engine.events import EventBus
from asyncflow.engine.live import LiveTI
from asyncflow.engine.mirror import Mirror
from asyncflow.engine.runner import Attempt, Ending, run_attempt, run_callbacks
from asyncflow.engine.tasklog import TaskLog, attempt_log_path, current_log
from asyncflow.engine.triggerer import Triggerer
from asyncflow.exceptions import StoreError
from asyncflow.logs import get_logger
from asyncflow.models.baseoperator import Context
from asyncflow.models.mapped import DEFAULT_MAX_MAP_LENGTH
from asyncflow.store.base import Store
from asyncflow.triggers.base import runtime_var

log = get_logger("asyncflow.scheduler")
T = TypeVar("T")


class Scheduler:
    def __init__(
        self,
        *,
        store: Store,
        bus: EventBus,
        clock: Clock,
        parallelism: int,
        pools: dict[str, int],
        logs_folder: Path | None = None,
        max_lost_attempts: int = 3,
        max_xcom_bytes: int = DEFAULT_MAX_XCOM_BYTES,
        kind_slots: dict[str, int] | None = None,
    ) -> None:
        self.store = store
        self.max_xcom_bytes = max_xcom_bytes
        self.max_map_length = DEFAULT_MAX_MAP_LENGTH
        self.logs_folder = logs_folder
        self.bus = bus
        self.clock = clock
        self.mirror = Mirror(
            bus=bus, parallelism=parallelism, pools=pools, max_lost_attempts=max_lost_attempts,
            kind_slots=kind_slots,
        )  # fmt: skip
        #: set when the loop died: every caller waiting on it is told
        self.crashed: BaseException | None = None
        self._replies: set[Reply] = set()
        self.inbox: deque[Callable[[datetime], None]] = deque()
        self._wake = anyio.Event()
        self._tg: anyio.abc.TaskGroup | None = None
        self.workers: set[asyncio.Task[None]] = set()
        self._retry_backoff = 0.05
        #: hooks the engine adds: called in each step before dispatch (schedules)
        self.step_hooks: list[Callable[[datetime], None]] = []
        #: runs the triggers of deferred task instances, in this loop (engine/triggerer.py)
        self.triggerer = Triggerer(mirror=self.mirror, clock=clock, bus=bus, store=store,
                                   report=self._report, logs_folder=logs_folder)  # fmt: skip
        self.mirror.triggers = self.triggerer
        self.steps = 0
        self.commits = 0
        #: seconds spent in steps and in committed writes, summed (with the counts: averages)
        self.step_seconds = 0.0
        self.commit_seconds = 0.0
        self.commit_failures = 0

    # -- talking to the loop -----------------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    def _report(self, fn: Callable[[datetime], None]) -> None:
        """A change for the next step (a trigger fired)."""
        self.inbox.append(fn)
        self._wake.set()

    def call(self, fn: Callable[[datetime], T]) -> Reply:
        """Run `fn(now)` inside the loop; the reply resolves after its changes commit."""
        if self.crashed is not None:
            raise RuntimeError("the scheduler has stopped after an error") from self.crashed
        reply = Reply()
        self._replies.add(reply)

        def answer() -> None:
            self._replies.discard(reply)
            reply.done.set()

        def command(now: datetime) -> None:
            try:
                reply.value = fn(now)
            except Exception as exc:
                reply.error = exc
                answer()
                return
            self.mirror.burst.after.append(answer)

        self.inbox.append(command)
        self._wake.set()
        return reply

    # -- the loop ---------------------------------------------------------------------------
    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        async with anyio.create_task_group() as tg:
            self._tg = tg
            self.triggerer.bind(tg)
            task_status.started()
            while True:
                if not self.inbox:
                    await self.clock.wait(self._wake, self.mirror.next_deadline)
                    if self._wake.is_set():
                        self._wake = anyio.Event()
                self.step()
                await self.commit()

    def crash(self, exc: BaseException) -> None:
        """The loop died: wake every caller and waiter so that none hangs."""
        self.crashed = exc
        log.critical("scheduler stopped after an error", error=repr(exc))
        for reply in self._replies:
            reply.error = RuntimeError(f"the scheduler has stopped after an error: {exc!r}")
            reply.done.set()
        self._replies.clear()
        for run in self.mirror.runs.values():
            for waiter in run.waiters:
                waiter.set()

    def step(self) -> None:
        began = time.perf_counter()
        now = self.clock.now()
        self.steps += 1
        mirror = self.mirror
        inbox = self.inbox
        while inbox:
            inbox.popleft()(now)
        mirror.fire_timers(now)
        for hook in self.step_hooks:
            hook(now)
        mirror.start_queued_runs(now)
        mirror.dispatch(now)
        self.step_seconds += time.perf_counter() - began

    async def commit(self) -> None:
        """Write the step's burst in one transaction; then act on it."""
        mirror = self.mirror
        burst, mirror.burst = mirror.burst, Burst()
        if burst.writes:
            began = time.perf_counter()
            try:
                result = await self.store.write(burst.batch())
            except StoreError as exc:
                mirror.burst = burst  # nothing new was added while we awaited: retry it whole
                self.commit_failures += 1
                log.error("commit failed; nothing was acted on, retrying", error=str(exc),
                          retry_in=self._retry_backoff)  # fmt: skip
                await anyio.sleep(self._retry_backoff)
                self._retry_backoff = min(self._retry_backoff * 2, 5.0)
                self._wake.set()
                return
            burst.committed()
            self._retry_backoff = 0.05
            self.commits += 1
            self.commit_seconds += time.perf_counter() - began
            for dag_id, run_id in result.conflicts:
                mirror.drop_conflicting_run(dag_id, run_id)
        if burst.events:
            self.bus.publish(burst.events)
        if burst.starts:
            # Workers are plain asyncio tasks: anyio's start_soon costs ~30 us a task, more
            # than the rest of a task instance's life. Each attempt still runs inside its own
            # anyio CancelScope, so cancelling one (timeout, clear, shutdown) is structured.
            spawn = asyncio.get_running_loop().create_task
            workers = self.workers
            for start in burst.starts:
                worker = start.ti.worker = spawn(self._work(start))
                workers.add(worker)
                worker.add_done_callback(workers.discard)
        for callbacks, context, where in burst.callbacks:
            self._spawn_callbacks(callbacks, context, where)
        for fn in burst.after:
            fn()

    async def wait_idle(self) -> None:
        """Return once no task instance holds a slot."""
        while (idle := self.mirror.idle_event()) is not None:
            await idle.wait()

    # -- workers ----------------------------------------------------------------------------------
    async def _work(self, start: Start) -> None:
        """Run one attempt and report it. Whatever happens here (a log file that cannot be
        written, a bug of ours), the attempt is reported: a task never stays `running`."""
        ti, context, rti, resume = start
        runtime_var.set(self.triggerer.runtime)  # triggers built here read the engine's clock
        rti.engine_max_xcom_bytes = self.max_xcom_bytes
        rti.engine_max_map_length = self.max_map_length
        attempt = Attempt(Ending.FAILED, "internal error: the attempt did not report")
        task_log = self._open_log(ti, rti.try_number)
        try:
            try:
                attempt = await run_attempt(ti.task, context, rti, resume)
            except asyncio.CancelledError:
                # The mirror stops an attempt (timeout, clear, mark, shutdown) by cancelling
                # its worker task and saying why: that is an outcome to report. A cancel
                # without a reason comes from outside (the loop going away): not ours.
                if ti.cancel_reason is None:
                    raise
                current = asyncio.current_task()
                if current is not None:
                    current.uncancel()
                ending = Ending.INTERRUPTED if ti.interrupted else Ending.FAILED
                attempt = Attempt(ending, ti.cancel_reason)
            except Exception as exc:  # a bug of ours, not of the task: still report it
                log.exception("worker failed", ti=ti.key)
                attempt = Attempt(Ending.FAILED, f"internal error: {exc!r}")
            if task_log is not None and attempt.error:
                task_log.line(f"attempt ended {attempt.ending.value}: {attempt.error}")
        finally:
            if task_log is not None:
                task_log.close()
            ti.interrupted = False
            self.inbox.append(
                partial(self.mirror.finish_attempt, ti, rti.try_number, attempt, context)
            )
            self._wake.set()

    def _open_log(self, ti: LiveTI, try_number: int) -> TaskLog | None:
        if self.logs_folder is None:
            return None
        run = ti.run
        task_log = TaskLog(
            attempt_log_path(
                self.logs_folder, run.dag_id, run.run_id, ti.task_id, try_number, ti.map_index
            )
        )
        current_log.set(task_log)
        return task_log

    def _spawn_callbacks(self, callbacks: list[Any], context: Context, where: str) -> None:
        if self._tg is not None:
            self._tg.start_soon(partial(run_callbacks, callbacks, context, what="callback",
                                        where=where))  # fmt: skip

    # -- introspection -------------------------------------------------------------------------
    def statistics(self) -> dict[str, float]:
        return {
            **self.mirror.statistics(),
            **self.triggerer.statistics(),
            "steps": self.steps,
            "commits": self.commits,
            "step_seconds": self.step_seconds,
            "commit_seconds": self.commit_seconds,
            "commit_failures": self.commit_failures,
        }
