"""The records the mirror keeps for active runs: a cache of the store. Only `Mirror`
(engine/mirror.py) changes them; each can produce the row it is stored as."""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio

from asyncflow.engine.context import XComCache
from asyncflow.engine.planner import UpstreamCounts, priority_weights
from asyncflow.engine.templating import prepare_templates
from asyncflow.models.baseoperator import BaseOperator
from asyncflow.models.dag import DAG
from asyncflow.records import DagRun, TaskInstance
from asyncflow.states import FAILED_STATES, FINISHED, DagRunState, TaskState
from asyncflow.store.base import PastStates, RunRow, RunUpdate, TIRow, iso, run_row

if TYPE_CHECKING:
    from asyncflow.engine.deferred import Deferral

_new_row = tuple.__new__


class LiveTI:
    """One task instance of an active run."""

    __slots__ = (
        "cancel_reason",
        "deferral",
        "dirty",
        "duration",
        "end_date",
        "error",
        "first_poke",
        "interrupted",
        "kind",
        "lost",
        "map_index",
        "max_tries",
        "next_try_at",
        "pokes",
        "priority",
        "run",
        "start_date",
        "state",
        "task",
        "task_id",
        "try_number",
        "up",
        "worker",
    )  # fmt: skip

    def __init__(self, run: LiveRun, task: BaseOperator, priority: int, kind: str) -> None:
        self.run = run
        self.kind = kind  # where its attempts work: loop, thread or process (slots.py)
        self.task = task
        self.task_id = task.task_id
        self.map_index = -1  # a mapped task's instance: 0, 1, ... (engine/mapping.py)
        self.state = TaskState.NONE
        self.try_number = 0
        self.max_tries = task.retries
        self.start_date: datetime | None = None
        self.end_date: datetime | None = None
        self.duration: float | None = None
        self.error: str | None = None
        self.next_try_at: datetime | None = None
        self.priority = priority
        self.up = UpstreamCounts()
        self.dirty = False
        self.worker: asyncio.Task[None] | None = None  # the running attempt's worker task
        self.cancel_reason: str | None = None
        self.interrupted = False  # cancelled by shutdown: the attempt costs no try
        self.first_poke: datetime | None = None  # reschedule-mode sensors (memory only)
        self.pokes = 0
        self.lost = 0  # attempts in a row the engine lost (crash, kill -9)
        #: the trigger it waits on (deferred), or how it resumes (fired): engine/deferrals.py
        self.deferral: Deferral | None = None

    @property
    def resuming(self) -> bool:
        """Its next (or current) attempt resumes a deferred try: the same try_number."""
        deferral = self.deferral
        return deferral is not None and deferral.fired

    def __repr__(self) -> str:
        index = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"<LiveTI {self.run.dag_id}.{self.task_id}{index} {self.run.run_id} {self.state}>"

    @property
    def key(self) -> str:
        index = f" map_index {self.map_index}" if self.map_index >= 0 else ""
        return f"{self.run.dag_id}.{self.task_id}[{self.run.run_id}]{index}"

    def load(self, record: TaskInstance) -> None:
        self.state = record.state
        self.try_number = record.try_number
        self.max_tries = record.max_tries
        self.start_date = record.start_date
        self.end_date = record.end_date
        self.duration = record.duration
        self.error = record.error
        self.next_try_at = record.next_try_at
        self.lost = record.lost_count

    def row(self) -> TIRow:
        run = self.run
        # tuple.__new__ builds the named row without NamedTuple's Python-level __new__: this
        # runs for every changed task instance of every burst
        return _new_row(TIRow, (
            self.state, self.try_number, self.max_tries, iso(self.start_date),
            iso(self.end_date), self.duration, self.error, iso(self.next_try_at), self.lost,
            run.dag_id, run.run_id, self.task_id, self.map_index,
        ))  # fmt: skip

    def record(self) -> TaskInstance:
        return TaskInstance(
            dag_id=self.run.dag_id, run_id=self.run.run_id, task_id=self.task_id,
            map_index=self.map_index,
            state=self.state, try_number=self.try_number, max_tries=self.max_tries,
            start_date=self.start_date, end_date=self.end_date, duration=self.duration,
            error=self.error, next_try_at=self.next_try_at, lost_count=self.lost,
        )  # fmt: skip


