"""Runtime records read from the store: plain frozen values, no behaviour, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from asyncflow.states import DagRunState, TaskState


class DagRunType(StrEnum):
    SCHEDULED = "scheduled"
    MANUAL = "manual"
    BACKFILL = "backfill"
    ASSET_TRIGGERED = "asset_triggered"


@dataclass(frozen=True, slots=True)
class DagRun:
    dag_id: str
    run_id: str
    logical_date: datetime
    data_interval_start: datetime
    data_interval_end: datetime
    run_type: DagRunType
    state: DagRunState
    conf: dict[str, Any] = field(default_factory=dict)
    start_date: datetime | None = None
    end_date: datetime | None = None
    queued_at: datetime | None = None

    @property
    def duration(self) -> float | None:
        if self.start_date is None or self.end_date is None:
            return None
        return (self.end_date - self.start_date).total_seconds()


@dataclass(frozen=True, slots=True)
class TaskInstance:
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    state: TaskState
    try_number: int
    max_tries: int
    start_date: datetime | None = None
    end_date: datetime | None = None
    duration: float | None = None
    #: why the last attempt ended as it did (exception, exit code, signal, timeout, lost, shutdown)
    error: str | None = None
    next_try_at: datetime | None = None
    #: attempts in a row lost by the engine (crash, kill -9) rather than ended by the task;
    #: they cost no try, and after `max_lost_attempts` of them the task is failed
    lost_count: int = 0


@dataclass(frozen=True, slots=True)
class ImportErrorRecord:
    fileloc: str
    message: str
    stacktrace: str
    timestamp: datetime


class AssetKey(NamedTuple):
    """How the engine and the store know an asset: its name and its URI."""

    name: str
    uri: str


@dataclass(frozen=True, slots=True)
class AssetEvent:
    """One update of an asset: by a task's success (`source_*` name it), or by a watcher's
    trigger; `source_aliases` the aliases the task recorded it under."""

    id: int
    asset: AssetKey
    extra: dict[str, Any]
    timestamp: datetime
    source_dag_id: str | None = None
    source_run_id: str | None = None
    source_task_id: str | None = None
    source_map_index: int = -1
    source_aliases: tuple[str, ...] = ()
    #: the data interval of the run that produced it (an asset-triggered run's interval spans
    #: these, as in Airflow 2)
    source_interval: tuple[datetime, datetime] | None = None

    @property
    def uri(self) -> str:
        return self.asset.uri

    @property
    def name(self) -> str:
        return self.asset.name
