"""Where DAG runs come from: a manual trigger, or a timetable when its time has come.

Scheduled runs are created exactly once: where a timetable resumes is derived from the latest
scheduled run the store holds, and the run is inserted under UNIQUE(dag_id, logical_date) in the
same transaction that records it, so a crash between any two steps neither skips nor repeats one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import partial
from typing import Any

from asyncflow.engine.live import LiveDag
from asyncflow.engine.mirror import Mirror
from asyncflow.models.dag import DAG, utc
from asyncflow.models.dagrun import validate_run_id
from asyncflow.models.param import resolve_params
from asyncflow.records import DagRun, DagRunType
from asyncflow.states import DagRunState
from asyncflow.timetables import DagRunInfo, DataInterval, TimeRestriction


def run_id_for(run_type: DagRunType, logical_date: datetime) -> str:
    return f"{run_type.value}__{logical_date.isoformat()}"


def new_run(
    dag: DAG,
    *,
    run_type: DagRunType,
    logical_date: datetime,
    interval: DataInterval,
    now: datetime,
    conf: Mapping[str, Any] | None = None,
    run_id: str | None = None,
) -> DagRun:
    return DagRun(
        dag_id=dag.dag_id,
        run_id=run_id or run_id_for(run_type, logical_date),
        logical_date=logical_date,
        data_interval_start=interval.start,
        data_interval_end=interval.end,
        run_type=run_type,
        state=DagRunState.QUEUED,
        conf=dict(conf or {}),
        queued_at=now,
    )


def manual_run(
    dag: DAG,
    *,
    now: datetime,
    conf: Mapping[str, Any] | None,
    logical_date: datetime | None,
    run_id: str | None,
) -> DagRun:
    """The record of a manual trigger; a bad run_id or a param without a value fails here,
    before any run."""
    if run_id is not None:
        validate_run_id(dag.dag_id, run_id)
    resolve_params(dag.params, conf, dag_id=dag.dag_id)
    logical = utc(logical_date) if logical_date is not None else now
    interval = dag.timetable.infer_manual_data_interval(run_after=logical)
    return new_run(
        dag, run_type=DagRunType.MANUAL, logical_date=logical, interval=interval, now=now,
        conf=conf, run_id=run_id,
    )  # fmt: skip


def backfill_infos(dag: DAG, start_date: datetime, end_date: datetime) -> list[DagRunInfo]:
    """The timetable's intervals whose logical date lies in [start_date, end_date]."""
    if not dag.timetable.can_be_scheduled:
        raise ValueError(
            f"DAG {dag.dag_id!r} has no schedule (schedule=None), so there is nothing to "
            "backfill: trigger runs with a logical_date instead"
        )
    start, end = utc(start_date), utc(end_date)
    if dag.start_date is not None:
        start = max(start, dag.start_date)
    if dag.end_date is not None:
        end = min(end, dag.end_date)
    restriction = TimeRestriction(start, end, True, start)
    infos: list[DagRunInfo] = []
    last = None
    while len(infos) < 100_000:
        info = dag.timetable.next_dagrun_info(
            last_automated_data_interval=last, restriction=restriction
        )
        if info is None or dag.timetable.logical_date_of(info) > end:
            break
        infos.append(info)
        last = info.data_interval
    return infos


class Cursor:
    """Where one DAG's timetable stands: the latest scheduled interval, and the next run."""

    __slots__ = ("armed", "last_interval", "next_info")

    def __init__(self) -> None:
        self.last_interval: DataInterval | None = None
        self.next_info: DagRunInfo | None = None
        self.armed: datetime | None = None  # the wake-up timer set for next_info.run_after


