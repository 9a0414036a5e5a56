"""`BranchDayOfWeekOperator`: follow one set of tasks on the given week days, another set on the
others. The day is that of now (the engine's clock) in the DAG's timezone, or of the run's logical
date with `use_task_logical_date=True`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from asyncflow.models.baseoperator import Context
from asyncflow.operators.branch import BaseBranchOperator
from asyncflow.operators.datetime import compared_moment
from asyncflow.weekday import WeekDay


class BranchDayOfWeekOperator(BaseBranchOperator):
    def __init__(
        self,
        *,
        follow_task_ids_if_true: str | Iterable[str],
        follow_task_ids_if_false: str | Iterable[str],
        week_day: str | WeekDay | Iterable[str | WeekDay],
        use_task_logical_date: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.follow_task_ids_if_true = follow_task_ids_if_true
        self.follow_task_ids_if_false = follow_task_ids_if_false
        self.week_day = week_day
        self.use_task_logical_date = use_task_logical_date
        self._week_day_num = WeekDay.validate_week_day(week_day)

    def choose_branch(self, context: Context) -> str | Iterable[str]:
        moment = compared_moment(context, self.use_task_logical_date)
        if not self.use_task_logical_date and self.dag is not None:
            moment = moment.astimezone(self.dag.timezone)
        if moment.isoweekday() in self._week_day_num:
            return self.follow_task_ids_if_true
        return self.follow_task_ids_if_false
