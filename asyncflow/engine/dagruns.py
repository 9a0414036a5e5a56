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
from asyncflow.engine.scheduler import Scheduler
from asyncflow.models.dag import DAG, utc
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
    """The record of a manual trigger; a param without a value fails here, before any run."""
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


class Schedules:
    """The scheduler step that turns timetables into scheduled runs."""

    def __init__(self, scheduler: Scheduler, *, enabled: bool) -> None:
        self.scheduler = scheduler
        self.enabled = enabled
        self.due: set[str] = set()
        self._armed: dict[str, datetime] = {}

    def restriction(self, dag: DAG, now: datetime) -> TimeRestriction:
        return TimeRestriction(dag.start_date, dag.end_date, dag.catchup, now)

    def next_info(self, live_dag: LiveDag, now: datetime) -> DagRunInfo | None:
        dag = live_dag.dag
        if not dag.timetable.can_be_scheduled:
            return None
        return dag.timetable.next_dagrun_info(
            last_automated_data_interval=live_dag.last_interval,
            restriction=self.restriction(dag, now),
        )

    def prime(self, live_dag: LiveDag, latest: DagRun | None, now: datetime) -> None:
        """Resume `live_dag`'s timetable after its latest stored scheduled run."""
        if latest is not None:
            live_dag.last_interval = DataInterval(
                latest.data_interval_start, latest.data_interval_end
            )
        live_dag.next_info = self.next_info(live_dag, now)
        self.due.add(live_dag.dag.dag_id)

    def __call__(self, now: datetime) -> None:
        released = self.scheduler.released_dags
        if not (self.due or released):
            return
        due = self.due | released
        self.due = set()
        released.clear()
        for dag_id in due:
            live_dag = self.scheduler.dags.get(dag_id)
            if live_dag is not None:
                self._create_due(live_dag, now)

    def _create_due(self, live_dag: LiveDag, now: datetime) -> None:
        if not self.enabled or live_dag.paused or live_dag.removed or self.scheduler.draining:
            return
        dag = live_dag.dag
        while (info := live_dag.next_info) is not None:
            if info.run_after > now:
                if self._armed.get(dag.dag_id) != info.run_after:
                    self._armed[dag.dag_id] = info.run_after
                    self.scheduler.at(info.run_after, partial(self._wake, dag.dag_id))
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
            self.scheduler.add_run(live_dag, record, now)
            live_dag.last_interval = info.data_interval
            live_dag.next_info = self.next_info(live_dag, now)

    def _wake(self, dag_id: str, now: datetime) -> None:
        self._armed.pop(dag_id, None)
        self.due.add(dag_id)
