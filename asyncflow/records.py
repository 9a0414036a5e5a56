"""Runtime records read from the store: plain frozen values, no behaviour, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from asyncflow.states import DagRunState, TaskState


class DagRunType(StrEnum):
    SCHEDULED = "scheduled"
    MANUAL = "manual"
    BACKFILL = "backfill"


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
