"""The store contract. The scheduler talks to state only through this; a backend (SQLite now,
PostgreSQL later) implements it and passes the same contract tests.

Rows cross the contract as named tuples in the column orders below: each field has a name, and a
burst of ten thousand transitions still costs one `executemany` of plain tuples.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from asyncflow.records import DagRun, DagRunType, ImportErrorRecord, TaskInstance
from asyncflow.states import DagRunState, TaskState


class TIRow(NamedTuple):
    """A task instance row: the mutable columns first, the key last (the UPDATE's order)."""

    state: str
    try_number: int
    max_tries: int
    start_date: str | None
    end_date: str | None
    duration: float | None
    error: str | None
    next_try_at: str | None
    lost_count: int
    dag_id: str
    run_id: str
    task_id: str
    map_index: int


TI_COLUMNS = TIRow._fields


class RunRow(NamedTuple):
    """A DAG run row; its first six columns are what an update writes (`RunUpdate`)."""

    state: str
    start_date: str | None
    end_date: str | None
    conf: str
    dag_id: str
    run_id: str
    logical_date: str
    data_interval_start: str
    data_interval_end: str
    run_type: str
    queued_at: str | None


RUN_COLUMNS = RunRow._fields


class RunUpdate(NamedTuple):
    state: str
    start_date: str | None
    end_date: str | None
    conf: str
    dag_id: str
    run_id: str


class XComRow(NamedTuple):
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    key: str
    value: str  # JSON text


class XComKey(NamedTuple):
    """One task instance's XComs are dropped (it is about to run again)."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1


class DeferralRow(NamedTuple):
    """A deferred task instance's trigger (class path + JSON kwargs) and how it resumes
    (`next_method` with JSON `next_kwargs`); `fired`: the event arrived (or the deferral
    failed or timed out) and the next attempt resumes."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    classpath: str
    kwargs: str
    next_method: str
    next_kwargs: str
    timeout_at: str | None
    fired: bool


class AssetRow(NamedTuple):
    """An asset a loaded DAG names (schedule, outlets, inlets); `extra` JSON text."""

    name: str
    uri: str
    group: str
    extra: str
    updated_at: str


class AssetEventRow(NamedTuple):
    """An asset event: its id (given by the engine, increasing), the asset, `extra` and
    `source_aliases` as JSON text, and the task (or nothing: a watcher) that produced it."""

    id: int
    name: str
    uri: str
    extra: str
    timestamp: str
    source_dag_id: str | None
    source_run_id: str | None
    source_task_id: str | None
    source_map_index: int
    source_aliases: str
    source_interval_start: str | None
    source_interval_end: str | None


class AssetQueueRow(NamedTuple):
    """An event waiting for the next asset-triggered run of `dag_id` (Airflow's
    AssetDagRunQueue, one row per event)."""

    dag_id: str
    event_id: int


class AssetConsumedRow(NamedTuple):
    """Run `run_id` of `dag_id` was triggered by (consumed) event `event_id`."""

    dag_id: str
    run_id: str
    event_id: int


@dataclass(slots=True)
class AssetWrites:
    """A burst's asset changes. Consumed rows also delete their queue rows, and are skipped
    (with those deletes) when their run's insert conflicted."""

    assets: list[AssetRow] = field(default_factory=list)
    events: list[AssetEventRow] = field(default_factory=list)
    queue: list[AssetQueueRow] = field(default_factory=list)
    consumed: list[AssetConsumedRow] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.assets or self.events or self.queue or self.consumed)


class TIKey(NamedTuple):
    """One task instance (a row to delete: a deferral, a mapped task's -1 once expanded)."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int


class DagRow(NamedTuple):
    """A DAG's row; None leaves a column as stored (`is_paused` None: `INSERT OR IGNORE`)."""

    dag_id: str
    is_paused: bool | None
    fileloc: str | None
    last_seen: str | None


class VariableRow(NamedTuple):
    key: str
    value: str  # as stored: JSON text when it was set with serialize_json
    description: str = ""


class ConnectionRow(NamedTuple):
    conn_id: str
    conn_type: str = ""
    description: str = ""
    host: str | None = None
    schema: str | None = None
    login: str | None = None
    password: str | None = None
    port: int | None = None
    extra: str | None = None  # JSON text


VARIABLE_COLUMNS = VariableRow._fields
CONNECTION_COLUMNS = ConnectionRow._fields


class TIState(NamedTuple):
    run_id: str
    task_id: str
    map_index: int
    state: TaskState


