"""`LatestOnlyOperator`: let the direct downstream run only in the latest scheduled run.

A manual run always proceeds. A scheduled (or backfill) run proceeds when now (the engine's clock)
lies after its data interval's start and no later than the end of the interval that follows it,
that is, while it is the most recent run the schedule has made; otherwise every direct downstream
task is skipped (and the tasks below follow their trigger rules). A schedule with no next interval
(the last run of an `end_date`, `@once`) counts as the latest. As in Airflow.
"""

from __future__ import annotations

from typing import Any

from asyncflow.models.baseoperator import Context
from asyncflow.operators.branch import BaseBranchOperator
from asyncflow.operators.datetime import task_now
from asyncflow.records import DagRunType
from asyncflow.timetables import DataInterval, TimeRestriction


class LatestOnlyOperator(BaseBranchOperator):
    ui_color = "#e9ffdb"

    def choose_branch(self, context: Context) -> Any:
        everything = sorted(self.downstream_task_ids)
        run = context["dag_run"]
        if run.run_type is DagRunType.MANUAL or self.dag is None:
            return everything
        now = task_now(context)
        current = DataInterval(run.data_interval_start, run.data_interval_end)
        following = self.dag.timetable.next_dagrun_info(
            last_automated_data_interval=current,
            restriction=TimeRestriction(current.end, None, True, now),
        )
        if following is None:
            return everything
        if current.start < now <= following.data_interval.end:
            return everything
        return []
