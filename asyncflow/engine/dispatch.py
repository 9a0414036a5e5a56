"""`Dispatch`: the task-instance half of the scheduler's state — the state table check, the
ready queue and what blocks it, slots, attempts starting and ending, timers. `Mirror`
(engine/mirror.py) extends it with DAGs, runs and the changes made by hand; together they are
the one owner of everything the scheduler holds in memory.

This is the hot path: a finished attempt decides its downstream and dispatches the next in a
few method calls.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import anyio

from asyncflow.engine import limits
from asyncflow.engine.burst import Burst, Start
from asyncflow.engine.context import RuntimeTaskInstance, run_context, task_context
from asyncflow.engine.deferred import DeferRequest
from asyncflow.engine.events import DagRunStateChanged, EventBus, TaskStateChanged
from asyncflow.engine.live import LiveDag, LiveRun, LiveTI
from asyncflow.engine.planner import decide, retry_delay
from asyncflow.engine.runner import Attempt, Ending
from asyncflow.engine.weights import strategy_weight
from asyncflow.exceptions import InvalidStateTransition
from asyncflow.logs import get_logger
from asyncflow.models.baseoperator import Context
from asyncflow.models.trigger_rule import WeightRule
from asyncflow.operators.empty import EmptyOperator
from asyncflow.states import (
    RUN_TRANSITIONS,
    TASK_TRANSITIONS,
    DagRunState,
    TaskState,
)
from asyncflow.store.base import XComKey, XComRow

if TYPE_CHECKING:
    from asyncflow.engine.assets import AssetScheduling

log = get_logger("asyncflow.scheduler")

NONE, SCHEDULED, QUEUED, RUNNING = (
    TaskState.NONE, TaskState.SCHEDULED, TaskState.QUEUED, TaskState.RUNNING,
)  # fmt: skip
FOREVER = datetime.max.replace(tzinfo=UTC)


INTERRUPTED = "interrupted: the engine shut down while this attempt ran; it runs again"


def later(now: datetime, delay: timedelta) -> datetime:
    """`now + delay`, or the end of time when a DAG's value would overflow the calendar."""
    try:
        return now + delay
    except OverflowError:
        return FOREVER


class Blocker(NamedTuple):
    """What a ready task instance waits for before it can take a slot."""

    kind: Literal["dag", "pool", "task", "past", "kind"]
    dag_id: str
    name: str = ""  # the pool's name, or the task_id

    @staticmethod
    def dag(dag_id: str) -> Blocker:
        return Blocker("dag", dag_id)

    @staticmethod
    def pool(name: str) -> Blocker:
        return Blocker("pool", "", name)


Ready = tuple[int, int, LiveTI]  # (-priority, sequence, task instance): a heap entry
Timer = tuple[datetime, int, Callable[[datetime], None]]


