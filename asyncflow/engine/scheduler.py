"""The scheduler: the one decision-maker. One coroutine that loops over four steps:

1. wait until a worker reports, a command arrives, or the earliest timer is due;
2. apply everything that arrived (attempt outcomes, commands, due timers) to the in-memory
   mirror, deciding downstream readiness at once by trigger rules;
3. dispatch ready task instances into free slots (parallelism, DAG caps, pools, priority);
4. commit every change of this burst in one transaction, and only then publish events, start
   workers and answer callers.

Workers never touch state: they run one attempt and put its outcome in the inbox.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import Callable, Hashable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import anyio
import structlog

from asyncflow.clock import Clock
from asyncflow.engine import limits, operations
from asyncflow.engine.burst import Burst, Reply
from asyncflow.engine.context import RuntimeTaskInstance, run_context, task_context
from asyncflow.engine.events import DagRunStateChanged, EventBus, TaskStateChanged
from asyncflow.engine.live import LiveDag, LiveRun, LiveTI
from asyncflow.engine.planner import decide, retry_delay
from asyncflow.engine.runner import Attempt, Ending, run_attempt, run_callbacks
from asyncflow.engine.tasklog import TaskLog, attempt_log_path, current_log
from asyncflow.exceptions import InvalidStateTransition, StoreError
from asyncflow.models.baseoperator import Context
from asyncflow.operators.empty import EmptyOperator
from asyncflow.records import DagRun, DagRunType
from asyncflow.states import (
    RUN_TRANSITIONS,
    TASK_TRANSITIONS,
    DagRunState,
    TaskState,
)
from asyncflow.store.base import Store

log = structlog.get_logger("asyncflow.scheduler")
T = TypeVar("T")

NONE, SCHEDULED, QUEUED, RUNNING = (
    TaskState.NONE, TaskState.SCHEDULED, TaskState.QUEUED, TaskState.RUNNING,
)  # fmt: skip


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
    ) -> None:
        self.store = store
        self.logs_folder = logs_folder
        #: set when the loop died: every caller waiting on it is told
        self.crashed: BaseException | None = None
        self._replies: set[Reply] = set()
        self.bus = bus
        self.clock = clock
        self.parallelism = parallelism
        self.pools = pools
        self.dags: dict[str, LiveDag] = {}
        self.runs: dict[tuple[str, str], LiveRun] = {}
        self.inbox: deque[Callable[[datetime], None]] = deque()
        self._wake = anyio.Event()
        self._seq = itertools.count()
        self._ready: list[tuple[int, int, LiveTI]] = []
        self._blocked: dict[Hashable, list[tuple[int, int, LiveTI]]] = {}
        self._timers: list[tuple[datetime, int, Callable[[datetime], None]]] = []
        self.running = 0
        self.pool_used: dict[str, int] = {}
        self.draining = False  # stop starting task instances and creating runs
        self._tg: anyio.abc.TaskGroup | None = None
        self.workers: set[asyncio.Task[None]] = set()
        self.burst = Burst()  # the changes of the current step
        self._retry_backoff = 0.05
        #: hooks the engine adds: called in each step before dispatch (schedules, adoption)
        self.step_hooks: list[Callable[[datetime], None]] = []
        #: DAGs that finished a run since the last step (a place under max_active_runs freed)
        self.released_dags: set[str] = set()
        self._idle: list[anyio.Event] = []
        self._startable: set[str] = set()  # DAGs that may be able to start a queued run
        self.steps = 0
        self.commits = 0

    # -- talking to the loop -----------------------------------------------------------------
    def wake(self) -> None:
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
            self.burst.after.append(answer)

        self.inbox.append(command)
        self._wake.set()
        return reply

    def at(self, when: datetime, fn: Callable[[datetime], None]) -> None:
        heapq.heappush(self._timers, (when, next(self._seq), fn))

    # -- the loop ---------------------------------------------------------------------------
    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        async with anyio.create_task_group() as tg:
            self._tg = tg
            task_status.started()
            while True:
                if not self.inbox:
                    deadline = self._timers[0][0] if self._timers else None
                    await self.clock.wait(self._wake, deadline)
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
        for run in self.runs.values():
            for waiter in run.waiters:
                waiter.set()

    def step(self) -> None:
        now = self.clock.now()
        self.steps += 1
        inbox = self.inbox
        while inbox:
            inbox.popleft()(now)
        timers = self._timers
        while timers and timers[0][0] <= now:
            heapq.heappop(timers)[2](now)
        for hook in self.step_hooks:
            hook(now)
        self._start_queued_runs(now)
        self._dispatch(now)

    async def commit(self) -> None:
        """Write the step's burst in one transaction; then act on it."""
        burst, self.burst = self.burst, Burst()
        if burst.writes:
            try:
                result = await self.store.write(burst.batch())
            except StoreError as exc:
                self.burst = burst  # nothing new was added while we awaited: retry it whole
                log.error("commit failed; nothing was acted on, retrying", error=str(exc),
                          retry_in=self._retry_backoff)  # fmt: skip
                await anyio.sleep(self._retry_backoff)
                self._retry_backoff = min(self._retry_backoff * 2, 5.0)
                self._wake.set()
                return
            burst.committed()
            self._retry_backoff = 0.05
            self.commits += 1
            for dag_id, run_id in result.conflicts:
                self._drop_conflicting_run(dag_id, run_id)
        if burst.events:
            self.bus.publish(burst.events)
        if burst.starts:
            # Workers are plain asyncio tasks: anyio's start_soon costs ~30 us a task, more
            # than the rest of a task instance's life. Each attempt still runs inside its own
            # anyio CancelScope, so cancelling one (timeout, clear, shutdown) is structured.
            spawn = asyncio.get_running_loop().create_task
            workers = self.workers
            for ti, context, rti in burst.starts:
                worker = spawn(self._work(ti, context, rti))
                workers.add(worker)
                worker.add_done_callback(workers.discard)
        for fn in burst.after:
            fn()

    # -- recording changes ---------------------------------------------------------------------
    def set_state(self, ti: LiveTI, new: TaskState, now: datetime) -> None:
        old = ti.state
        if new not in TASK_TRANSITIONS[old]:
            raise InvalidStateTransition("task instance", ti.key, old, new)
        ti.state = new
        self.burst.mark(ti)
        if self.bus._subscribers:
            run = ti.run
            self.burst.events.append(TaskStateChanged(
                run.dag_id, run.run_id, ti.task_id, -1, ti.try_number, old, new, now,
            ))  # fmt: skip

    def set_run_state(self, run: LiveRun, new: DagRunState, now: datetime, **changes: Any) -> None:
        old = run.record.state
        if new not in RUN_TRANSITIONS[old]:
            raise InvalidStateTransition("DAG run", f"{run.dag_id}/{run.run_id}", old, new)
        run.update(state=new, **changes)
        self.burst.mark_run(run)
        self.burst.events.append(DagRunStateChanged(run.dag_id, run.run_id, old, new, now))

    # -- runs -----------------------------------------------------------------------------------
    def add_run(self, live_dag: LiveDag, record: DagRun, now: datetime) -> LiveRun:
        """A new run, queued; inserted with its task instances in this burst's transaction."""
        run = LiveRun(live_dag.dag, record, live_dag.priorities)
        self.runs[(record.dag_id, record.run_id)] = run
        self.burst.add_run(run)
        self.burst.events.append(
            DagRunStateChanged(record.dag_id, record.run_id, None, record.state, now)
        )
        if live_dag.windows:  # tasks whose start_date/end_date exclude this run are removed
            logical = record.logical_date
            for task_id, (start, end) in live_dag.windows.items():
                if (start and logical < start) or (end and logical > end):
                    self.set_state(run.tis[task_id], TaskState.REMOVED, now)
            run.recount()
        self.queue_run(live_dag, run)
        return run

    def queue_run(self, live_dag: LiveDag, run: LiveRun) -> None:
        """`run` waits (queued, oldest first) for a place under max_active_runs."""
        live_dag.queued.append(run)
        live_dag.queued.sort(key=lambda r: r.record.logical_date)
        self._startable.add(live_dag.dag.dag_id)

    def _drop_conflicting_run(self, dag_id: str, run_id: str) -> None:
        run = self.runs.pop((dag_id, run_id), None)
        if run is None:
            return
        run.conflict = True
        live_dag = self.dags[dag_id]
        if run in live_dag.queued:
            live_dag.queued.remove(run)
        log.warning("run already existed in the store; kept the stored one",
                    dag_id=dag_id, run_id=run_id)  # fmt: skip

    def _start_queued_runs(self, now: datetime) -> None:
        if not self._startable:
            return
        startable, self._startable = self._startable, set()
        for dag_id in startable:
            live_dag = self.dags.get(dag_id)
            if live_dag is None:
                continue
            for run in list(live_dag.queued):
                if live_dag.running_runs >= live_dag.dag.max_active_runs:
                    break
                if run.record.run_type is DagRunType.BACKFILL and not limits.backfill_room(
                    self.runs, live_dag
                ):
                    continue
                live_dag.queued.remove(run)
                live_dag.running_runs += 1
                self.set_run_state(run, DagRunState.RUNNING, now, start_date=now)
                timeout = run.dag.dagrun_timeout
                if timeout is not None:
                    self.at(now + timeout, partial(operations.time_out, self, run))
                self.evaluate_run(run, now)

    def evaluate_run(self, run: LiveRun, now: datetime) -> None:
        """Decide every undecided task instance of a running run (its start, or after a clear)."""
        for ti in list(run.tis.values()):
            if ti.state is NONE:
                self._evaluate(ti, now)
            elif ti.state is SCHEDULED:
                self._push_ready(ti)
        if run.unfinished == 0 and run.record.state is DagRunState.RUNNING:
            self._finish_run(run, now)

    def _evaluate(self, ti: LiveTI, now: datetime) -> None:
        decision = decide(ti.task.trigger_rule, ti.up, len(ti.task.upstream_task_ids))
        settled: list[LiveTI] = []
        if decision is SCHEDULED:
            self._make_ready(ti, now, settled)
        elif decision is not None:
            self.set_state(ti, decision, now)
            settled.append(ti)
        self._propagate(settled, now)

    def _finish_run(self, run: LiveRun, now: datetime) -> None:
        state = run.outcome()
        failed = state is DagRunState.FAILED
        self.set_run_state(run, state, now, end_date=now)
        self.release_run(run)
        live_dag = self.dags.get(run.dag_id)
        if live_dag is not None and live_dag.remember_finished(run):
            self.unblock(("past", run.dag_id))
        callbacks = run.dag.on_failure_callback if failed else run.dag.on_success_callback
        if callbacks is not None:
            context = self._context_of(run)
            context["reason"] = "task_failure" if failed else "success"
            self.burst.after.append(partial(self._spawn_callbacks, [callbacks], context,
                                       f"DAG {run.dag_id} run {run.run_id}"))  # fmt: skip

    def release_run(self, run: LiveRun) -> None:
        """A run finished: free its place under max_active_runs; at commit, wake its waiters."""
        live_dag = self.dags.get(run.dag_id)
        if live_dag is not None:
            live_dag.running_runs -= 1
        self.released_dags.add(run.dag_id)
        self._startable.add(run.dag_id)
        key = (run.dag_id, run.run_id)

        def done() -> None:
            if self.runs.get(key) is run and run.record.state in (
                DagRunState.SUCCESS, DagRunState.FAILED,
            ):  # fmt: skip
                del self.runs[key]
            waiters, run.waiters = run.waiters, []
            for waiter in waiters:
                waiter.set()

        self.burst.after.append(done)

    # -- task instances ------------------------------------------------------------------------
    def _make_ready(self, ti: LiveTI, now: datetime, settled: list[LiveTI]) -> None:
        """`ti`'s dependencies are met. An EmptyOperator without callbacks is done at once
        (as in Airflow) and joins `settled`; anything else waits for a slot."""
        self.set_state(ti, SCHEDULED, now)
        task = ti.task
        if type(task) is EmptyOperator and not (
            task.on_success_callback or task.on_execute_callback
        ):
            ti.start_date = ti.end_date = now
            ti.duration = 0.0
            self.set_state(ti, TaskState.SUCCESS, now)
            settled.append(ti)
            return
        heapq.heappush(self._ready, (-ti.priority, next(self._seq), ti))

    def _push_ready(self, ti: LiveTI) -> None:
        heapq.heappush(self._ready, (-ti.priority, next(self._seq), ti))

    def settle(self, ti: LiveTI, state: TaskState, now: datetime) -> None:
        """`ti` reaches a finished state: count it downstream and decide what that unblocks."""
        self.set_state(ti, state, now)
        self._propagate([ti], now)

    def _propagate(self, settled: list[LiveTI], now: datetime) -> None:
        """Count each newly finished task instance in its downstream's upstream tallies and
        decide those at once; decisions that finish a task feed the same loop (no recursion,
        so a 100,000-task chain of skips is fine)."""
        while settled:
            done = settled.pop()
            run = done.run
            run.unfinished -= 1
            if run.record.state is not DagRunState.RUNNING:
                continue
            for down_id in done.task.downstream_task_ids:
                down = run.tis[down_id]
                down.up.add(done.state)
                if down.state is NONE:
                    decision = decide(
                        down.task.trigger_rule, down.up, len(down.task.upstream_task_ids)
                    )
                    if decision is SCHEDULED:
                        self._make_ready(down, now, settled)
                    elif decision is not None:
                        self.set_state(down, decision, now)
                        settled.append(down)
            if run.unfinished == 0:
                self._finish_run(run, now)

    def _blocker(self, ti: LiveTI) -> Hashable | None:
        task = ti.task
        live_dag = self.dags[ti.run.dag_id]
        if live_dag.running_tasks >= live_dag.dag.max_active_tasks:
            return ("dag", live_dag.dag.dag_id)
        pool = task.pool
        if pool is not None and self.pool_used.get(pool, 0) + task.pool_slots > self.pools.get(
            pool, 0
        ):
            return ("pool", pool)
        limit = task.max_active_tis_per_dag
        if limit is not None and live_dag.task_running.get(task.task_id, 0) >= limit:
            return ("task", live_dag.dag.dag_id, task.task_id)
        if task.depends_on_past and not limits.past_allows(self.runs, live_dag, ti):
            return ("past", live_dag.dag.dag_id)
        return None

    def _dispatch(self, now: datetime) -> None:
        ready = self._ready
        while ready and self.running < self.parallelism and not self.draining:
            item = heapq.heappop(ready)
            ti = item[2]
            if ti.state is not SCHEDULED or ti.run.record.state is not DagRunState.RUNNING:
                continue
            blocker = self._blocker(ti)
            if blocker is not None:
                heapq.heappush(self._blocked.setdefault(blocker, []), item)
                continue
            self._start(ti, now)

    def _start(self, ti: LiveTI, now: datetime) -> None:
        self.set_state(ti, QUEUED, now)
        ti.try_number += 1
        ti.start_date, ti.end_date, ti.duration = now, None, None
        ti.error = ti.next_try_at = None
        self.set_state(ti, RUNNING, now)
        self._occupy(ti, 1)
        run = ti.run
        if ti.try_number > 1:  # a new try starts without the XComs of the last one
            self.burst.xcom_clears.append((run.dag_id, run.run_id, ti.task_id))
            for key in [k for k in run.xcoms if k[0] == ti.task_id]:
                del run.xcoms[key]
        rti = RuntimeTaskInstance(ti.task, run.record, ti.try_number, ti.max_tries, run.xcoms, now)
        rti.first_poke, rti.pokes = ti.first_poke, ti.pokes + 1
        self.burst.starts.append((ti, task_context(self._base_context(run), ti.task, rti), rti))

    def _base_context(self, run: LiveRun) -> dict[str, Any]:
        """The run's shared context (not a copy: task_context copies it)."""
        if run.base_context is None or run.base_context["dag_run"] is not run.record:
            run.base_context = run_context(run.dag, run.record)
        return run.base_context

    def _context_of(self, run: LiveRun) -> dict[str, Any]:
        """A copy of the run's context, for callbacks to extend."""
        return dict(self._base_context(run))

    def _occupy(self, ti: LiveTI, sign: int) -> None:
        task = ti.task
        live_dag = self.dags[ti.run.dag_id]
        self.running += sign
        live_dag.running_tasks += sign
        if task.pool is not None:
            self.pool_used[task.pool] = self.pool_used.get(task.pool, 0) + sign * task.pool_slots
        if task.max_active_tis_per_dag is not None:
            counts = live_dag.task_running
            counts[task.task_id] = counts.get(task.task_id, 0) + sign
        if sign < 0 and self.running == 0 and self._idle:
            idle, self._idle = self._idle, []
            for event in idle:
                event.set()
        if sign < 0 and self._blocked and live_dag.has_past_deps:
            self.unblock(("past", live_dag.dag.dag_id))
        if sign < 0 and self._blocked:
            for key in (("dag", live_dag.dag.dag_id), ("pool", task.pool),
                        ("task", live_dag.dag.dag_id, task.task_id)):  # fmt: skip
                waiting = self._blocked.get(key)
                if waiting:
                    heapq.heappush(self._ready, heapq.heappop(waiting))

    async def wait_idle(self) -> None:
        """Return once no task instance holds a slot."""
        while self.running:
            idle = anyio.Event()
            self._idle.append(idle)
            await idle.wait()

    def unblock(self, key: Hashable) -> None:
        """Everything waiting on `key` goes back to the ready queue to be checked again."""
        for item in self._blocked.pop(key, []):
            heapq.heappush(self._ready, item)

    # -- workers ----------------------------------------------------------------------------------
    async def _work(self, ti: LiveTI, context: Context, rti: RuntimeTaskInstance) -> None:
        task_log = None
        if self.logs_folder is not None:
            run = ti.run
            task_log = TaskLog(attempt_log_path(
                self.logs_folder, run.dag_id, run.run_id, ti.task_id, rti.try_number
            ))  # fmt: skip
            current_log.set(task_log)
        try:
            with anyio.CancelScope() as scope:
                ti.cancel_scope = scope
                try:
                    attempt = await run_attempt(ti.task, context, rti)
                except Exception as exc:  # a bug of ours, not of the task: still report it
                    log.exception("worker failed", ti=ti.key)
                    attempt = Attempt(Ending.FAILED, f"internal error: {exc!r}")
            if scope.cancelled_caught:
                attempt = Attempt(Ending.FAILED, ti.cancel_reason or "cancelled")
            if task_log is not None and attempt.error:
                task_log.line(f"attempt ended {attempt.ending.value}: {attempt.error}")
        finally:
            if task_log is not None:
                task_log.close()
        self.inbox.append(partial(self._on_attempt, ti, rti.try_number, attempt, context))
        self._wake.set()

    def cancel(self, ti: LiveTI, reason: str) -> None:
        """Stop the running attempt of `ti` (its worker reports a failure with `reason`)."""
        if ti.cancel_scope is not None:
            ti.cancel_reason = reason
            ti.cancel_scope.cancel()

    def _on_attempt(
        self, ti: LiveTI, try_number: int, attempt: Attempt, context: Context, now: datetime
    ) -> None:
        ti.cancel_scope = ti.cancel_reason = None
        self._occupy(ti, -1)
        if ti.state is not RUNNING or ti.try_number != try_number:
            return  # the task instance was cleared or marked while this attempt ran
        run = ti.run
        ti.end_date = now
        ti.duration = (now - ti.start_date).total_seconds() if ti.start_date else None
        ti.error = attempt.error
        ending = attempt.ending
        for key, value in attempt.xcoms.items():
            self.burst.xcoms.append((run.dag_id, run.run_id, ti.task_id, -1, key, value))
            run.xcoms[(ti.task_id, -1, key)] = value
        task = ti.task
        callbacks = None
        if ending is not Ending.RESCHEDULE:
            ti.first_poke, ti.pokes = None, 0
        if ending is Ending.SUCCESS:
            for skip_id in attempt.skipped:
                target = run.tis.get(skip_id)
                if target is not None and target.state in (NONE, SCHEDULED):
                    self.settle(target, TaskState.SKIPPED, now)
            self.settle(ti, TaskState.SUCCESS, now)
            callbacks = task.on_success_callback
        elif ending is Ending.SKIPPED:
            self.settle(ti, TaskState.SKIPPED, now)
        elif ending is Ending.RESCHEDULE:  # a sensor pokes again later; this was not a try
            ti.try_number -= 1
            ti.first_poke, ti.pokes = attempt.first_poke or ti.start_date, ti.pokes + 1
            ti.next_try_at = attempt.reschedule_at or now
            self.set_state(ti, TaskState.UP_FOR_RESCHEDULE, now)
            self.at(ti.next_try_at, partial(self.retry_due, ti, ti.try_number))
            return
        elif ending is Ending.FAILED and ti.try_number <= ti.max_tries:
            ti.next_try_at = now + retry_delay(task, ti.try_number)
            self.set_state(ti, TaskState.UP_FOR_RETRY, now)
            self.at(ti.next_try_at, partial(self.retry_due, ti, ti.try_number))
            callbacks = task.on_retry_callback
        else:
            self.settle(ti, TaskState.FAILED, now)
            callbacks = task.on_failure_callback
        if callbacks:
            if attempt.error:
                context["exception"] = attempt.error
            self.burst.after.append(partial(self._spawn_callbacks, callbacks, context, ti.key))

    def retry_due(self, ti: LiveTI, try_number: int, now: datetime) -> None:
        if (
            ti.state in (TaskState.UP_FOR_RETRY, TaskState.UP_FOR_RESCHEDULE)
            and ti.try_number == try_number
            and ti.run.record.state is DagRunState.RUNNING
        ):
            self.set_state(ti, SCHEDULED, now)
            self._push_ready(ti)

    def _spawn_callbacks(self, callbacks: list[Any], context: Context, where: str) -> None:
        if self._tg is not None:
            self._tg.start_soon(partial(run_callbacks, callbacks, context, what="callback",
                                        where=where))  # fmt: skip

    # -- introspection -------------------------------------------------------------------------
    def statistics(self) -> dict[str, int]:
        return {
            "running": self.running,
            "ready": len(self._ready),
            "blocked": sum(len(v) for v in self._blocked.values()),
            "active_runs": len(self.runs),
            "timers": len(self._timers),
            "steps": self.steps,
            "commits": self.commits,
        }