class Schedules:
    """The scheduler step that turns timetables into scheduled runs. It owns each DAG's
    cursor; runs are created through the mirror. A timetable that fails (one of its DAG's
    values) stops that DAG's schedule with the error as its import error, never the loop."""

    def __init__(self, mirror: Mirror, *, enabled: bool) -> None:
        self.mirror = mirror
        self.enabled = enabled
        self.due: set[str] = set()
        self._cursors: dict[str, Cursor] = {}

    def _restriction(self, dag: DAG, now: datetime) -> TimeRestriction:
        return TimeRestriction(dag.start_date, dag.end_date, dag.catchup, now)

    def _next_info(self, dag: DAG, cursor: Cursor, now: datetime) -> DagRunInfo | None:
        if not dag.timetable.can_be_scheduled:
            return None
        return dag.timetable.next_dagrun_info(
            last_automated_data_interval=cursor.last_interval,
            restriction=self._restriction(dag, now),
        )

    def prime(self, dag_id: str, latest: DagRun | None, now: datetime) -> None:
        """Resume the DAG's timetable after its latest stored scheduled run."""
        cursor = self._cursors[dag_id] = Cursor()
        if latest is not None:
            cursor.last_interval = DataInterval(
                latest.data_interval_start, latest.data_interval_end
            )
        self._guarded(dag_id, now, self._recompute)
        self.due.add(dag_id)

    def resume(self, dag_id: str, now: datetime) -> None:
        """Unpaused: go on from now (catchup=False skips what the pause missed)."""
        if dag_id in self._cursors:
            self._guarded(dag_id, now, self._recompute)
            self.due.add(dag_id)

    def next_run_after(self, dag_id: str) -> datetime | None:
        cursor = self._cursors.get(dag_id)
        info = cursor.next_info if cursor is not None else None
        return info.run_after if info is not None else None

    def __call__(self, now: datetime) -> None:
        released = self.mirror.released_dags
        if not (self.due or released):
            return
        due = self.due | released
        self.due = set()
        released.clear()
        for dag_id in due:
            if dag_id in self.mirror.dags and dag_id in self._cursors:
                self._guarded(dag_id, now, self._create_due)

    def _guarded(self, dag_id: str, now: datetime, step: Any) -> None:
        live_dag = self.mirror.dags[dag_id]
        if live_dag.error is not None:
            return
        try:
            step(live_dag, self._cursors[dag_id], now)
        except Exception as exc:  # the DAG's timetable or dates: that DAG stops, not the loop
            self.mirror.dag_failed(
                dag_id,
                f"DAG {dag_id!r} ({live_dag.dag.fileloc or 'defined in code'}): its schedule "
                f"cannot be evaluated: {type(exc).__name__}: {exc}. Fix the DAG's schedule, "
                "start_date or end_date; it is scheduled again when its file changes",
            )

    def _recompute(self, live_dag: LiveDag, cursor: Cursor, now: datetime) -> None:
        cursor.next_info = self._next_info(live_dag.dag, cursor, now)

    def _create_due(self, live_dag: LiveDag, cursor: Cursor, now: datetime) -> None:
        mirror = self.mirror
        if not self.enabled or live_dag.paused or live_dag.removed or mirror.draining:
            return
        dag = live_dag.dag
        while (info := cursor.next_info) is not None:
            if info.run_after > now:
                if cursor.armed != info.run_after:
                    cursor.armed = info.run_after
                    mirror.at(info.run_after, partial(self._wake, dag.dag_id, cursor))
                return
            if live_dag.active_runs >= dag.max_active_runs:
                return  # resumed when one of its runs finishes
            record = new_run(
                dag,
                run_type=DagRunType.SCHEDULED,
                logical_date=dag.timetable.logical_date_of(info),
                interval=info.data_interval,
                now=now,
            )
            cursor.last_interval = info.data_interval
            cursor.next_info = self._next_info(dag, cursor, now)
            mirror.add_run(dag.dag_id, record, now)

    def _wake(self, dag_id: str, cursor: Cursor, now: datetime) -> None:
        if self._cursors.get(dag_id) is cursor:
            cursor.armed = None
            self.due.add(dag_id)
