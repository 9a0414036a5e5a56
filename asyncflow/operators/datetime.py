"""`BranchDateTimeOperator`: follow one set of tasks when now (or the run's logical date) lies
within [target_lower, target_upper], another set otherwise.

"Now" is the engine's clock at the attempt's start, so a FakeClock moves it in tests. Targets that
are `time`s are placed on the day of the compared moment, in the DAG's timezone; an upper time
earlier than the lower one means the next day, as in Airflow.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from asyncflow.exceptions import DagDefinitionError
from asyncflow.models.baseoperator import Context
from asyncflow.models.engine_access import clock_now, current_engine
from asyncflow.operators.branch import BaseBranchOperator


def task_now(context: Context) -> dt.datetime:
    """Now on the engine's clock (aware, UTC): a sensor that keeps its slot sees it move between
    pokes. Outside an engine, the attempt's start time."""
    if current_engine.get() is not None:
        return clock_now()
    start = context["ti"].start_date
    return start if start is not None else dt.datetime.now(dt.UTC)


def compared_moment(context: Context, use_task_logical_date: bool) -> dt.datetime:
    if use_task_logical_date:
        logical: dt.datetime = context["logical_date"]
        return logical
    return task_now(context)


def _on_day(
    base: dt.datetime, value: dt.datetime | dt.time | None, zone: dt.tzinfo
) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.time):
        value = dt.datetime.combine(base.astimezone(zone).date(), value)
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


class BranchDateTimeOperator(BaseBranchOperator):
    def __init__(
        self,
        *,
        follow_task_ids_if_true: str | Iterable[str],
        follow_task_ids_if_false: str | Iterable[str],
        target_lower: dt.datetime | dt.time | None,
        target_upper: dt.datetime | dt.time | None,
        use_task_logical_date: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if target_lower is None and target_upper is None:
            raise DagDefinitionError(
                "BranchDateTimeOperator needs target_lower, target_upper or both",
                dag_id=self.dag_id,
                task_id=self.task_id,
            )
        self.follow_task_ids_if_true = follow_task_ids_if_true
        self.follow_task_ids_if_false = follow_task_ids_if_false
        self.target_lower = target_lower
        self.target_upper = target_upper
        self.use_task_logical_date = use_task_logical_date

    def choose_branch(self, context: Context) -> str | Iterable[str]:
        now = compared_moment(context, self.use_task_logical_date)
        zone = self.dag.timezone if self.dag is not None else dt.UTC
        lower = _on_day(now, self.target_lower, zone)
        upper = _on_day(now, self.target_upper, zone)
        both_times = isinstance(self.target_lower, dt.time) or isinstance(
            self.target_upper, dt.time
        )
        if both_times and lower is not None and upper is not None and upper < lower:
            upper += dt.timedelta(days=1)
        if (upper is not None and upper < now) or (lower is not None and lower > now):
            return self.follow_task_ids_if_false
        return self.follow_task_ids_if_true