class Plan:
    """What the mirror derives once from a DAG as loaded, for all of its runs: each task's
    priority, and each task's downstream in the order the DAG defines them (so that equal
    priorities start in a stable order: runs are predictable, and each commit's rows are
    neighbours in the table, which SQLite writes several times faster than scattered ones)."""

    __slots__ = ("dag", "downstream", "kinds", "leaves", "priorities")

    def __init__(self, dag: DAG) -> None:
        self.dag = dag
        self.priorities = priority_weights(dag)
        order = {task_id: n for n, task_id in enumerate(dag.task_dict)}
        self.downstream: dict[str, tuple[str, ...]] = {
            task.task_id: tuple(sorted(task.downstream_task_ids, key=order.__getitem__))
            for task in dag.tasks
        }
        self.kinds = {task.task_id: task.runs_in for task in dag.tasks}
        self.leaves = run_state_leaves(dag)
        prepare_templates(dag)


class LiveRun:
    """An active (queued or running) DAG run and its task instances."""

    __slots__ = (
        "base_context", "conflict", "dag", "dirty", "downstream", "is_new", "leaves", "mapped",
        "record", "tis", "unfinished", "waiters", "xcoms",
    )  # fmt: skip

    def __init__(self, plan: Plan, record: DagRun) -> None:
        self.dag = plan.dag
        self.downstream = plan.downstream
        self.leaves = plan.leaves
        self.record = record
        priorities, kinds = plan.priorities, plan.kinds
        self.tis: dict[str, LiveTI] = {
            task_id: LiveTI(self, task, priorities[task_id], kinds[task_id])
            for task_id, task in plan.dag.task_dict.items()
        }
        self.unfinished = len(self.tis)
        #: a mapped task's instances once expanded, by map_index (the first is tis[task_id])
        self.mapped: dict[str, list[LiveTI]] = {}
        self.xcoms: XComCache = {}
        self.base_context: dict[str, Any] | None = None
        self.dirty = False
        self.is_new = False
        self.conflict = False  # its insert found the run_id or logical_date taken
        self.waiters: list[anyio.Event] = []

    @property
    def dag_id(self) -> str:
        return self.record.dag_id

    @property
    def key(self) -> tuple[str, str]:
        return (self.record.dag_id, self.record.run_id)

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def state(self) -> DagRunState:
        return self.record.state

    def update(self, **changes: Any) -> None:
        self.record = dataclasses.replace(self.record, **changes)

    def instances(self) -> Iterable[LiveTI]:
        """Every task instance of the run: a mapped task's all of them, by map_index."""
        if not self.mapped:
            return self.tis.values()
        return [ti for task_id, first in self.tis.items()
                for ti in self.mapped.get(task_id, (first,))]  # fmt: skip

    def instances_of(self, task_id: str) -> list[LiveTI]:
        found = self.mapped.get(task_id)
        return found if found is not None else [self.tis[task_id]]

    def recount(self) -> None:
        """Rebuild the derived counters from the task instances' states. The instances of
        a mapped task share one tally (they have the same upstream)."""
        for task_id, ti in self.tis.items():
            ti.up = UpstreamCounts()
            for other in self.mapped.get(task_id, ()):
                other.up = ti.up
        for task_id, instances in self.mapped.items():
            for down in self.downstream[task_id]:
                self.tis[down].up.extra += len(instances) - 1
        self.unfinished = 0
        for ti in self.instances():
            if ti.state in FINISHED:
                for down in self.downstream[ti.task_id]:
                    self.tis[down].up.add(ti.state)
            else:
                self.unfinished += 1

    def outcome(self) -> DagRunState:
        """The state a run whose task instances are all finished ends in (Airflow's rule:
        failed when a leaf failed or was upstream_failed, else success; teardowns do not
        count, the work before them does: `run_state_leaves`)."""
        failed = any(ti.state in FAILED_STATES for t in self.leaves for ti in self.instances_of(t))
        return DagRunState.FAILED if failed else DagRunState.SUCCESS

    def insert_row(self) -> RunRow:
        return run_row(self.record)

    def update_row(self) -> RunUpdate:
        return RunUpdate(*run_row(self.record)[:6])


#: successful runs a DAG keeps in memory for prev_*_success (the newest ones)
MAX_SUCCESSES = 1000