#: the tables `Store.purge` cleans (Airflow's `db clean --tables` names)
PURGEABLE = ("dag_run", "task_instance", "xcom", "import_error", "request")


class PastStates(NamedTuple):
    """A finished run's states of some tasks: what depends_on_past looks back at."""

    logical_date: datetime
    states: dict[str, TaskState]


_iso_cache: dict[tuple[datetime, Any], str] = {}


#: the task instance whose task state store keys a row holds: (dag_id, run_id, task_id, map_index)
TaskStateScope = tuple[str, str, str, int]


def iso(value: datetime | None) -> str | None:
    """ISO text of an aware datetime. Recent answers are kept: a burst stamps many rows with
    the same few instants (a row's start and end alternate), and isoformat() is a visible cost
    at 10,000 rows a burst."""
    if value is None:
        return None
    key = (value, value.tzinfo)  # equal instants in two zones have two texts
    text = _iso_cache.get(key)
    if text is None:
        if len(_iso_cache) >= 64:
            _iso_cache.clear()
        text = _iso_cache[key] = value.isoformat(timespec="microseconds")
    return text


def parse(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def run_row(run: DagRun) -> RunRow:
    return RunRow(
        run.state.value, iso(run.start_date), iso(run.end_date), json.dumps(run.conf),
        run.dag_id, run.run_id, run.logical_date.isoformat(timespec="microseconds"),
        run.data_interval_start.isoformat(timespec="microseconds"),
        run.data_interval_end.isoformat(timespec="microseconds"),
        run.run_type.value, iso(run.queued_at),
    )  # fmt: skip


def run_from_row(row: tuple[Any, ...]) -> DagRun:
    state, start, end, conf, dag_id, run_id, logical, dis, die, run_type, queued = row
    return DagRun(
        dag_id=dag_id,
        run_id=run_id,
        logical_date=datetime.fromisoformat(logical),
        data_interval_start=datetime.fromisoformat(dis),
        data_interval_end=datetime.fromisoformat(die),
        run_type=DagRunType(run_type),
        state=DagRunState(state),
        conf=json.loads(conf),
        start_date=parse(start),
        end_date=parse(end),
        queued_at=parse(queued),
    )


def ti_from_row(row: tuple[Any, ...]) -> TaskInstance:
    state, try_number, max_tries, start, end, duration, error, next_try, lost, dag_id, run_id, \
        task_id, map_index = row  # fmt: skip
    return TaskInstance(
        dag_id=dag_id,
        run_id=run_id,
        task_id=task_id,
        map_index=map_index,
        state=TaskState(state),
        try_number=try_number,
        max_tries=max_tries,
        start_date=parse(start),
        end_date=parse(end),
        duration=duration,
        error=error,
        next_try_at=parse(next_try),
        lost_count=lost,
    )


@dataclass(slots=True)
class NewRun:
    run: RunRow
    task_instances: list[TIRow]


@dataclass(slots=True)
class WriteBatch:
    """Everything one transaction writes. Rows are full snapshots, so re-applying a batch
    (after a failed commit) is harmless."""

    new_runs: list[NewRun] = field(default_factory=list)
    run_updates: list[RunUpdate] = field(default_factory=list)
    ti_inserts: list[TIRow] = field(default_factory=list)
    ti_updates: list[TIRow] = field(default_factory=list)
    ti_deletes: list[TIKey] = field(default_factory=list)
    xcoms: list[XComRow] = field(default_factory=list)
    xcom_clears: list[XComKey] = field(default_factory=list)
    dags: list[DagRow] = field(default_factory=list)
    deferrals: list[DeferralRow] = field(default_factory=list)
    deferral_clears: list[TIKey] = field(default_factory=list)
    assets: AssetWrites = field(default_factory=AssetWrites)

    def __bool__(self) -> bool:
        return bool(
            self.new_runs or self.run_updates or self.ti_inserts or self.ti_updates
            or self.ti_deletes or self.xcoms or self.xcom_clears or self.dags or self.deferrals
            or self.deferral_clears or self.assets
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class WriteResult:
    #: (dag_id, run_id) of new runs not inserted: that run_id or logical_date was taken
    conflicts: list[tuple[str, str]]


class Store(ABC):
    """State, durably. Every method is safe to call while another is in flight."""

    @abstractmethod
    async def open(self) -> None:
        """Connect and migrate the schema to the latest step."""

    @abstractmethod
    async def close(self) -> None:
        """Finish pending work, checkpoint, and release the connection."""

    @abstractmethod
    async def write(self, batch: WriteBatch) -> WriteResult:
        """Apply the batch in one transaction: all of it is durable when this returns, or
        none of it and `StoreError` is raised. A new run whose run_id or logical_date is
        taken is skipped (with its task instances) and reported in `conflicts`."""

    # -- reads ----------------------------------------------------------------------------
    @abstractmethod
    async def get_dag_run(self, dag_id: str, run_id: str) -> DagRun | None: ...

    @abstractmethod
    async def find_dag_run(self, dag_id: str, logical_date: datetime) -> DagRun | None: ...

    @abstractmethod
    async def get_dag_runs(
        self,
        dag_id: str | None = None,
        *,
        states: list[DagRunState] | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[DagRun]:
        """Runs, newest logical_date first; `offset` skips that many, `limit` keeps at most
        that many (a page)."""  # fmt: skip

    @abstractmethod
    async def count_dag_runs(self, dag_id: str) -> int:
        """How many runs the DAG has."""

    @abstractmethod
    async def get_ti_states(
        self, dag_id: str, run_ids: Collection[str], task_ids: Collection[str] | None = None
    ) -> list[TIState]:
        """The states of the task instances of `run_ids` (only of `task_ids` when given): what
        a grid of runs x tasks shows, without reading whole records."""

    @abstractmethod
    async def get_task_instances(self, dag_id: str, run_id: str) -> list[TaskInstance]: ...

    @abstractmethod
    async def get_xcom(
        self, dag_id: str, run_id: str, task_id: str, key: str, map_index: int = -1
    ) -> str | None:
        """The XCom's JSON text, or None."""

    @abstractmethod
    async def get_run_xcoms(self, dag_id: str, run_id: str) -> list[XComRow]: ...

    @abstractmethod
    async def get_deferrals(self, dag_id: str, run_id: str) -> list[DeferralRow]:
        """The deferrals of a run's task instances (deferred, or about to resume)."""

    @abstractmethod
    async def past_states(self, dag_id: str, task_ids: list[str]) -> list[PastStates]:
        """For every finished run of the DAG, the states of `task_ids`, oldest first: what
        depends_on_past and wait_for_downstream look back at, rebuilt at every start."""

    @abstractmethod
    async def latest_automated_run(self, dag_id: str) -> DagRun | None:
        """The scheduled run with the latest logical_date: where the timetable resumes."""

    @abstractmethod
    async def get_paused(self) -> dict[str, bool]: ...

    @abstractmethod
    async def replace_import_errors(self, errors: list[ImportErrorRecord]) -> None: ...

    @abstractmethod
    async def get_import_errors(self) -> list[ImportErrorRecord]: ...

    # -- requests: what another process (the CLI) asks the running engine to do ------------
    @abstractmethod
    async def add_request(self, kind: str, payload: dict[str, Any]) -> int:
        """Queue a request; returns its id."""

    @abstractmethod
    async def pending_requests(self) -> list[tuple[int, str, dict[str, Any]]]:
        """Requests not yet done, oldest first: (id, kind, payload)."""

    @abstractmethod
    async def finish_request(self, request_id: int, result: dict[str, Any]) -> None: ...

    @abstractmethod
    async def request_result(self, request_id: int) -> dict[str, Any] | None:
        """The result once the request is done, else None."""

    @abstractmethod
    async def get_pools(self) -> dict[str, int]: ...

    # -- assets -------------------------------------------------------------------------------
    @abstractmethod
    async def get_assets(self) -> list[AssetRow]:
        """Every asset a loaded DAG named, by name."""

    @abstractmethod
    async def get_asset_events(
        self, *, uri: str | None = None, name: str | None = None, limit: int | None = None
    ) -> list[AssetEventRow]:
        """Asset events (of the asset with that uri/name), newest first."""

    @abstractmethod
    async def get_asset_queue(self) -> list[tuple[str, AssetEventRow]]:
        """(dag_id, event) for every event waiting for its DAG's next asset-triggered run."""

    @abstractmethod
    async def get_asset_aliases(self) -> list[tuple[str, str, str]]:
        """(alias, asset name, asset uri): which assets each alias has been resolved to."""

    @abstractmethod
    async def last_asset_event_id(self) -> int:
        """The largest asset event id (0 when none)."""

    @abstractmethod
    def get_run_asset_events_sync(self, dag_id: str, run_id: str) -> list[AssetEventRow]:
        """The events that triggered the run, oldest first (task code reads them)."""

    @abstractmethod
    def get_asset_events_sync(
        self, name: str | None, uri: str | None, limit: int
    ) -> list[AssetEventRow]:
        """The latest `limit` events of the asset with this name and URI (of any asset with
        this URI when `name` is None, this name when `uri` is None), oldest first (a task's
        inlet_events)."""

    # -- deleting history ---------------------------------------------------------------------
    @abstractmethod
    async def delete_dag(self, dag_id: str, *, dry_run: bool = False) -> dict[str, int]:
        """Delete every row of the DAG (its runs, task instances, XComs and its `dag` row with
        the paused flag) in one transaction; returns the rows deleted (or that would be, with
        `dry_run`) by table. Whether it may be deleted is the caller's decision."""

    @abstractmethod
    async def purge(
        self, before: datetime, tables: Collection[str] = PURGEABLE, *, dry_run: bool = False
    ) -> dict[str, int]:
        """Delete history older than `before` from `tables` (a subset of `PURGEABLE`) in one
        transaction; returns the rows deleted (or that would be, with `dry_run`) by table.

        * dag_run: finished runs that started (else were queued) before `before`, with their
          task instances and XComs; the latest scheduled run of each DAG is kept, as the
          timetable resumes from it;
        * task_instance: task instances of finished runs that started before `before`, with
          their XComs;
        * xcom: the XComs of finished runs that started before `before`;
        * import_error: errors recorded before `before`;
        * request: answered requests from other processes, made before `before`.

        Queued and running runs are never touched: they belong to an engine."""

    @abstractmethod
    async def set_pool(self, name: str, slots: int | None) -> None:
        """Create or resize a pool; `slots=None` deletes it."""

    # -- Variables and Connections ----------------------------------------------------------
    # The async methods serve the CLI and the engine; the `_sync` ones serve task code, which
    # calls `Variable.get()` without awaiting, from the loop (async tasks, templates) or a
    # worker thread: each is one point query or write, safe from any thread, short enough to
    # run on the loop.
    @abstractmethod
    async def get_variables(self) -> list[VariableRow]:
        """Every variable, by key."""

    @abstractmethod
    async def set_variable(self, row: VariableRow) -> None:
        """Create or replace a variable."""

    @abstractmethod
    async def delete_variable(self, key: str) -> bool:
        """Whether there was such a variable."""

    @abstractmethod
    async def get_connections(self) -> list[ConnectionRow]:
        """Every connection, by conn_id."""

    @abstractmethod
    async def set_connection(self, row: ConnectionRow) -> None:
        """Create or replace a connection."""

    @abstractmethod
    async def delete_connection(self, conn_id: str) -> bool:
        """Whether there was such a connection."""

    @abstractmethod
    def get_variable_sync(self, key: str) -> VariableRow | None: ...

    @abstractmethod
    def set_variable_sync(self, row: VariableRow) -> None: ...

    @abstractmethod
    def delete_variable_sync(self, key: str) -> bool: ...

    @abstractmethod
    def get_connection_sync(self, conn_id: str) -> ConnectionRow | None: ...

    # -- Task state store and asset state store (Airflow's AIP-103) -------------------------
    # Task code reads and writes them without awaiting, like the Variables: each method is
    # one point query or write, safe from any thread, short enough to run on the loop.
    @abstractmethod
    def get_task_state_sync(self, scope: TaskStateScope, key: str, now: datetime) -> str | None:
        """The key's JSON text for this task instance, or None when it is not set or its
        `expires_at` is not after `now`."""

    @abstractmethod
    def set_task_state_sync(self, scope: TaskStateScope, key: str, value: str,
                            now: datetime, expires_at: datetime | None) -> None:  # fmt: skip
        """Create or replace the key (`expires_at` None: it never expires)."""

    @abstractmethod
    def delete_task_state_sync(self, scope: TaskStateScope, key: str) -> bool:
        """Whether there was such a key."""

    @abstractmethod
    def clear_task_state_sync(self, scope: TaskStateScope) -> int:
        """Delete every key of the task instance; how many there were."""

    @abstractmethod
    def get_asset_state_sync(self, asset: str, key: str) -> str | None:
        """The key's JSON text for the asset (by name), or None."""

    @abstractmethod
    def set_asset_state_sync(self, asset: str, key: str, value: str, now: datetime) -> None:
        """Create or replace the asset's key."""

    @abstractmethod
    def delete_asset_state_sync(self, asset: str, key: str) -> bool:
        """Whether there was such a key."""

    @abstractmethod
    def clear_asset_state_sync(self, asset: str) -> int:
        """Delete every key of the asset; how many there were."""