class Dispatch:
    #: asset events and asset-triggered runs (engine/assets.py), when the engine has them
    assets: AssetScheduling | None = None

    def __init__(self, *, bus: EventBus, parallelism: int, pools: dict[str, int],
                 max_lost_attempts: int = 3,
                 kind_slots: dict[str, int] | None = None) -> None:  # fmt: skip
        self.bus = bus
        self.parallelism = parallelism
        self.pools = pools
        #: bounds per kind of work below parallelism (`thread`, `process`; see slots.py)
        self.kind_slots = dict(kind_slots or {})
        self.kind_used = dict.fromkeys(self.kind_slots, 0)
        self.max_lost_attempts = max_lost_attempts
        self.dags: dict[str, LiveDag] = {}
        self.runs: dict[tuple[str, str], LiveRun] = {}
        self.burst = Burst()  # the changes of the current step
        self.running = 0
        self.pool_used: dict[str, int] = {}
        self.draining = False  # stop starting task instances and creating runs
        self._seq = itertools.count()
        self._ready: list[Ready] = []
        self._blocked: dict[Blocker, list[Ready]] = {}
        self._timers: list[Timer] = []
        self._startable: set[str] = set()  # DAGs that may be able to start a queued run
        #: DAGs that finished a run since the last step (a place under max_active_runs freed)
        self.released_dags: set[str] = set()
        self._idle: list[anyio.Event] = []

    # -- timers ------------------------------------------------------------------------------
    def at(self, when: datetime, fn: Callable[[datetime], None]) -> None:
        heapq.heappush(self._timers, (when, next(self._seq), fn))

    @property
    def next_deadline(self) -> datetime | None:
        return self._timers[0][0] if self._timers else None

    def fire_timers(self, now: datetime) -> None:
        timers = self._timers
        while timers and timers[0][0] <= now:
            heapq.heappop(timers)[2](now)

    # -- the state table: every change passes here -------------------------------------------
    def _set(self, ti: LiveTI, new: TaskState, now: datetime) -> None:
        old = ti.state
        if new not in TASK_TRANSITIONS[old]:
            raise InvalidStateTransition("task instance", ti.key, old, new)
        ti.state = new
        if ti.deferral is not None:
            self._deferral_moved(ti, old, new)
        self.burst.mark(ti)
        if self.bus.has_subscribers:
            run = ti.run
            self.burst.events.append(TaskStateChanged(
                run.dag_id, run.run_id, ti.task_id, ti.map_index, ti.try_number, old, new, now,
            ))  # fmt: skip

    def _set_run(self, run: LiveRun, new: DagRunState, now: datetime, **changes: Any) -> None:
        old = run.record.state
        if new not in RUN_TRANSITIONS[old]:
            raise InvalidStateTransition("DAG run", f"{run.dag_id}/{run.run_id}", old, new)
        run.update(state=new, **changes)
        self.burst.mark_run(run)
        self.burst.events.append(DagRunStateChanged(run.dag_id, run.run_id, old, new, now))

    # -- task instances --------------------------------------------------------------------------
    def _make_ready(self, ti: LiveTI, now: datetime, settled: list[LiveTI]) -> None:
        """`ti`'s dependencies are met. An EmptyOperator without callbacks is done at once
        (as in Airflow) and joins `settled`; anything else waits for a slot. A mapped task
        expands first, a teardown checks its setups (engine/mapping.py)."""
        task = ti.task
        if (task.is_mapped or task.is_teardown) and self._ready_hook(ti, now, settled):
            return
        self._set(ti, SCHEDULED, now)
        if type(task) is EmptyOperator and not (
            task.on_success_callback or task.on_execute_callback or task.outlets
        ):
            ti.start_date = ti.end_date = now
            ti.duration = 0.0
            self._set(ti, TaskState.SUCCESS, now)
            settled.append(ti)
            return
        self._push_ready(ti)

    def _push_ready(self, ti: LiveTI) -> None:
        if type(ti.task.weight_rule) is not WeightRule:  # a PriorityWeightStrategy
            ti.priority = strategy_weight(ti)
        heapq.heappush(self._ready, (-ti.priority, next(self._seq), ti))

    def settle(self, ti: LiveTI, state: TaskState, now: datetime) -> None:
        """`ti` reaches a finished state: count it downstream and decide what that unblocks."""
        self._set(ti, state, now)
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
            for down_id in run.downstream[done.task_id]:
                down = run.tis[down_id]
                down.up.add(done.state)
                if down.state is NONE:
                    decision = decide(
                        down.task.trigger_rule, down.up, len(down.task.upstream_task_ids)
                    )
                    if decision is not None and down.task.mapped_group is not None:
                        decision = self._group_decision(down, decision)
                    if decision is SCHEDULED:
                        self._make_ready(down, now, settled)
                    elif decision is not None:
                        self._set(down, decision, now)
                        settled.append(down)
            if run.unfinished == 0:
                self._finish_run(run, now)

    def _blocker(self, ti: LiveTI) -> Blocker | None:
        task = ti.task
        live_dag = self.dags[ti.run.dag_id]
        dag_id = live_dag.dag.dag_id
        cap = live_dag.dag.max_active_tasks
        if cap is not None and live_dag.running_tasks >= cap:
            return Blocker("dag", dag_id)
        kind = ti.kind
        if kind in self.kind_used and self.kind_used[kind] >= self.kind_slots[kind]:
            return Blocker("kind", "", kind)
        pool = task.pool
        if pool is not None and self.pool_used.get(pool, 0) + task.pool_slots > self.pools.get(
            pool, 0
        ):
            return Blocker("pool", "", pool)
        limit = task.max_active_tis_per_dag
        if limit is not None and live_dag.task_running.get(task.task_id, 0) >= limit:
            return Blocker("task", dag_id, task.task_id)
        if task.depends_on_past and not limits.past_allows(self.runs, live_dag, ti):
            return Blocker("past", dag_id)
        return None

    def dispatch(self, now: datetime) -> None:
        """Ready task instances, by priority, into free slots."""
        ready = self._ready
        while ready and self.running < self.parallelism and not self.draining:
            item = heapq.heappop(ready)
            ti = item[2]
            if ti.state is not SCHEDULED or ti.run.record.state is not DagRunState.RUNNING:
                continue
            if ti.task.start_from_trigger and ti.deferral is None:
                self._defer_at_start(ti, now)  # begins deferred: takes no slot
                continue
            blocker = self._blocker(ti)
            if blocker is not None:
                heapq.heappush(self._blocked.setdefault(blocker, []), item)
                continue
            try:
                context, rti = self._attempt_context(ti, now)
            except Exception as exc:  # the task's own values (params, conf): it fails alone
                ti.error, ti.end_date = f"the task's context cannot be built: {exc!r}", now
                self.settle(ti, TaskState.FAILED, now)
                continue
            self.start_attempt(ti, context, rti, now)

    def _attempt_context(self, ti: LiveTI, now: datetime) -> tuple[Context, RuntimeTaskInstance]:
        run = ti.run
        rti = RuntimeTaskInstance(  # a resumed deferral goes on with the same try
            ti.task, run.record, ti.try_number + (0 if ti.resuming else 1), ti.max_tries,
            run.xcoms, now, ti.map_index,
        )  # fmt: skip
        rti.first_poke, rti.pokes = ti.first_poke, ti.pokes + 1
        context = task_context(self._base_context(run), ti.task, rti)
        if self.assets is not None:
            self.assets.extend_context(context, ti)
        return context, rti

    def start_attempt(
        self, ti: LiveTI, context: Context, rti: RuntimeTaskInstance, now: datetime
    ) -> None:
        """`ti` takes a slot: queued, then running, as one change; its worker starts after the
        commit. A deferred try that resumes keeps its try_number, start and XComs."""
        self._set(ti, QUEUED, now)
        deferral = ti.deferral
        resume = None
        if deferral is not None and deferral.fired:
            resume = (deferral.next_method, deferral.next_kwargs)
        else:
            ti.try_number += 1
            ti.start_date = now
            if ti.try_number > 1:  # a new try starts without the XComs of the last one
                self._drop_xcoms(ti)
        ti.end_date, ti.duration = None, None
        ti.error = ti.next_try_at = None
        self._set(ti, RUNNING, now)
        self._occupy(ti, 1)
        self.burst.starts.append(Start(ti, context, rti, resume))

    def _drop_xcoms(self, ti: LiveTI) -> None:
        run = ti.run
        index = ti.map_index
        self.burst.xcom_clears.append(XComKey(run.dag_id, run.run_id, ti.task_id, index))
        for key in [k for k in run.xcoms if k[0] == ti.task_id and k[1] == index]:
            del run.xcoms[key]

    def _base_context(self, run: LiveRun) -> dict[str, Any]:
        """The run's shared context (not a copy: task_context copies it)."""
        if run.base_context is None or run.base_context["dag_run"] is not run.record:
            live_dag = self.dags.get(run.dag_id)
            prev = live_dag.success_before(run.record.logical_date) if live_dag else None
            run.base_context = run_context(run.dag, run.record, prev)
        return run.base_context

    def _context_of(self, run: LiveRun) -> dict[str, Any]:
        """A copy of the run's context, for callbacks to extend."""
        return dict(self._base_context(run))

    def _occupy(self, ti: LiveTI, sign: int) -> None:
        task = ti.task
        live_dag = self.dags[ti.run.dag_id]
        self.running += sign
        live_dag.running_tasks += sign
        kind = ti.kind
        if kind in self.kind_used:
            self.kind_used[kind] += sign
        if task.pool is not None:
            self.pool_used[task.pool] = self.pool_used.get(task.pool, 0) + sign * task.pool_slots
        if task.max_active_tis_per_dag is not None:
            counts = live_dag.task_running
            counts[task.task_id] = counts.get(task.task_id, 0) + sign
        if sign > 0:
            return
        if self.running == 0 and self._idle:
            idle, self._idle = self._idle, []
            for event in idle:
                event.set()
        if self._blocked:
            dag_id = live_dag.dag.dag_id
            if live_dag.has_past_deps:
                self.unblock(Blocker("past", dag_id))
            for key in (Blocker("dag", dag_id), Blocker("task", dag_id, task.task_id)):
                waiting = self._blocked.get(key)
                if waiting:
                    heapq.heappush(self._ready, heapq.heappop(waiting))
            if task.pool is not None:
                self.unblock(Blocker("pool", "", task.pool))
            waiting = self._blocked.get(Blocker("kind", "", kind))
            if waiting:
                heapq.heappush(self._ready, heapq.heappop(waiting))

    def idle_event(self) -> anyio.Event | None:
        """An event set once no task instance holds a slot (None: none holds one now)."""
        if not self.running:
            return None
        idle = anyio.Event()
        self._idle.append(idle)
        return idle

    def unblock(self, key: Blocker) -> None:
        """Everything waiting on `key` goes back to the ready queue to be checked again."""
        for item in self._blocked.pop(key, []):
            heapq.heappush(self._ready, item)

    def cancel(self, ti: LiveTI, reason: str, *, interrupt: bool = False) -> None:
        """Stop the running attempt of `ti`: its worker reports a failure with `reason`, or,
        with `interrupt` (shutdown), an interruption that costs no try."""
        worker = ti.worker
        if worker is not None and not worker.done() and ti.cancel_reason is None:
            ti.cancel_reason = reason
            ti.interrupted = interrupt
            worker.cancel()

    def cancel_all(self, reason: str) -> None:
        for run in self.runs.values():
            for ti in run.instances():
                self.cancel(ti, reason, interrupt=True)

    def finish_attempt(self, ti: LiveTI, try_number: int, attempt: Attempt, context: Context,
                       now: datetime) -> None:  # fmt: skip
        """A worker reported how an attempt ended: free its slot and decide what follows."""
        ti.worker = ti.cancel_reason = None
        self._occupy(ti, -1)
        if ti.state is not RUNNING or ti.try_number != try_number:
            return  # the task instance was cleared or marked while this attempt ran
        try:
            self._apply_attempt(ti, attempt, context, now)
        except InvalidStateTransition:
            raise
        except Exception as exc:  # one of the task's own values (a retry delay, say)
            if ti.state is RUNNING:
                ti.error = f"{attempt.error or attempt.ending.value}; then: {exc!r}"
                self.settle(ti, TaskState.FAILED, now)
            else:
                self.fail_run(ti.run, repr(exc), now)

    def _apply_attempt(self, ti: LiveTI, attempt: Attempt, context: Context,
                       now: datetime) -> None:  # fmt: skip
        run = ti.run
        ending = attempt.ending
        if ending is Ending.INTERRUPTED:  # shutdown: no try used; it runs at the next start
            if not ti.resuming:
                ti.try_number -= 1
            ti.error, ti.end_date = INTERRUPTED, now
            self._set(ti, SCHEDULED, now)
            self._push_ready(ti)
            return
        ti.end_date = now
        ti.duration = (now - ti.start_date).total_seconds() if ti.start_date else None
        ti.error = attempt.error
        ti.lost = 0
        index = ti.map_index
        for key, value in attempt.xcoms.items():
            self.burst.xcoms.append(XComRow(run.dag_id, run.run_id, ti.task_id, index, key, value))
            run.xcoms[(ti.task_id, index, key)] = value
        task = ti.task
        callbacks = None
        if ending is not Ending.RESCHEDULE:
            ti.first_poke, ti.pokes = None, 0
        if ending is Ending.SUCCESS:
            for skip_id in attempt.skipped:
                target = run.tis.get(skip_id)
                if target is not None and target.state in (NONE, SCHEDULED):
                    self.settle(target, TaskState.SKIPPED, now)
            if task.outlets and self.assets is not None:  # its events commit with its success
                self.assets.task_succeeded(ti, attempt.outlet_events, now)
            self.settle(ti, TaskState.SUCCESS, now)
            callbacks = task.on_success_callback
        elif ending is Ending.SKIPPED:
            self.settle(ti, TaskState.SKIPPED, now)
        elif ending is Ending.DEFERRED and attempt.deferred is not None:
            self._defer(ti, attempt.deferred, now)
            return
        elif ending is Ending.RESCHEDULE:  # a sensor pokes again later; this was not a try
            ti.try_number -= 1
            ti.first_poke, ti.pokes = attempt.first_poke or ti.start_date, ti.pokes + 1
            ti.next_try_at = attempt.reschedule_at or now
            self._set(ti, TaskState.UP_FOR_RESCHEDULE, now)
            self.at(ti.next_try_at, partial(self.retry_due, ti, ti.try_number))
            return
        elif ending is Ending.FAILED and ti.try_number <= ti.max_tries:
            delay = attempt.retry_delay  # the task's retry_policy chose one
            ti.next_try_at = later(
                now, delay if delay is not None else retry_delay(task, ti.try_number)
            )
            self._set(ti, TaskState.UP_FOR_RETRY, now)
            self.at(ti.next_try_at, partial(self.retry_due, ti, ti.try_number))
            callbacks = task.on_retry_callback
        else:
            self.settle(ti, TaskState.FAILED, now)
            callbacks = task.on_failure_callback
        if callbacks:
            if attempt.error:
                context["exception"] = attempt.error
            self.burst.callbacks.append((callbacks, context, ti.key))

    def retry_due(self, ti: LiveTI, try_number: int, now: datetime) -> None:
        if (
            ti.state in (TaskState.UP_FOR_RETRY, TaskState.UP_FOR_RESCHEDULE)
            and ti.try_number == try_number
            and ti.run.record.state is DagRunState.RUNNING
        ):
            self._set(ti, SCHEDULED, now)
            self._push_ready(ti)

    # -- steps the task half needs (Deferrals and Mirror implement them) -----------------------
    def _deferral_moved(self, ti: LiveTI, old: TaskState, new: TaskState) -> None:
        raise NotImplementedError

    def _defer(self, ti: LiveTI, request: DeferRequest, now: datetime) -> None:
        raise NotImplementedError

    def _defer_at_start(self, ti: LiveTI, now: datetime) -> None:
        raise NotImplementedError

    def _finish_run(self, run: LiveRun, now: datetime) -> None:
        raise NotImplementedError

    def fail_run(self, run: LiveRun, error: str, now: datetime) -> None:
        raise NotImplementedError

    def _ready_hook(self, ti: LiveTI, now: datetime, settled: list[LiveTI]) -> bool:
        raise NotImplementedError

    def _group_decision(self, ti: LiveTI, decision: TaskState) -> TaskState | None:
        raise NotImplementedError

    # -- introspection ---------------------------------------------------------------------------
    def statistics(self) -> dict[str, int]:
        return {
            "running": self.running,
            **{f"running_{kind}": used for kind, used in self.kind_used.items()},
            "ready": len(self._ready),
            "blocked": sum(len(v) for v in self._blocked.values()),
            "active_runs": len(self.runs),
            "timers": len(self._timers),
        }