class LiveDag:
    """The mirror's bookkeeping for one loaded DAG."""

    __slots__ = (
        "backfill_limit",
        "error",
        "has_past_deps",
        "past",
        "past_tasks",
        "paused",
        "plan",
        "queued",
        "removed",
        "running_runs",
        "running_tasks",
        "successes",
        "task_running",
        "windows",
    )  # fmt: skip

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        dag = plan.dag
        self.paused = False
        self.removed = False  # its file is gone or broken: no new runs; history stays
        #: why its schedule cannot be evaluated (a value of the DAG's that fails at run time)
        self.error: str | None = None
        self.queued: list[LiveRun] = []  # runs waiting for max_active_runs, oldest first
        self.running_runs = 0
        self.running_tasks = 0
        self.task_running: dict[str, int] = {}
        self.backfill_limit: int | None = None  # max running backfill runs, while one runs
        #: the tasks whose past a run looks back at (depends_on_past, wait_for_downstream)
        self.past_tasks: list[str] = sorted(past_task_ids(dag))
        self.has_past_deps = bool(self.past_tasks)
        #: finished runs' states of past_tasks, by logical date (rebuilt from the store)
        self.past: list[PastStates] = []
        #: successful runs by logical date, for the prev_*_success context keys (from the
        #: store at start, kept up to date as runs succeed)
        self.successes: list[DagRun] = []
        #: task_id -> (start, end) in UTC, for tasks with their own start_date/end_date
        self.windows: dict[str, tuple[datetime | None, datetime | None]] = {
            t.task_id: (_utc(t.start_date, dag), _utc(t.end_date, dag))
            for t in dag.tasks
            if t.start_date is not None or t.end_date is not None
        }

    def remember_finished(self, run: LiveRun) -> bool:
        """Keep a finished run's states for depends_on_past. True when this DAG has such
        tasks (whoever waits on the past should look again)."""
        if not self.has_past_deps:
            return False
        states = {t: run.tis[t].state for t in self.past_tasks if t in run.tis}
        entry = PastStates(run.record.logical_date, states)
        keys = [p.logical_date for p in self.past]
        at = bisect.bisect_left(keys, entry.logical_date)
        if at < len(self.past) and self.past[at].logical_date == entry.logical_date:
            self.past[at] = entry
        else:
            self.past.insert(at, entry)
        return True

    def remember_success(self, record: DagRun) -> None:
        keys = [r.logical_date for r in self.successes]
        at = bisect.bisect_left(keys, record.logical_date)
        if at < len(keys) and keys[at] == record.logical_date:
            self.successes[at] = record
        else:
            self.successes.insert(at, record)
        if len(self.successes) > MAX_SUCCESSES:
            del self.successes[0]

    def success_before(self, logical_date: datetime) -> DagRun | None:
        """The latest successful run before `logical_date` (Airflow's prev_*_success)."""
        at = bisect.bisect_left([r.logical_date for r in self.successes], logical_date)
        return self.successes[at - 1] if at else None

    def finished_before(self, logical_date: datetime) -> PastStates | None:
        """The latest finished run before `logical_date`, if any."""
        at = bisect.bisect_left([p.logical_date for p in self.past], logical_date)
        return self.past[at - 1] if at else None

    @property
    def dag(self) -> DAG:
        return self.plan.dag

    @property
    def active_runs(self) -> int:
        return self.running_runs + len(self.queued)


def run_state_leaves(dag: DAG) -> tuple[str, ...]:
    """The tasks whose states decide a finished run's state (Airflow's
    `_tis_for_dagrun_state`): the leaves, where a teardown (unless `on_failure_fail_dagrun`)
    is not a leaf and the tasks whose only downstream are such teardowns are."""

    def ignorable(task: BaseOperator) -> bool:
        return task.is_teardown and not task.on_failure_fail_dagrun

    leaves = [
        t.task_id
        for t in dag.tasks
        if not ignorable(t) and all(ignorable(dag.task_dict[d]) for d in t.downstream_task_ids)
    ]
    return tuple(leaves or (t.task_id for t in dag.leaves))


def past_task_ids(dag: DAG) -> set[str]:
    """The tasks depends_on_past looks at in the previous run: each such task, and with
    wait_for_downstream its direct downstream."""
    ids: set[str] = set()
    for task in dag.tasks:
        if task.depends_on_past:
            ids.add(task.task_id)
            if task.wait_for_downstream:
                ids |= task.downstream_task_ids
    return ids


def _utc(value: datetime | None, dag: DAG) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dag.timezone)
    return value.astimezone(UTC)
