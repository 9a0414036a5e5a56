"""The scheduler's in-memory mirror of active runs: a cache of the store, owned by the scheduler
alone. Each object can produce the row it is stored as."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import anyio

from asyncflow.engine.context import XComCache
from asyncflow.engine.planner import UpstreamCounts
from asyncflow.models.baseoperator import BaseOperator
from asyncflow.models.dag import DAG
from asyncflow.records import DagRun, TaskInstance
from asyncflow.states import FAILED_STATES, FINISHED, DagRunState, TaskState
from asyncflow.store.base import RunRow, RunUpdate, TIRow, iso, run_row


class LiveTI:
    """One task instance of an active run."""

    __slots__ = (
        "cancel_reason",
        "cancel_scope",
        "dirty",
        "duration",
        "end_date",
        "error",
        "first_poke",
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
    )  # fmt: skip

    def __init__(self, run: LiveRun, task: BaseOperator, priority: int) -> None:
        self.run = run
        self.task = task
        self.task_id = task.task_id
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
        self.cancel_scope: anyio.CancelScope | None = None
        self.cancel_reason: str | None = None
        self.first_poke: datetime | None = None  # reschedule-mode sensors (memory only)
        self.pokes = 0

    def __repr__(self) -> str:
        return f"<LiveTI {self.run.dag_id}.{self.task_id} {self.run.run_id} {self.state}>"

    @property
    def key(self) -> str:
        return f"{self.run.dag_id}.{self.task_id}[{self.run.run_id}]"

    def load(self, record: TaskInstance) -> None:
        self.state = record.state
        self.try_number = record.try_number
        self.max_tries = record.max_tries
        self.start_date = record.start_date
        self.end_date = record.end_date
        self.duration = record.duration
        self.error = record.error
        self.next_try_at = record.next_try_at

    def row(self) -> TIRow:
        run = self.run
        return (
            self.state, self.try_number, self.max_tries, iso(self.start_date),
            iso(self.end_date), self.duration, self.error, iso(self.next_try_at), run.dag_id,
            run.run_id, self.task_id, -1,
        )  # fmt: skip

    def record(self) -> TaskInstance:
        return TaskInstance(
            dag_id=self.run.dag_id, run_id=self.run.run_id, task_id=self.task_id, map_index=-1,
            state=self.state, try_number=self.try_number, max_tries=self.max_tries,
            start_date=self.start_date, end_date=self.end_date, duration=self.duration,
            error=self.error, next_try_at=self.next_try_at,
        )  # fmt: skip


class LiveRun:
    """An active (queued or running) DAG run and its task instances."""

    __slots__ = (
        "base_context", "conflict", "dag", "dirty", "is_new", "record", "tis",
        "unfinished",
        "waiters", "xcoms",
    )  # fmt: skip

    def __init__(self, dag: DAG, record: DagRun, priorities: dict[str, int]) -> None:
        self.dag = dag
        self.record = record
        self.tis: dict[str, LiveTI] = {
            task_id: LiveTI(self, task, priorities[task_id])
            for task_id, task in dag.task_dict.items()
        }
        self.unfinished = len(self.tis)
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
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def state(self) -> DagRunState:
        return self.record.state

    def update(self, **changes: Any) -> None:
        self.record = dataclasses.replace(self.record, **changes)

    def recount(self) -> None:
        """Rebuild the derived counters from the task instances' states."""
        for ti in self.tis.values():
            ti.up = UpstreamCounts()
        self.unfinished = 0
        for ti in self.tis.values():
            if ti.state in FINISHED:
                for down in ti.task.downstream_task_ids:
                    self.tis[down].up.add(ti.state)
            else:
                self.unfinished += 1

    def outcome(self) -> DagRunState:
        """The state a run whose task instances are all finished ends in (Airflow's rule:
        failed when a leaf failed or was upstream_failed, else success)."""
        leaves = (self.tis[t.task_id] for t in self.dag.leaves)
        failed = any(ti.state in FAILED_STATES for ti in leaves)
        return DagRunState.FAILED if failed else DagRunState.SUCCESS

    def insert_row(self) -> RunRow:
        return run_row(self.record)

    def update_row(self) -> RunUpdate:
        full = run_row(self.record)
        return (full[0], full[1], full[2], full[3], full[4], full[5])


class LiveDag:
    """The scheduler's bookkeeping for one loaded DAG."""

    __slots__ = (
        "backfill_limit",
        "dag",
        "has_past_deps",
        "last_finished",
        "last_interval",
        "next_info",
        "paused",
        "priorities",
        "queued",
        "removed",
        "running_runs",
        "running_tasks",
        "task_running",
        "windows",
    )  # fmt: skip

    def __init__(self, dag: DAG, priorities: dict[str, int]) -> None:
        self.dag = dag
        self.priorities = priorities
        self.paused = False
        self.removed = False  # its file is gone or broken: no new runs; history stays
        self.queued: list[LiveRun] = []  # runs waiting for max_active_runs, oldest first
        self.running_runs = 0
        self.running_tasks = 0
        self.task_running: dict[str, int] = {}
        self.last_interval: Any = None  # DataInterval of the latest scheduled run
        self.next_info: Any = None  # DagRunInfo of the next scheduled run, if any
        self.backfill_limit: int | None = None  # max running backfill runs, while one runs
        self.has_past_deps = any(t.depends_on_past for t in dag.tasks)
        #: (logical_date, task states) of the latest finished run, for depends_on_past
        self.last_finished: tuple[datetime, dict[str, TaskState]] | None = None
        #: task_id -> (start, end) in UTC, for tasks with their own start_date/end_date
        self.windows: dict[str, tuple[datetime | None, datetime | None]] = {
            t.task_id: (_utc(t.start_date, dag), _utc(t.end_date, dag))
            for t in dag.tasks
            if t.start_date is not None or t.end_date is not None
        }

    def remember_finished(self, run: LiveRun) -> bool:
        """Keep the task states of the latest finished run, for depends_on_past. True when
        this DAG has such tasks (whoever waits on the past should look again)."""
        if not self.has_past_deps:
            return False
        last = self.last_finished
        if last is None or last[0] <= run.record.logical_date:
            states = {t: ti.state for t, ti in run.tis.items()}
            self.last_finished = (run.record.logical_date, states)
        return True

    @property
    def active_runs(self) -> int:
        return self.running_runs + len(self.queued)


def _utc(value: datetime | None, dag: DAG) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dag.timezone)
    return value.astimezone(UTC)
